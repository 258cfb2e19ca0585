"""Gallery for docs/: impasto's default result for each pair of ../shared/data, one row a pair.

Only impasto's own pictures go in the sheet; the inputs are named in docs/gallery.md.

    python examples/gallery.py -o docs/gallery.jpg [--size 512] [--device cuda]
    python examples/gallery.py --method arbitrary -o docs/gallery_arbitrary.jpg
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

import impasto
from impasto.io.images import load_image, save_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = [
    ("tubingen", "starry_night"),
    ("golden_gate", "the_scream"),
    ("hoovertowernight", "woman_with_hat_matisse"),
    ("tubingen", "udnie"),
]
ROW_HEIGHT = 256


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

    if args.method == "optimize":
        stylizer = impasto.Stylizer(device=args.device)
    else:
        stylizer = impasto.ArbitraryStylizer(device=args.device)
    rows = []
    for photo, painting in PAIRS:
        content = load_image(DATA / "content" / f"{photo}.jpg")
        style = load_image(DATA / "styles" / f"{painting}.jpg")
        start = time.perf_counter()
        if args.method == "optimize":
            image = stylizer.run(content, style, size=args.size, progress=False).image
        else:
            image = stylizer.run(content, style, size=args.size).image
        print(f"{photo} x {painting}: {time.perf_counter() - start:.1f} s")
        rows.append([image])
    panels = [
        [im.resize((round(im.width * ROW_HEIGHT / im.height), ROW_HEIGHT)) for im in row]
        for row in rows
    ]
    width = max(sum(p.width for p in row) for row in panels)
    sheet = Image.new("RGB", (width, ROW_HEIGHT * len(panels)), "white")
    for y, row in enumerate(panels):
        x = 0
        for panel in row:
            sheet.paste(panel, (x, y * ROW_HEIGHT))
            x += panel.width
    save_image(sheet, args.output)


if __name__ == "__main__":
    main()
