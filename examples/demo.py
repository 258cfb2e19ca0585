"""impasto's demo: scikit-image's cat, painted in the style of its stained-tissue micrograph.

Both pictures ship with scikit-image, so this runs offline on a fresh machine:

    python examples/demo.py --out out        # writes out/demo.png and out/demo_side_by_side.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image
from skimage import data

import impasto
from impasto.io.images import resize_longest, save_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="output folder")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    content = Image.fromarray(data.chelsea())
    style = Image.fromarray(data.immunohistochemistry())
    result = impasto.Stylizer(device=args.device).run(
        content, style, size=args.size, iterations=args.iterations
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_image(result.image, out / "demo.png")

    panels = [resize_longest(im, args.size) for im in (content, style)] + [result.image]
    height = result.image.height
    panels = [p.resize((round(p.width * height / p.height), height)) for p in panels]
    sheet = Image.new("RGB", (sum(p.width for p in panels), height), "white")
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width
    save_image(sheet, out / "demo_side_by_side.png")
    print(
        f"wrote {out / 'demo.png'} and {out / 'demo_side_by_side.png'} "
        f"in {result.seconds:.1f} s on {result.device}"
    )


if __name__ == "__main__":
    main()
