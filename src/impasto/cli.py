"""The `impasto` command line.

Every user error is one line on stderr and exit code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from . import __version__
from .errors import ImpastoError, OptionError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas: {text!r}"
        ) from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas: {text!r}"
        ) from None


def _layers(text: str) -> dict[str, float]:
    """`relu1_1:1,relu2_1:0.5,relu3_1` -> {name: weight}; a missing weight is 1."""
    layers = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            layers[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight in {item!r}") from None
    return layers


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _spec(layers: dict[str, float]) -> str:
    return ",".join(f"{name}:{weight:g}" for name, weight in layers.items())


def build_parser() -> argparse.ArgumentParser:
    from .io.images import MAX_PIXELS
    from .methods.optimize import COLOR_MODES, OPTIMIZERS, PRECISIONS, Options
    from .nets.vgg import POOLINGS

    D = Options()  # noqa: N806 (the defaults live in one place: Options)
    parser = argparse.ArgumentParser(
        prog="impasto", description="Neural style transfer: repaint a photo like a painting."
    )
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser(
        "info", parents=[common], help="versions, device and VGG-19 weights found"
    )
    info.add_argument("--weights", help="VGG-19 weights file to describe")
    info.add_argument("--device", default="auto")
    info.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser(
        "stylize",
        parents=[common],
        help="stylize by optimization (Gatys et al.): slow, any style, best quality",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument("content", help="the photo")
    s.add_argument(
        "--style",
        action="append",
        required=True,
        metavar="IMAGE",
        help="style image; repeat to blend several",
    )
    s.add_argument(
        "--style-weights",
        type=_floats,
        metavar="W,W,...",
        help="blend weights of the style images (default: equal)",
    )
    s.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output image (.png .jpg .webp .tif); default CONTENT_STYLE.png here",
    )
    s.add_argument("--size", type=_positive_int, default=D.size, help="longest side of the output")
    s.add_argument(
        "--iterations",
        type=_ints,
        default=[D.iterations],
        metavar="N[,N...]",
        help="iterations per scale: one number for all, or one per scale",
    )
    s.add_argument(
        "--content-weight", type=float, default=D.content_weight, help="content weight (alpha)"
    )
    s.add_argument("--style-weight", type=float, default=D.style_weight, help="style weight (beta)")
    s.add_argument("--tv-weight", type=float, default=D.tv_weight, help="total-variation weight")
    s.add_argument(
        "--content-layers",
        type=_layers,
        default=_spec(D.content_layers),
        metavar="L[:W],...",
        help="content layers and their weights",
    )
    s.add_argument(
        "--style-layers",
        type=_layers,
        metavar="L[:W],...",
        default=_spec(D.style_layers),
        help="style layers and their weights",
    )
    s.add_argument("--init", default=D.init, help="content, noise, or an image path")
    s.add_argument("--optimizer", choices=OPTIMIZERS, default=D.optimizer)
    s.add_argument("--lr", type=float, help="Adam's learning rate / L-BFGS's first step")
    s.add_argument("--preserve-color", choices=COLOR_MODES, help="keep the photo's colours")
    s.add_argument(
        "--scales",
        type=_ints,
        metavar="S,S,...",
        help="coarse-to-fine sizes (default: halve --size down to 256)",
    )
    s.add_argument(
        "--style-scale",
        type=float,
        default=D.style_scale,
        help="style image size relative to the output",
    )
    s.add_argument("--pooling", choices=POOLINGS, default=D.pooling)
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    s.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=D.precision,
        help="bf16: VGG's convolutions in bfloat16, about 1.9x faster on this CPU",
    )
    s.add_argument(
        "--save-every", type=int, default=0, metavar="N", help="write a snapshot every N iterations"
    )
    s.add_argument("--snapshots", metavar="DIR", help="folder for snapshots")
    s.add_argument("--seed", type=int, help="seed for the noise init (runs repeat on CPU)")
    s.add_argument("--weights", metavar="PATH", help="VGG-19 weights (.pth, .safetensors, .bin)")
    s.add_argument(
        "--max-pixels", type=_positive_int, default=MAX_PIXELS, help="refuse larger input images"
    )
    s.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def cmd_info(args: argparse.Namespace) -> int:
    import numpy
    import PIL
    import torch

    from .devices import resolve_device
    from .nets.weights import candidates, find_weights

    weights = find_weights(args.weights)
    report = {
        "impasto": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "device": str(resolve_device(args.device)),
        "cuda": torch.version.cuda,
        "weights": {
            "source": weights.source,
            "path": str(weights.path),
            "sha256": weights.sha256(),
            "convention": weights.convention,
        },
        "searched": [
            {"source": label, "path": str(path), "found": path.is_file()}
            for label, path in candidates()
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key in ("impasto", "python", "torch", "numpy", "pillow", "device", "cuda"):
        print(f"{key:<10}{report[key]}")
    print("weights")
    for key, value in report["weights"].items():
        print(f"  {key:<12}{value}")
    print("searched")
    for c in report["searched"]:
        print(f"  [{'x' if c['found'] else ' '}] {c['source']}: {c['path']}")
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from .io.images import check_output_path, load_image, save_image
    from .methods.optimize import Options, Stylizer

    output = args.output or f"{Path(args.content).stem}_{Path(args.style[0]).stem}.png"
    inputs = (args.content, *args.style, args.init)
    check_output_path(output, inputs)  # fail now, not after minutes of work
    if args.snapshots is None and args.save_every:
        raise OptionError("--save-every needs --snapshots DIR")
    iterations = args.iterations[0] if len(args.iterations) == 1 else args.iterations
    options = Options(
        size=args.size, iterations=iterations, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight,
        content_layers=args.content_layers, style_layers=args.style_layers,
        style_weights=args.style_weights, style_scale=args.style_scale, init=args.init,
        optimizer=args.optimizer, lr=args.lr, preserve_color=args.preserve_color,
        scales=args.scales, pooling=args.pooling, precision=args.precision, seed=args.seed,
        save_every=args.save_every, snapshots=args.snapshots,
    )  # fmt: skip
    options.validate()
    limit = {"max_pixels": args.max_pixels}
    content = load_image(args.content, **limit)
    styles = [load_image(path, **limit) for path in args.style]
    if args.init not in ("content", "noise"):
        options.init = load_image(args.init, **limit)
    stylizer = Stylizer(args.weights, args.device)
    result = stylizer.run(content, styles, options=options, progress=not args.quiet)
    save_image(result.image, output, inputs)
    if args.json:
        summary = {
            "output": str(output),
            "losses": result.losses,
            "seconds": round(result.seconds, 3),
            "iterations": result.iterations,
            "sizes": result.sizes,
            "device": result.device,
            "interrupted": result.interrupted,
        }
        print(json.dumps(summary))
    if result.interrupted:
        print(
            f"impasto: interrupted after {result.iterations} iterations; wrote {output}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


COMMANDS = {"info": cmd_info, "stylize": cmd_stylize}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
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
