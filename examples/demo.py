"""impasto's demo, offline on a fresh machine: scikit-image's cat, painted three ways.

    python examples/demo.py --out out             # seconds: built-in models only
    python examples/demo.py --out out --optimize  # adds the slow, best-quality method

Writes to --out:
  demo_sheet.png       the cat in every style of the built-in network `styles` (one pass each)
  demo_arbitrary.png   the cat in the style of scikit-image's stained-tissue micrograph, by
                       the built-in one-pass network `painter` (any picture can be a style)
  demo.png             with --optimize: the same pair by optimization (Gatys et al.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image
from skimage import data

import impasto
from impasto.io.images import resize_longest, save_image
from impasto.io.sheet import labelled_grid
from impasto.methods.arbitrary import ArbitraryStylizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="output folder")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--optimize", action="store_true", help="also run the slow method")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cat = resize_longest(Image.fromarray(data.chelsea()), args.size)
    tissue = Image.fromarray(data.immunohistochemistry())

    start = time.perf_counter()
    fast = impasto.FastStylizer("styles", device=args.device)
    tiles = [fast.run(cat, style).image for style in fast.styles]
    save_image(
        labelled_grid(tiles, fast.styles, columns=4, cell=args.size // 2), out / "demo_sheet.png"
    )
    print(
        f"wrote {out / 'demo_sheet.png'}: {len(tiles)} styles in "
        f"{time.perf_counter() - start:.1f} s"
    )

    start = time.perf_counter()
    arbitrary = ArbitraryStylizer(device=args.device)  # the built-in painter
    save_image(arbitrary.run(cat, tissue, size=args.size).image, out / "demo_arbitrary.png")
    print(f"wrote {out / 'demo_arbitrary.png'} in {time.perf_counter() - start:.1f} s")

    if args.optimize:
        result = impasto.Stylizer(device=args.device).run(
            cat, tissue, size=min(args.size, 256), iterations=args.iterations
        )
        save_image(result.image, out / "demo.png")
        print(f"wrote {out / 'demo.png'} in {result.seconds:.1f} s on {result.device}")


if __name__ == "__main__":
    main()
