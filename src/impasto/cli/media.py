"""`video`, `webcam`, `stylize-video` and `sheet`: moving pictures, and one photo in all
the styles of a network. Video and webcam paint with a trained network's styles
(`--style`, the built-in `styles` by default) or like any painting (`--painting`, the
one-pass arbitrary method); stylize-video optimizes every frame (Ruder et al.)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ..errors import OptionError, VideoInterrupted
from ..options import (
    PRESETS,
    SETUP,
    ArbitraryOptions,
    FastOptions,
    FrameOptions,
    Media,
    OptimizeOptions,
    Output,
    Setup,
)
from .args import add_options, add_setup, chosen, given
from .files import announce, painting_label

EXIT_INTERRUPTED = 130


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "stylize-video":
        p.add_argument("input", help="the video")
        p.add_argument(
            "--style", action="append", required=True, metavar="IMAGE", help="the painting"
        )
        p.add_argument(
            "-o",
            "--output",
            help="the video, .mp4 .mkv .mov or .webm (default: VIDEO.PAINTING.mp4 here)",
        )
        p.add_argument(
            "--preset",
            choices=PRESETS,
            default=argparse.SUPPRESS,
            help="as for stylize (default: balanced)",
        )
        add_options(p, FrameOptions)
        add_options(p, OptimizeOptions)
        add_options(p, Output, only=("json", "quiet"))
        add_setup(p, "optimize")
        return
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
        from ..io.webcam import KEYS

        p.epilog = KEYS
        add_options(p, Media, only=("camera", "consistency", "consistency_strength"))
    if command in ("video", "webcam"):
        style = p.add_mutually_exclusive_group()
        style.add_argument(
            "--style",
            metavar="NAME|INDEX[:W],...",
            help="one of the model's styles, or a blend (default: its first)",
        )
        style.add_argument(
            "--painting",
            action="append",
            metavar="IMAGE",
            help="paint like this painting instead, in one pass (the arbitrary method); "
            "repeat to blend several",
        )
        add_options(p, FastOptions)
        add_options(p, ArbitraryOptions, only=tuple(_own(ArbitraryOptions) - _own(FastOptions)))
        add_options(p, Setup, only=tuple(dict.fromkeys(SETUP["fast"] + SETUP["arbitrary"])))
        return
    p.add_argument("photo")
    p.add_argument("-o", "--output", help="default: PHOTO.sheet.png here")
    add_options(p, Media, only=("columns",))
    add_options(p, Output, only=("json", "quiet"))
    add_options(p, FastOptions)
    add_setup(p, "fast")


def _own(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def run(args: argparse.Namespace) -> int:
    commands = {"video": video, "webcam": webcam, "stylize-video": stylize_video, "sheet": sheet}
    return commands[args.command](args)


def _fast(args: argparse.Namespace):
    """The loaded network and the options, checked before it loads."""
    from .. import api
    from ..options import update

    options = update(FastOptions(), given(args, FastOptions), "fast")
    return api.load("fast", **given(args, Setup)), options


def _moving(args: argparse.Namespace) -> tuple[str, object, dict]:
    """The method video or webcam paints with, its style, and its options and setup from
    the flags; a flag the method does not take is an error."""
    method = "arbitrary" if args.painting else "fast"
    options = ArbitraryOptions if args.painting else FastOptions
    takes = _own(options) | set(SETUP[method])
    flags = {**given(args, FastOptions), **given(args, ArbitraryOptions), **given(args, Setup)}
    wrong = sorted(set(flags) - takes)
    if wrong:
        names = ", ".join("--" + n.replace("_", "-") for n in wrong)
        what = "--painting (one pass)" if args.painting else "a trained network's --style"
        raise OptionError(f"{names}: not an option of {what}")
    return method, args.painting or args.style, flags


def video(args: argparse.Namespace) -> int:
    from .. import api

    method, style, keywords = _moving(args)
    if args.painting:
        label = painting_label(args.painting)
    elif args.style:
        label = args.style.replace(",", "+").replace(":", "")
    else:
        label = _fast(args)[0].styles[0]
    output = args.output or f"{Path(args.input).stem}.{label}.mp4"
    return _write(
        args,
        output,
        lambda progress: api.video(
            args.input,
            output,
            style,
            method=method,
            progress=progress,
            **given(args, Media),
            **keywords,
        ),
    )


def stylize_video(args: argparse.Namespace) -> int:
    from .. import api
    from .files import loader

    output = args.output or f"{Path(args.input).stem}.{painting_label(args.style)}.mp4"
    paintings = [loader(args)(path) for path in args.style]  # a bad one: an error now
    keywords = {**given(args, OptimizeOptions), **given(args, FrameOptions)}
    return _write(
        args,
        output,
        lambda progress: api.stylize_video(
            args.input,
            output,
            paintings,
            preset=getattr(args, "preset", None),
            progress=progress,
            **keywords,
            **given(args, Setup),
        ),
        resumes=True,
    )


def _write(args: argparse.Namespace, output: str, paint, resumes: bool = False) -> int:
    """Run `paint(progress)`, which writes a video, and report it; Ctrl-C has written the
    frames so far (exit 130), and says so."""
    try:
        frames = paint(not chosen(args, Output).quiet)
    except VideoInterrupted as e:
        more = "; the same command goes on from there" if resumes else ""
        print(f"impasto: {e}{more}", file=sys.stderr)
        return EXIT_INTERRUPTED
    announce(args, f"wrote {output}: {frames} frames", output=str(output), frames=frames)
    return 0


def webcam(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from .. import api
    from ..io.webcam import run_webcam
    from ..methods.temporal import consistency

    method, style, keywords = _moving(args)
    media = chosen(args, Media)
    steady = consistency(media)
    if args.painting:  # one look: the painting (or the blend) given
        names, first = [painting_label(args.painting)], 0
        paints = {0: api.painter(method, style, steady=steady, **keywords)}
    else:
        from ..methods.blend import style_mix

        names = list(_fast(args)[0].styles)
        first = int(style_mix(style, names).argmax())
        paints = {}

    def paint(picture, index):
        index = 0 if args.painting else index
        if index not in paints:  # a network's style, or all of them blended (None)
            spec = [1.0] * len(names) if index is None else index
            paints.clear()  # one at a time: the features it carries are its own last frame's
            paints[index] = api.painter(method, spec, steady=steady, **keywords)
        if steady is None:
            frame = paints[index](picture)
        else:
            photo = np.asarray(picture)
            steady.expect(photo)  # the flow, found first: the network carries along it
            frame = steady(photo, paints[index](picture))
        return Image.fromarray(np.clip(frame + 0.5, 0, 255).astype(np.uint8))

    size = keywords.get("size", FastOptions().size)
    run_webcam(paint, names, camera=media.camera, size=size, first=first)
    return 0


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
