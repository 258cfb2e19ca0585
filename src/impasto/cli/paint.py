"""`stylize`, `fast`, `arbitrary` and `dream`: photos painted, one command per method,
with the same inputs, outputs, reports and shared options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ImageError, OptionError
from ..options import METHODS, PRESETS, Output, Setup, update
from .args import add_options, add_setup, chosen, given
from .files import add_files, loader, painting_label, plan, report, save

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
METHOD = {"stylize": "optimize", "fast": "fast", "arbitrary": "arbitrary", "dream": "dream"}


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    method = METHOD[command]
    add_files(parser, "images" if command == "dream" else "photos")
    if command in ("stylize", "arbitrary"):
        parser.add_argument(
            "--style",
            action="append",
            required=True,
            metavar="IMAGE",
            help="the painting; repeat to blend several",
        )
    if command == "fast":
        parser.add_argument(
            "--style",
            metavar="NAME|INDEX[:W],...",
            help="one of the model's styles, or a blend: udnie:0.7,candy:0.3 (default: its first)",
        )
    if command == "stylize":
        parser.add_argument(
            "--preset",
            choices=PRESETS,
            default=argparse.SUPPRESS,
            help="more-style / more-photo move along the content-style "
            "trade-off; classic is Gatys et al. (Gram loss, L-BFGS); options "
            "given override it (default: balanced)",
        )
    add_options(parser, METHODS[method])
    add_setup(parser, method)


def run(args: argparse.Namespace) -> int:
    method = METHOD[args.command]
    options = _options(args, method)
    styles = _styles(args)
    from .. import api, runtime

    where = given(args, Setup)
    where["device"] = runtime.local_device(where.get("device", "auto"))
    if method == "arbitrary":  # one picture: no torch to import, where onnx paints it
        jobs = runtime.shard(plan(args, _label(args, None)))
        if len(jobs) == 1 and where.get("backend", "auto") == "auto":
            where["backend"] = api.one_picture_backend(where)
    loaded = api.load(method, **where)
    if method != "arbitrary":
        jobs = runtime.shard(plan(args, _label(args, loaded)))
    if method == "fast":
        results = loaded.run_many([j.source for j in jobs], styles, options, load=loader(args))
    else:
        read = loader(args)
        quiet = chosen(args, Output).quiet
        results = (_run(loaded, job, styles, options, not quiet, read) for job in jobs)
    failed = 0
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, ImageError):
            if len(jobs) == 1:
                raise result
            print(f"impasto: skipped: {result}", file=sys.stderr)
            failed += 1
            continue
        save(args, job, result)
        report(args, job, result)
        if result.interrupted:
            print(
                f"impasto: interrupted after {result.iterations} iterations; wrote "
                f"{job.target or 'standard output'}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    if failed:
        print(f"impasto: error: {failed} of {len(jobs)} inputs could not be read", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _options(args: argparse.Namespace, method: str):
    """The method's options from the flags given, all checked before anything loads."""
    flags = given(args, METHODS[method])
    if method == "optimize":
        from ..methods.presets import resolve

        options = resolve(None, getattr(args, "preset", None), flags)
        if options.init not in ("content", "noise") and not Path(options.init).is_file():
            raise OptionError(f"--init {options.init}: no such file (or content, noise)")
    else:
        options = update(METHODS[method](), flags, method)
    folder = getattr(options, "snapshots", None)
    if getattr(options, "save_every", 0) and folder is None:
        raise OptionError("--save-every needs --snapshots DIR")
    if folder is not None:  # made now: a folder that cannot be is an error before any work
        from ..io.atomic import make_folder

        make_folder(folder, "snapshots folder")
    return options


def _styles(args: argparse.Namespace):
    """The paintings, read now (a bad one is an error before any work), or fast's style
    names; dream has none."""
    if args.command in ("stylize", "arbitrary"):
        return [loader(args)(path) for path in args.style]
    return getattr(args, "style", None)


def _label(args: argparse.Namespace, loaded) -> str:
    """What the default output is named after: the styles."""
    if args.command == "dream":
        return "dream"
    if args.command == "fast":
        spec = args.style or loaded.styles[0]
        return "+".join(item.split(":")[0] for item in str(spec).split(","))
    return painting_label(args.style)


def _run(loaded, job, styles, options, progress: bool, read):
    """One picture, or the ImageError that kept its photo from being read."""
    try:
        photo = read(job.source, name=job.name)
    except ImageError as e:
        return e
    if styles is None:
        return loaded.run(photo, options, progress=progress)
    return loaded.run(photo, styles, options, progress=progress)
