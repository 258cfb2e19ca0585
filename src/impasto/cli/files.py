"""Inputs and outputs of the painting commands: one rule for every command.

Inputs are files, folders (searched recursively) and globs; `-` is standard input. The
output of `photo.jpg` painted like `starry.jpg` is `photo.starry.png` here, unless `-o`
names a file (one input), a folder (`-o out/`: each input keeps its name and format, a
folder's images their place in it) or `-` (standard output). Every output is checked
before any work starts, and written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError
from ..options import Output
from .args import add_options, chosen

STDIO = "-"


def add_files(parser: argparse.ArgumentParser, what: str = "photos") -> None:
    """The inputs, -o, and how pictures are read, written and reported (Output)."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=f"{what}: files, folders or globs; - reads standard input",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="an image file, a folder (out/) or - for standard output "
        "(default: PHOTO.STYLE.png here)",
    )
    add_options(parser, Output)


def loader(args: argparse.Namespace):
    """How the command reads an image: within its --max-pixels."""
    from functools import partial

    from ..io.images import load_image

    return partial(load_image, max_pixels=chosen(args, Output).max_pixels)


@dataclass
class Job:
    """One input and where its picture goes."""

    source: Path | bytes  # a file, or the bytes read from standard input
    target: Path | None  # None: standard output
    name: str  # how messages call the input


def painting_label(paths: list[str]) -> str:
    """What an output is named after, for paintings: their names, joined."""
    return "+".join(Path(path).stem for path in paths)


def plan(args: argparse.Namespace, label: str) -> list[Job]:
    """Each input with its output, all checked now; `label` names the style."""
    from ..io.images import DEEP_FORMATS, SAVE_FORMATS, expand_inputs

    stdin = [spec for spec in args.inputs if spec == STDIO]
    if len(stdin) > 1:
        raise OptionError("standard input (-) can be read once")
    named = [spec for spec in args.inputs if spec != STDIO]
    sources = [(sys.stdin.buffer.read(), Path("stdin.png"))] if stdin else []
    sources += expand_inputs(named) if named else []
    out, jobs = args.output, []
    bit_depth = chosen(args, Output).bit_depth
    folder = out is not None and out != STDIO and _is_folder(out)
    if out is not None and not folder and len(sources) > 1:
        raise OptionError(f"{len(sources)} inputs: give an output folder, -o {out}/")
    for source, name in sources:
        if out == STDIO:
            target = None
        elif folder:
            kept = DEEP_FORMATS if bit_depth == 16 else tuple(SAVE_FORMATS)
            suffix = name.suffix.lower() if name.suffix.lower() in kept else ".png"
            target = Path(out) / name.with_suffix(suffix)
        else:
            target = Path(out) if out else Path(f"{name.stem}.{label}.png")
        shown = "standard input" if isinstance(source, bytes) else str(source)
        jobs.append(Job(source, target, shown))
    targets = [j.target for j in jobs if j.target is not None]
    if len(set(targets)) < len(targets):
        raise OptionError("two inputs would write the same output: give -o FOLDER/")
    inputs = tuple(s for s, _ in sources if not isinstance(s, bytes))
    for target in targets:
        _check(target, bit_depth, inputs, in_new_folder=folder)
    return jobs


def _is_folder(out: str) -> bool:
    """`out/`, an existing folder, or a new name without an extension."""
    path = Path(out)
    return out.endswith(("/", "\\")) or path.is_dir() or not (path.suffix or path.exists())


def _check(target: Path, bit_depth: int, inputs: tuple, in_new_folder: bool) -> None:
    from ..io.atomic import make_folder
    from ..io.images import DEEP_FORMATS, check_output_path

    if bit_depth == 16 and target.suffix.lower() not in DEEP_FORMATS:
        raise OptionError(f"{target}: --bit-depth 16 writes PNG or TIFF")
    if in_new_folder:
        make_folder(target.parent)
    check_output_path(target, inputs)


def save(args: argparse.Namespace, job: Job, result) -> None:
    """Write a result where its job says: 8-bit `result.image`, or with --bit-depth 16
    its float pixels (the image lends them its EXIF and colour profile)."""
    import io

    from ..io.images import encode16, save_image, save_image16

    deep = chosen(args, Output).bit_depth == 16
    if job.target is not None and deep:
        save_image16(result.pixels, job.target, result.image, (job.source,))
    elif job.target is not None:
        save_image(result.image, job.target, (job.source,))
    else:  # standard output: a PNG
        buffer = io.BytesIO()
        if deep:
            buffer.write(encode16(result.pixels, ".png", result.image))
        else:
            result.image.save(buffer, format="PNG")
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.flush()


def announce(args: argparse.Namespace, line: str, stream=None, **facts) -> None:
    """A command's report: `line`, or with --json the facts as a JSON line; nothing with
    --quiet. On `stream` (default: standard output)."""
    out = chosen(args, Output)
    if out.json:
        print(json.dumps(facts), file=stream or sys.stdout)
    elif not out.quiet:
        print(line, file=stream or sys.stdout)


def report(args: argparse.Namespace, job: Job, result) -> None:
    """One line for an output written: `wrote X (W×H, N s, device)`, or a JSON line. On
    standard error when the picture itself went to standard output."""
    where = "standard output" if job.target is None else str(job.target)
    width, height = result.image.size
    line = f"wrote {where} ({width}×{height}, {result.seconds:.1f} s, {result.device})"
    announce(
        args,
        line,
        sys.stderr if job.target is None else None,
        output=where,
        input=job.name,
        width=width,
        height=height,
        seconds=round(result.seconds, 3),
        device=result.device,
        losses=result.losses,
        iterations=result.iterations,
        sizes=result.sizes,
        interrupted=result.interrupted,
        **({"balance": result.options["balance"]} if result.options.get("balance") else {}),
    )
