"""Gallery for docs/: impasto's default result for each pair of ../shared/data, two a row.

Only impasto's own pictures go in the sheet; the inputs are named in docs/gallery.md.

    python examples/gallery.py -o docs/gallery.jpg [--size 512] [--device cuda]
    python examples/gallery.py --method arbitrary -o docs/gallery_arbitrary.jpg
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import impasto
from impasto.io.images import load_image, save_image
from impasto.io.sheet import justified

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = [
    ("tubingen", "starry_night"),
    ("golden_gate", "the_scream"),
    ("hoovertowernight", "woman_with_hat_matisse"),
    ("tubingen", "udnie"),
]
SHEET_WIDTH = 1024  # two pictures a row, each row scaled to fill it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="gallery.jpg")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--method",
        choices=("optimize", "arbitrary"),
        default="optimize",
        help="impasto stylize's default, or impasto arbitrary's",
    )
    args = parser.parse_args()

    stylizer = impasto.load(args.method, device=args.device)
    rows = []
    for photo, painting in PAIRS:
        content = load_image(DATA / "content" / f"{photo}.jpg")
        style = load_image(DATA / "styles" / f"{painting}.jpg")
        start = time.perf_counter()
        image = stylizer.run(content, style, size=args.size).image
        print(f"{photo} x {painting}: {time.perf_counter() - start:.1f} s")
        rows.append([image])
    sheet = justified([row[0] for row in rows], width=SHEET_WIDTH, columns=2)
    save_image(sheet, args.output)


if __name__ == "__main__":
    main()
