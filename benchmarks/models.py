"""Quality of a style network on held-out photos, per style, for its model card.

    python benchmarks/models.py [MODEL] [--photos 10] [--size 512] [--markdown FILE]

For each style of MODEL (default: the built-in `styles`) whose painting is in
../shared/data/styles: the mean VGG style distance and content distance (`impasto
evaluate`) of the network's outputs on the first --photos held-out photos, and, as the
yardsticks, the same distances of the photo itself (no style at all) and of the
painting itself (no photo at all).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="styles")
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    from impasto.evaluate import Evaluator
    from impasto.methods.feedforward import FastStylizer
    from impasto.training.data import find_images

    fast = FastStylizer(args.model, "cpu")
    judge = Evaluator(device="cpu")
    photos = find_images(DATA / "holdout")[0][: args.photos]
    lines = [
        f"Held-out photos: {len(photos)} (../shared/data/holdout), scored at {args.size} px. "
        "Lower is closer.",
        "",
        "| style | style distance | content distance | photo's style distance "
        "| painting's content distance |",
        "|---|---|---|---|---|",
    ]
    for style in fast.styles:
        painting = next((DATA / "styles").glob(f"{style}.*"), None)
        if painting is None:
            continue
        out = [
            judge.score(fast.run(p, style, size=args.size).image, p, painting, args.size)
            for p in photos
        ]
        bare = [judge.score(p, p, painting, args.size) for p in photos]
        only = [judge.score(painting, p, painting, args.size) for p in photos]
        lines.append(
            f"| {style} | {statistics.mean(s['style_distance'] for s in out):.3f} | "
            f"{statistics.mean(s['content_distance'] for s in out):.3f} | "
            f"{statistics.mean(s['style_distance'] for s in bare):.3f} | "
            f"{statistics.mean(s['content_distance'] for s in only):.3f} |"
        )
        print(lines[-1], flush=True)
    report = "\n".join(lines) + "\n"
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)


if __name__ == "__main__":
    main()
