"""`video`, `webcam` and `sheet`: a trained network on moving pictures, and on one photo in
all its styles. They take `fast`'s options and the built-in `styles` by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import FastOptions, update
from .args import add_number, add_options, add_setup, given, setup


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "video":
        p.add_argument("input", help="the video")
        p.add_argument(
            "-o",
            "--output",
            help="the stylized video, .mp4 .mkv .mov or .webm (default: VIDEO.STYLE.mp4 here)",
        )
        p.add_argument(
            "--smooth",
            type=float,
            default=0.0,
            help="0..1: damp flicker where the picture is still (default: 0)",
        )
        p.add_argument("--quiet", action="store_true", help="no progress")
    if command == "webcam":
        add_number(p, "--camera", 0, 0, 63, "camera index")
    if command in ("video", "webcam"):
        p.add_argument(
            "--style",
            metavar="NAME|INDEX[:W],...",
            help="one of the model's styles, or a blend (default: its first)",
        )
    if command == "sheet":
        p.add_argument("photo")
        p.add_argument("-o", "--output", help="default: PHOTO.sheet.png here")
        add_number(p, "--columns", 4, 1, 64, "pictures per row")
    add_options(p, FastOptions)
    add_setup(p, "fast")


def run(args: argparse.Namespace) -> int:
    return {"video": video, "webcam": webcam, "sheet": sheet}[args.command](args)


def _fast(args: argparse.Namespace):
    """The loaded network and the options, checked before it loads."""
    from .. import api

    options = update(FastOptions(), given(args, FastOptions), "fast")
    return api.load("fast", **setup(args, "fast")), options


def video(args: argparse.Namespace) -> int:
    from ..io.images import to_tensor
    from ..io.video import stylize_video
    from ..methods.feedforward import parse_style

    if not 0 <= args.smooth < 1:
        from ..errors import OptionError

        raise OptionError(f"--smooth must be at least 0 and below 1, not {args.smooth}")
    fast, options = _fast(args)
    weights = parse_style(args.style, fast.styles)
    label = (args.style or fast.styles[0]).replace(",", "+").replace(":", "")
    output = args.output or f"{Path(args.input).stem}.{label}.mp4"

    def transform(frame):
        from PIL import Image

        from ..io.images import resize_longest

        content = to_tensor(resize_longest(Image.fromarray(frame), options.size))
        return fast.paint(content, weights, options)[0].permute(1, 2, 0).mul(255).numpy()

    frames = stylize_video(
        args.input, output, transform, smooth=args.smooth, progress=not args.quiet
    )
    print(f"wrote {output}: {frames} frames")
    return 0


def webcam(args: argparse.Namespace) -> int:
    import torch

    from ..io.images import to_image, to_tensor
    from ..io.webcam import run_webcam
    from ..methods.feedforward import parse_style

    fast, options = _fast(args)
    n = len(fast.styles)
    start = int(parse_style(args.style, fast.styles).argmax())

    def paint(picture, style):
        weights = torch.full((n,), 1.0 / n) if style is None else parse_style(style, fast.styles)
        return to_image(fast.paint(to_tensor(picture), weights, options))

    run_webcam(paint, fast.styles, camera=args.camera, size=options.size, first=start)
    return 0


def sheet(args: argparse.Namespace) -> int:
    from ..io.images import check_output_path, load_image, resize_longest, save_image
    from ..io.sheet import labelled_grid

    output = args.output or f"{Path(args.photo).stem}.sheet.png"
    check_output_path(output, (args.photo,))
    fast, options = _fast(args)
    photo = resize_longest(load_image(args.photo), options.size)
    tiles = [photo] + [fast.run(photo, i, options).image for i in range(len(fast.styles))]
    out = labelled_grid(tiles, ["photo", *fast.styles], args.columns, cell=options.size)
    save_image(out, output, (args.photo,))
    print(f"wrote {output}: {len(fast.styles)} styles")
    return 0
