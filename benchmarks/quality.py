"""Optimization quality and time: impasto's defaults vs the textbook method vs pastiche.

    python benchmarks/quality.py [--sizes 256,512] [--set pairs|figurative] [--pairs 4]
                                 [--sheet docs/quality.jpg] [--markdown FILE]

On the first --pairs of a set of ../shared/data pairs below (`pairs`: the tuning pairs;
`figurative`: portraits, figures and a face on photos without faces, and two portraits),
at each size, every method paints each pair once, in its own process (one at a time, so
each has the machine):
- impasto (defaults, no flags), and its `--preset classic` (Gatys: Gram loss, L-BFGS);
  "impasto PRESET" in --methods runs any other preset, "impasto previous" the defaults
  before the per-pair balance, "impasto arbitrary" the one-pass method's defaults;
- the textbook baseline (benchmarks/textbook.py: one scale, torch L-BFGS, 300 iterations);
- pastiche's CLI with its defaults (1000 L-BFGS steps) unless --pastiche-steps says less.
Each output is scored by `impasto evaluate` at its own size: content distance (relu4_2,
lower keeps more of the photo), Gram style distance and moment distance (lower is more
of the painting). Wall time is end to end in the worker, weights loading included.
Faces: OpenCV's Haar cascade counts the frontal faces in each output and in its photo at
the same size; a face in the output that the photo has not is the painting's, pasted in.
A table per pair, and a labelled contact sheet of all outputs (not the inputs, which are
not the project's to publish) goes to --sheet.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
PAIRS = [
    ("tubingen", "starry_night"),
    ("golden_gate", "the_scream"),
    ("brad_pitt", "picasso_selfport1907"),
    ("hoovertowernight", "woman_with_hat_matisse"),
    ("amber", "udnie"),
    ("avril", "mosaic"),
]
# Figurative paintings on photos with no face (landscapes, buildings, an animal), where
# the painting's faces must not appear, and on portraits, where the photo's must stay.
FIGURATIVE = [
    ("golden_gate", "picasso_selfport1907"),
    ("hoovertowernight", "woman_with_hat_matisse"),
    ("yosemite", "seated_nude"),
    ("lighthouse_kodim21", "woman_in_peasant_dress"),
    ("sagano_bamboo_forest", "the_scream"),
    ("winter_wolf", "picasso_selfport1907"),
    ("brad_pitt", "woman_with_hat_matisse"),
    ("avril", "seated_nude"),
]
SETS = {"pairs": PAIRS, "figurative": FIGURATIVE}
METHODS = ("impasto", "impasto classic", "textbook", "pastiche")
# "impasto previous": the defaults before 2026-12 (one fixed α for every pair, relu5_1 in
# the style loss), to show beside today's.
PREVIOUS = {
    "content_target": 0.0,
    "style_layers": {f"relu{n}_1": 1.0 for n in range(1, 6)},
}


@functools.cache
def face_detector():
    """OpenCV's Haar cascade for frontal faces, read once."""
    import cv2

    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not path.exists():
        sys.exit("no Haar cascades in OpenCV 5's wheels: pip install 'opencv-python-headless<5'")
    return cv2.CascadeClassifier(str(path))


def faces(image, size: int) -> int:
    """Frontal faces OpenCV's Haar cascade finds in `image` (a PIL image) at `size` px."""
    import numpy as np

    from impasto.io.images import resize_longest

    grey = np.asarray(resize_longest(image.convert("L"), size))
    found = face_detector().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(size // 16, size // 16)
    )
    return len(found)


def find(folder: str, stem: str) -> Path:
    return next((DATA / folder).glob(f"{stem}.*"))


def worker(method: str, content: Path, style: Path, size: int, out: Path, steps: int) -> float:
    """Paints one pair; returns its wall time in seconds."""
    start = time.perf_counter()
    if method == "pastiche":
        exe = Path(sys.executable).with_name("pastiche")
        subprocess.run(
            [
                str(exe),
                "--content",
                str(content),
                "--styles",
                str(style),
                "--size",
                str(size),
                "--num-steps",
                str(steps),
                "--no-verbose",
                "--output",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
    elif method == "textbook":
        sys.path.insert(0, str(HERE))
        import textbook

        from impasto.io.images import save_image, to_image

        _, image = textbook.run(content, style, size, iterations=300)
        save_image(to_image(image), out)
    elif method == "impasto arbitrary":
        import impasto

        impasto.arbitrary(content, style, size=size, device="cpu").save(out)
    else:
        from impasto.methods.optimize import Stylizer

        preset = method.partition(" ")[2] or "balanced"  # "impasto more-style": a preset
        changes = {}
        if preset == "previous":  # the defaults before the per-pair balance
            preset, changes = "balanced", PREVIOUS
        Stylizer(device="cpu").run(
            content, style, size=size, preset=preset, progress=False, **changes
        ).image.save(out)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--set", default="pairs", choices=SETS, help="which pairs")
    p.add_argument("--pairs", type=int, default=4, help="how many of the set's pairs")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--pastiche-steps", type=int, default=1000, help="its default: 1000")
    p.add_argument("--sheet", help="write a labelled contact sheet of all outputs here")
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument("--worker", nargs=4, metavar=("METHOD", "CONTENT", "STYLE", "SIZE"))
    p.add_argument("--out")
    args = p.parse_args()
    if args.worker:
        method, content, style, size = args.worker
        seconds = worker(
            method, Path(content), Path(style), int(size), Path(args.out), args.pastiche_steps
        )
        print(json.dumps({"seconds": seconds}))
        return
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    from PIL import Image

    from impasto.evaluate import Evaluator
    from impasto.io.sheet import contact_sheet

    methods = args.methods.split(",")
    if not Path(sys.executable).with_name("pastiche").exists() and "pastiche" in methods:
        methods.remove("pastiche")
    judge = Evaluator(device="cpu")
    results: dict[tuple[int, str], list[dict]] = {}
    rows, labels, per_pair = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for c, s in SETS[args.set][: args.pairs]:
                content, style = find("content", c), find("styles", s)
                row = []  # outputs only: the inputs are not the project's to publish
                for method in methods:
                    out = Path(tmp) / f"{size}_{c}_{method.replace(' ', '_')}.png"
                    cmd = [
                        sys.executable,
                        __file__,
                        "--worker",
                        method,
                        str(content),
                        str(style),
                        str(size),
                        "--out",
                        str(out),
                        "--pastiche-steps",
                        str(args.pastiche_steps),
                    ]
                    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
                    score = judge.score(out, content, style, size=size)
                    del score["style_distance_by_layer"]  # reported as the mean over layers
                    picture = Image.open(out).convert("RGB")
                    score["faces"] = faces(picture, 2 * size)
                    score["photo faces"] = faces(Image.open(content), 2 * size)
                    results.setdefault((size, method), []).append({**score, "seconds": seconds})
                    per_pair.append((size, c, s, method, score))
                    row.append(picture)
                    print(
                        size,
                        c,
                        s,
                        method,
                        f"{seconds:.1f} s",
                        {k: round(v, 3) for k, v in score.items()},
                        flush=True,
                    )
                rows.append(row)
                labels.append(f"{c} x {s} {size}px")
    lines = [
        f"Mean over {args.pairs} pairs; pastiche: {args.pastiche_steps} steps. "
        "Distances: lower content = more photo, lower style/moment = more painting.",
        "",
        "| size | method | wall s | x impasto time | content | Gram style | moment | new faces |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (size, method), runs in results.items():
        mean = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
        ours = statistics.mean(r["seconds"] for r in results[(size, methods[0])])
        new = sum(max(0, r["faces"] - r["photo faces"]) for r in runs)
        lines.append(
            f"| {size} | {method} | {mean['seconds']:.1f} | "
            f"{mean['seconds'] / ours:.2f} | {mean['content_distance']:.3f} | "
            f"{mean['style_distance']:.3f} | {mean['moment_distance']:.3f} | {new} |"
        )
    lines += [
        "",
        "| size | photo | painting | method | content | moment | faces (photo's) |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, c, s, method, score in per_pair:
        lines.append(
            f"| {size} | {c} | {s} | {method} | {score['content_distance']:.3f} | "
            f"{score['moment_distance']:.3f} | {score['faces']} ({score['photo faces']}) |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.sheet:
        sheet = contact_sheet(rows, methods, labels, cell=200)
        sheet.save(args.sheet, quality=88)


if __name__ == "__main__":
    main()
