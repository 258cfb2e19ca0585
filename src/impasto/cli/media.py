"""`video`, `webcam` and `sheet`: a trained network on moving pictures, and on one photo in
all its styles. They take `fast`'s options and the built-in `styles` by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import FastOptions, Media, Output, Setup, update
from .args import add_options, add_setup, chosen, given
from .files import announce


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "video":
        p.add_argument("input", help="the video")
        p.add_argument(
            "-o",
            "--output",
            help="the stylized video, .mp4 .mkv .mov or .webm (default: VIDEO.STYLE.mp4 here)",
        )
        add_options(p, Media, only=("consistency", "consistency_strength", "smooth"))
        add_options(p, Output, only=("json", "quiet"))
    if command == "webcam":
        add_options(p, Media, only=("camera", "consistency", "consistency_strength"))
    if command in ("video", "webcam"):
        p.add_argument(
            "--style",
            metavar="NAME|INDEX[:W],...",
            help="one of the model's styles, or a blend (default: its first)",
        )
    if command == "sheet":
        p.add_argument("photo")
        p.add_argument("-o", "--output", help="default: PHOTO.sheet.png here")
        add_options(p, Media, only=("columns",))
        add_options(p, Output, only=("json", "quiet"))
    add_options(p, FastOptions)
    add_setup(p, "fast")


def run(args: argparse.Namespace) -> int:
    return {"video": video, "webcam": webcam, "sheet": sheet}[args.command](args)


def _fast(args: argparse.Namespace):
    """The loaded network and the options, checked before it loads."""
    from .. import api

    options = update(FastOptions(), given(args, FastOptions), "fast")
    return api.load("fast", **given(args, Setup)), options


def video(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..io.images import pixels_array, resize_longest
    from ..io.video import stylize_video
    from ..methods.blend import style_mix

    fast, options = _fast(args)
    weights = style_mix(args.style, fast.styles)
    label = (args.style or fast.styles[0]).replace(",", "+").replace(":", "")
    output = args.output or f"{Path(args.input).stem}.{label}.mp4"

    def transform(frame):
        picture = resize_longest(Image.fromarray(frame), options.size)
        pixels = fast.paint_pictures([picture], weights, options)[0]
        return pixels_array(pixels)[0].transpose(1, 2, 0) * 255

    media = chosen(args, Media)
    frames = stylize_video(
        args.input,
        output,
        transform,
        smooth=media.smooth,
        steady=_steady(media),
        progress=not chosen(args, Output).quiet,
    )
    announce(args, f"wrote {output}: {frames} frames", output=str(output), frames=frames)
    return 0


def webcam(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ..io.images import to_image
    from ..io.webcam import run_webcam
    from ..methods.blend import style_mix

    fast, options = _fast(args)
    n = len(fast.styles)
    start = int(style_mix(args.style, fast.styles).argmax())

    media = chosen(args, Media)
    steady = _steady(media)

    def paint(picture, style):
        weights = (
            np.full(n, 1.0 / n, np.float32) if style is None else style_mix(style, fast.styles)
        )
        frame = to_image(fast.paint_pictures([picture], weights, options)[0])
        if steady is None:
            return frame
        out = steady(np.asarray(picture), np.asarray(frame, np.float32))
        return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))

    run_webcam(paint, fast.styles, camera=media.camera, size=options.size, first=start)
    return 0


def _steady(media: Media):
    """The frame-to-frame consistency `media` asks for, or None."""
    if media.consistency == "off":
        return None
    from ..methods.temporal import FlowConsistency

    return FlowConsistency(media.consistency_strength)


def sheet(args: argparse.Namespace) -> int:
    from ..budget import BYTES_PER_ONE_PASS_PIXEL, check_fits
    from ..io.images import check_output_path, load_image, resize_longest, save_image, scaled_size
    from ..io.sheet import labelled_grid

    output = args.output or f"{Path(args.photo).stem}.sheet.png"
    check_output_path(output, (args.photo,))
    fast, options = _fast(args)
    photo = load_image(args.photo)
    check_fits(scaled_size(photo.size, options.size), BYTES_PER_ONE_PASS_PIXEL * 2, "the sheet")
    photo = resize_longest(photo, options.size)
    tiles = [photo] + [fast.run(photo, i, options).image for i in range(len(fast.styles))]
    columns = chosen(args, Media).columns
    out = labelled_grid(tiles, ["photo", *fast.styles], columns, cell=options.size)
    save_image(out, output, (args.photo,))
    line = f"wrote {output} ({out.width}×{out.height}, {len(fast.styles)} styles)"
    announce(
        args, line, output=str(output), width=out.width, height=out.height, styles=list(fast.styles)
    )
    return 0
