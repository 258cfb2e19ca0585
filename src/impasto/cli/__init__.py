"""The `impasto` command line: one thin module per group of commands, beside the library.

Only the command asked for builds its flags, and nothing imports torch until a command
runs, so `--help` and a mistyped flag answer at once. Every user error is one line on
stderr and exit code 2 (`--debug` shows the traceback); Ctrl-C exits 130, and so does
SIGTERM (`kill`, `timeout`, a scheduler's stop), after the same care: training writes
its checkpoint, optimization keeps its picture so far, a video the frames painted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from importlib import import_module

from .._version import __version__
from ..errors import ImpastoError
from .args import EXIT_USAGE, Help, Parser

EXIT_INTERRUPTED = 130

# command: (module, one line of help)
COMMANDS = {
    "stylize": ("paint", "stylize by optimization (Gatys et al.): slow, any style, best quality"),
    "fast": ("paint", "stylize with a trained network (default: the built-in styles)"),
    "arbitrary": ("paint", "any painting as the style, in one pass"),
    "dream": ("paint", "DeepDream: amplify what VGG-19's layers see"),
    "video": ("media", "stylize a video with a trained network or any painting (audio is kept)"),
    "stylize-video": ("media", "a video by optimization (Ruder et al.): best, minutes a frame"),
    "webcam": ("media", "live webcam with a trained network or any painting (needs opencv)"),
    "sheet": ("media", "a photo in every style of a network, labelled"),
    "train": ("train", "train a feed-forward network on one or more styles (torchrun-ready)"),
    "train-decoders": ("train", "train decoders that reconstruct, for `impasto arbitrary`"),
    "train-arbitrary": ("train", "train a one-pass network that paints any painting"),
    "export": ("tools", "export a network to ONNX or TorchScript"),
    "evaluate": ("tools", "score a picture: content, Gram and moment distances"),
    "features": ("tools", "draw a layer's strongest feature maps, or its Gram matrix"),
    "models": ("tools", "list the built-in models"),
    "info": ("tools", "versions, device, bf16 and the VGG-19 weights found"),
    "serve": ("serve", "the web app and HTTP API"),
    "worker": ("serve", "run the jobs of a shared job store (impasto serve --store)"),
}


def _module(command: str):
    return import_module(f".{COMMANDS[command][0]}", __name__)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser, with the flags of the command named in `argv` (the others list only
    their one line of help)."""
    parser = Parser(
        prog="impasto",
        formatter_class=Help,
        description="Neural style transfer: repaint a photo like a painting.",
    )
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (_, text) in COMMANDS.items():
        command = sub.add_parser(name, help=text, description=text, formatter_class=Help)
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        if name == chosen:
            _module(name).configure(name, command)
            parser.command = command  # errors in its flags print its own usage
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while a command runs (in the main thread, the only
    one that takes signals); the handler before is put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.command.error(f"unrecognized arguments: {' '.join(unknown)}")
    from .. import runtime

    runtime.retain_freed_memory()
    try:
        with _terminate_as_interrupt():
            return _module(args.command).run(args)
    except ImpastoError as e:
        if args.debug:
            raise
        print(f"impasto: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
