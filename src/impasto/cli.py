"""The `impasto` command line.

Every user error is one line on stderr and exit code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
from dataclasses import fields
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


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it has none or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action)


BIT_DEPTH_HELP = "16: 16 bits per channel, for print (PNG or TIFF)"


def _check_bit_depth(args: argparse.Namespace, output) -> None:
    """Refuse a 16-bit output in a format that cannot hold it, before any work."""
    from .io.images import DEEP_FORMATS

    if getattr(args, "bit_depth", 8) == 16 and Path(output).suffix.lower() not in DEEP_FORMATS:
        raise OptionError(f"{output}: --bit-depth 16 writes PNG or TIFF")


def _save(args: argparse.Namespace, image, pixels, like, output, inputs) -> None:
    """Write a result: 8-bit `image`, or with --bit-depth 16 the float `pixels`."""
    from .io.images import save_image, save_image16

    if getattr(args, "bit_depth", 8) == 16:
        save_image16(pixels, output, like, inputs)
    else:
        save_image(image, output, inputs)


def _spec(layers: dict[str, float]) -> str:
    return ",".join(f"{name}:{weight:g}" for name, weight in layers.items())


def build_parser() -> argparse.ArgumentParser:
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

    _add_stylize(sub, common)
    _add_train(sub, common)
    _add_fast(sub, common)
    _add_export(sub, common)
    _add_dream(sub, common)
    m = sub.add_parser("models", parents=[common], help="list the built-in models")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    sh = sub.add_parser("sheet", parents=[common],
                        help="a photo in every style of a model, labelled")  # fmt: skip
    sh.add_argument("photo")
    sh.add_argument("-o", "--output", required=True, metavar="OUT")
    sh.add_argument("--model", default="styles", help="built-in name or model file")
    sh.add_argument("--size", type=_positive_int, default=512, help="longest side of each tile")
    sh.add_argument("--columns", type=_positive_int, default=4)
    sh.add_argument("--device", default="auto")
    _add_arbitrary(sub, common)
    _add_serve(sub, common)
    ev = sub.add_parser("evaluate", parents=[common],
                        help="score an output: Gram, moment and content distances")  # fmt: skip
    ev.add_argument("output", help="the stylized image")
    ev.add_argument("--content", required=True, help="the photo")
    ev.add_argument("--style", required=True, help="the painting")
    ev.add_argument("--size", type=_positive_int, default=512, help="longest side compared at")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--weights", metavar="PATH", help="VGG-19 weights")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _add_stylize(sub, common) -> None:
    from .io.images import MAX_PIXELS
    from .losses import STYLE_LOSSES
    from .methods.optimize import (
        COLOR_MODES,
        DEFAULT_STYLE_WEIGHTS,
        OPTIMIZERS,
        PRECISIONS,
        PRESETS,
        Options,
    )
    from .nets.vgg import PADDINGS, POOLINGS

    # Flags a preset sets default to None: given ones override the preset's values.
    D = Options()  # noqa: N806 (the defaults live in one place: Options)
    s = sub.add_parser(
        "stylize",
        parents=[common],
        help="stylize by optimization (Gatys et al.): slow, any style, best quality",
        description="Defaults are the 'balanced' preset; --preset picks another, and "
        "any flag given overrides the preset.",
    )
    s.add_argument("content", help="the photo")
    s.add_argument("--style", action="append", required=True, metavar="IMAGE",
                   help="style image; repeat to blend several")  # fmt: skip
    s.add_argument("--style-weights", type=_floats, metavar="W,W,...",
                   help="blend weights of the style images (default: equal)")  # fmt: skip
    s.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output image (.png .jpg .webp .tif); default CONTENT_STYLE.png here",
    )
    s.add_argument(
        "--preset",
        choices=PRESETS,
        default="balanced",
        help="more-style / more-photo move along the content-style trade-off; "
        "classic is Gatys et al. (Gram loss, L-BFGS) (default: balanced)",
    )
    s.add_argument("--size", type=_positive_int, help=f"longest side of the output ({D.size})")
    s.add_argument("--iterations", type=_ints, metavar="N[,N...]",
                   help="iterations per scale: one number for all, or one per scale "
                   f"({D.iterations})")  # fmt: skip
    s.add_argument("--content-weight", type=float,
                   help=f"content weight, alpha ({D.content_weight:g})")  # fmt: skip
    weights = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_STYLE_WEIGHTS.items())
    s.add_argument("--style-weight", type=float,
                   help=f"style weight, beta (default per style loss: {weights})")  # fmt: skip
    s.add_argument("--tv-weight", type=float,
                   help=f"total-variation weight ({D.tv_weight:g})")  # fmt: skip
    s.add_argument("--style-loss", choices=STYLE_LOSSES,
                   help="gram: Gatys; moments: mean and covariance; w2: Wasserstein-2 "
                   f"({D.style_loss})")  # fmt: skip
    s.add_argument(
        "--content-layers",
        type=_layers,
        metavar="L[:W],...",
        help=f"content layers and their weights ({_spec(D.content_layers)})",
    )
    s.add_argument(
        "--style-layers",
        type=_layers,
        metavar="L[:W],...",
        help=f"style layers and their weights ({_spec(D.style_layers)})",
    )
    s.add_argument("--init", help=f"content, noise, or an image path ({D.init})")
    s.add_argument("--optimizer", choices=OPTIMIZERS, help=f"({D.optimizer})")
    s.add_argument("--lr", type=float, help="Adam's learning rate / L-BFGS's first step")
    s.add_argument("--history", type=int, metavar="N",
                   help="L-BFGS curvature pairs, two image-sized buffers each; 100 reaches "
                   f"a given loss in fewer iterations ({D.history})")  # fmt: skip
    s.add_argument("--average", type=float, metavar="DECAY",
                   help="show, save and carry to the next scale a moving average of the "
                   f"iterates with this decay; 0: off ({D.average:g})")  # fmt: skip
    s.add_argument("--no-warm-start", dest="warm_start", action="store_false", default=None,
                   help="start Adam afresh at each scale")  # fmt: skip
    s.add_argument("--preserve-color", choices=COLOR_MODES, help="keep the photo's colours")
    s.add_argument("--scales", type=_ints, metavar="S,S,...",
                   help="coarse-to-fine sizes (default: divide --size by --scale-step "
                   "down to --min-scale)")  # fmt: skip
    s.add_argument("--scale-step", type=float,
                   help=f"ratio between scales ({D.scale_step:.4g})")  # fmt: skip
    s.add_argument("--min-scale", type=_positive_int, help=f"smallest scale ({D.min_scale})")
    s.add_argument(
        "--style-scale",
        type=float,
        help=f"style image size relative to the output ({D.style_scale:g})",
    )
    s.add_argument("--pooling", choices=POOLINGS, help=f"({D.pooling})")
    s.add_argument("--padding", choices=PADDINGS,
                   help=f"padding of VGG's first layer ({D.padding})")  # fmt: skip
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    s.add_argument("--precision", choices=PRECISIONS,
                   help=f"bf16: VGG's convolutions in bfloat16, about 1.9x faster on a GPU or "
                   f"a CPU with AVX-512 or AMX; else fp32 ({D.precision})")  # fmt: skip
    s.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="write a snapshot every N iterations")  # fmt: skip
    s.add_argument("--snapshots", metavar="DIR", help="folder for snapshots")
    s.add_argument("--max-memory", type=_positive_int, metavar="MB",
                   help="scales that would need more are optimized in tiles "
                   "(default: half the memory free at the start)")  # fmt: skip
    s.add_argument("--tile", type=_positive_int, metavar="PX",
                   help="optimize scales larger than this in tiles of this size")  # fmt: skip
    s.add_argument("--seed", type=int, help="seed for the noise init (runs repeat on CPU)")
    s.add_argument("--weights", metavar="PATH", help="VGG-19 weights (.pth, .safetensors, .bin)")
    s.add_argument("--max-pixels", type=_positive_int, default=MAX_PIXELS,
                   help=f"refuse larger input images ({MAX_PIXELS})")  # fmt: skip
    s.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help=BIT_DEPTH_HELP)
    s.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train(sub, common) -> None:
    from .methods.optimize import PRECISIONS
    from .training.train import TrainOptions

    D = TrainOptions(styles=[], data="", output="")  # noqa: N806
    t = sub.add_parser(
        "train",
        parents=[common],
        help="train a feed-forward network on one or more styles (torchrun-ready)",
        formatter_class=_Help,
    )
    t.add_argument("--style", action="append", required=True, metavar="IMAGE",
                   help="style image; repeat for a multi-style network")  # fmt: skip
    t.add_argument("--style-names", type=lambda v: v.split(","), metavar="A,B,...",
                   help="names of the styles (default: the files' names)")  # fmt: skip
    t.add_argument("--data", required=True, metavar="DIR", help="training photos (recursive)")
    t.add_argument("-o", "--output", required=True, metavar="MODEL.safetensors")
    t.add_argument("--steps", type=_positive_int, default=D.steps)
    t.add_argument("--batch-size", type=_positive_int, default=D.batch_size)
    t.add_argument("--image-size", type=_positive_int, default=D.image_size,
                   help="side of the square training crops")  # fmt: skip
    t.add_argument("--style-size", type=_positive_int, default=D.style_size,
                   help="longest side of the style images")  # fmt: skip
    t.add_argument("--lr", type=float, default=D.lr, help="Adam's peak learning rate")
    t.add_argument("--content-weight", type=float, default=D.content_weight)
    t.add_argument("--style-weight", type=float, default=D.style_weight)
    t.add_argument("--tv-weight", type=float, default=D.tv_weight)
    t.add_argument("--content-layers", type=_layers, default=_spec(D.content_layers),
                   metavar="L[:W],...")  # fmt: skip
    t.add_argument("--style-layers", type=_layers, default=_spec(D.style_layers),
                   metavar="L[:W],...")  # fmt: skip
    t.add_argument("--width", type=_positive_int, default=D.width,
                   help="channels of the network's first layer")  # fmt: skip
    t.add_argument("--blocks", type=int, default=D.blocks, help="residual blocks")
    t.add_argument("--checkpoint-every", type=_positive_int, default=D.checkpoint_every)
    t.add_argument("--sample-every", type=int, default=D.sample_every, metavar="N",
                   help="stylize the --holdout photos every N steps (0: at the end)")  # fmt: skip
    t.add_argument("--holdout", metavar="DIR", help="photos for the sample sheets")
    t.add_argument("--resume", action="store_true", help="continue from OUTPUT's checkpoint")
    t.add_argument("--seed", type=int, default=D.seed)
    t.add_argument("--device", default=D.device)
    t.add_argument("--precision", choices=PRECISIONS, default=D.precision)
    t.add_argument("--workers", type=int, default=D.workers, help="data-loading processes")
    t.add_argument("--weights", metavar="PATH", help="VGG-19 weights")
    t.add_argument("--distill", action="store_true",
                   help="learn to imitate the optimization method's outputs")  # fmt: skip
    t.add_argument("--distill-images", type=_positive_int, default=D.distill_images)
    t.add_argument("--distill-size", type=_positive_int, default=D.distill_size)
    t.add_argument("--distill-iterations", type=_positive_int, default=D.distill_iterations)
    t.add_argument("--pixel-weight", type=float, default=D.pixel_weight)
    t.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_fast(sub, common) -> None:
    from .methods.feedforward import BACKENDS, PRECISIONS, TILE

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="a built-in model's name or a file")
        p.add_argument("--style", metavar="NAME|INDEX[:W],...",
                       help="a style or a blend of the model's (default: its first)")  # fmt: skip
        p.add_argument("--size", type=_positive_int, help="longest side (default: as input)")
        p.add_argument("--strength", type=float, default=1.0, help="0: the photo, 1: full style")
        p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
        p.add_argument("--device", default="auto")
        p.add_argument("--backend", choices=BACKENDS, default="torch",
                       help="onnx: onnxruntime on the CPU")  # fmt: skip
        p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="bf16: faster on GPUs and CPUs with AVX-512 or AMX")  # fmt: skip
        p.add_argument("--tile", type=_positive_int, default=TILE, metavar="PX",
                       help="bigger pictures run in overlapping tiles")  # fmt: skip

    f = sub.add_parser("fast", parents=[common], help="stylize images with a trained network")
    f.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or globs")
    f.add_argument(
        "-o",
        "--output",
        metavar="OUT|DIR",
        help="output image, or a folder for several (default: NAME_STYLE.png here)",
    )
    model_args(f)
    f.add_argument("--batch", type=_positive_int, default=1, help="images per forward pass")
    f.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help=BIT_DEPTH_HELP)
    f.add_argument("--quiet", action="store_true", help="no progress bar")

    v = sub.add_parser("video", parents=[common], help="stylize a video (audio is kept)")
    v.add_argument("input", help="the video")
    v.add_argument("-o", "--output", required=True, help="output video (.mp4 .mkv .mov .webm)")
    model_args(v)
    v.add_argument("--smooth", type=float, default=0.0,
                   help="0..1: damp flicker where the picture is still")  # fmt: skip
    v.add_argument("--quiet", action="store_true", help="no progress bar")

    w = sub.add_parser("webcam", parents=[common],
                       help="live webcam (needs opencv); keys switch styles")  # fmt: skip
    model_args(w)
    w.add_argument("--camera", type=int, default=0, help="camera index")


def _add_dream(sub, common) -> None:
    from .methods.dream import DreamOptions

    D = DreamOptions()  # noqa: N806
    d = sub.add_parser("dream", parents=[common], help="DeepDream: amplify what layers see",
                       formatter_class=_Help)  # fmt: skip
    d.add_argument("image")
    d.add_argument("-o", "--output", required=True, metavar="OUT")
    d.add_argument("--layers", type=_layers, default=_spec(D.layers), metavar="L[:W],...")
    d.add_argument("--octaves", type=_positive_int, default=D.octaves)
    d.add_argument("--octave-scale", type=float, default=D.octave_scale)
    d.add_argument("--iterations", type=int, default=D.iterations, help="per octave")
    d.add_argument("--step-size", type=float, default=D.step_size)
    d.add_argument("--jitter", type=int, default=D.jitter, help="px")
    d.add_argument("--size", type=_positive_int, default=D.size, help="longest side")
    d.add_argument("--guide", metavar="IMAGE", help="dream of what this image contains")
    d.add_argument("--seed", type=int)
    d.add_argument("--save-every", type=int, default=0, metavar="N")
    d.add_argument("--snapshots", metavar="DIR")
    d.add_argument("--device", default="auto")
    d.add_argument("--weights", metavar="PATH", help="VGG-19 weights")
    d.add_argument("--quiet", action="store_true", help="no progress bar")

    f = sub.add_parser("features", parents=[common],
                       help="draw a layer's strongest maps, or its Gram matrix")  # fmt: skip
    f.add_argument("image")
    f.add_argument("--layer", default="relu3_1")
    f.add_argument("--top", type=_positive_int, default=16, help="how many channels")
    f.add_argument("--gram", action="store_true", help="draw the Gram matrix instead")
    f.add_argument("--size", type=_positive_int, default=512, help="image's longest side")
    f.add_argument("-o", "--output", required=True, metavar="OUT.png")
    f.add_argument("--device", default="auto")
    f.add_argument("--weights", metavar="PATH", help="VGG-19 weights")


def _levels(text: str) -> list[int]:
    """`relu5_1,relu4_1` or `5,4` -> [5, 4]."""
    levels = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        digits = item.removeprefix("relu").removesuffix("_1")
        if not digits.isdigit() or not 1 <= int(digits) <= 5:
            raise argparse.ArgumentTypeError(f"levels are relu1_1 ... relu5_1, not {item!r}")
        levels.append(int(digits))
    return levels


def _add_arbitrary(sub, common) -> None:
    from .methods.arbitrary import DEFAULT_ALPHA, DEFAULT_DECODERS, METHODS, ONE_PASS_PRECISIONS
    from .methods.optimize import PRECISIONS
    from .training.decoders import DecoderOptions

    a = sub.add_parser("arbitrary", parents=[common],
                       help="any style in one pass (universal style transfer, AdaIN)",
                       formatter_class=_Help)  # fmt: skip
    a.add_argument("content")
    a.add_argument("--style", action="append", required=True, metavar="IMAGE",
                   help="style image; repeat to blend")  # fmt: skip
    a.add_argument("--style-weights", type=_floats, metavar="W,W,...")
    a.add_argument("-o", "--output", required=True, metavar="OUT")
    a.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help="0: the photo's features, 1: the style's statistics in full")  # fmt: skip
    a.add_argument("--method", choices=METHODS, default="wct")
    a.add_argument("--levels", type=_levels, metavar="relu4_1,...",
                   help="levels, coarse to fine (default: relu4_1 to relu1_1)")  # fmt: skip
    a.add_argument("--decoders", default=DEFAULT_DECODERS,
                   help="built-in (compact: their own narrow encoder distilled from VGG-19; "
                        "decoders: VGG-19's, ~3x slower) or a decoders file")  # fmt: skip
    a.add_argument("--size", type=_positive_int, default=512, help="output's longest side")
    a.add_argument(
        "--style-size", type=_positive_int, help="style's longest side (default: the output's)"
    )
    a.add_argument("--preserve-color", action="store_true")
    a.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help=BIT_DEPTH_HELP)
    a.add_argument("--precision", choices=ONE_PASS_PRECISIONS, default="auto",
                   help="bf16: encoder and decoders in bfloat16, 1.5-2x faster on GPUs and "
                   "CPUs with AVX-512 or AMX, the same pictures to the eye; auto: bf16 "
                   "where it is fast, else fp32")  # fmt: skip
    a.add_argument("--device", default="auto")
    a.add_argument("--weights", metavar="PATH",
                   help="VGG-19 weights, for decoders made for VGG-19 "
                        "(--decoders decoders)")  # fmt: skip

    D = DecoderOptions(data="", output="")  # noqa: N806
    t = sub.add_parser("train-decoders", parents=[common],
                       help="train the decoders of `impasto arbitrary` (torchrun-ready)",
                       formatter_class=_Help)  # fmt: skip
    t.add_argument("--data", required=True, metavar="DIR", help="training photos (recursive)")
    t.add_argument("-o", "--output", required=True, metavar="DECODERS.safetensors")
    t.add_argument("--levels", type=_levels, default=list(D.levels), metavar="1,2,...")
    t.add_argument("--width", type=float, default=D.width, help="decoder channel multiplier")
    t.add_argument("--unpool", action="store_true",
                   help="upsample at VGG's pooling switches (PhotoWCT): much sharper")  # fmt: skip
    t.add_argument("--encoder-width", type=float, default=D.encoder_width,
                   help="below 1: also distil a compact encoder of this width from VGG-19 "
                        "(0.5: ~4x less arithmetic per picture)")  # fmt: skip
    t.add_argument("--embed-weight", type=float, default=D.embed_weight,
                   help="weight of the compact encoder's distillation loss")  # fmt: skip
    t.add_argument("--steps", type=_positive_int, default=D.steps)
    t.add_argument("--batch-size", type=_positive_int, default=D.batch_size)
    t.add_argument("--image-size", type=_positive_int, default=D.image_size)
    t.add_argument("--lr", type=float, default=D.lr)
    t.add_argument("--pixel-weight", type=float, default=D.pixel_weight)
    t.add_argument("--feature-weight", type=float, default=D.feature_weight)
    t.add_argument("--checkpoint-every", type=_positive_int, default=D.checkpoint_every)
    t.add_argument("--sample-every", type=int, default=D.sample_every)
    t.add_argument("--holdout", metavar="DIR", help="photos for samples and the PSNR report")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--seed", type=int, default=D.seed)
    t.add_argument("--device", default=D.device)
    t.add_argument("--precision", choices=PRECISIONS, default=D.precision)
    t.add_argument("--workers", type=int, default=D.workers)
    t.add_argument("--weights", metavar="PATH", help="VGG-19 weights")
    t.add_argument("--quiet", action="store_true")


def _add_serve(sub, common) -> None:
    from .serve.jobs import Limits

    L = Limits()  # noqa: N806
    v = sub.add_parser("serve", parents=[common], help="the web app and HTTP API",
                       formatter_class=_Help)  # fmt: skip
    v.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--workers", type=_positive_int, default=1, help="jobs run at once")
    v.add_argument("--data-dir", default="impasto-data", help="job records and results")
    v.add_argument("--token", default=os.environ.get("IMPASTO_TOKEN"),
                   help="require this bearer token (default: $IMPASTO_TOKEN)")  # fmt: skip
    v.add_argument("--max-upload-mb", type=_positive_int, default=L.upload_bytes // 2**20)
    v.add_argument("--max-pixels", type=_positive_int, default=L.pixels, help="of an upload")
    v.add_argument("--max-size", type=_positive_int, default=L.side, help="of a result, px")
    v.add_argument("--max-iterations", type=_positive_int, default=L.iterations)
    v.add_argument("--max-queue", type=_positive_int, default=L.queue, help="more waiting: 503")
    v.add_argument("--job-timeout", type=float, default=L.job_seconds, help="seconds")
    v.add_argument("--device", default="auto")
    v.add_argument("--weights", metavar="PATH", help="VGG-19 weights")


def _add_export(sub, common) -> None:
    from .nets.export import FORMATS

    e = sub.add_parser("export", parents=[common], help="export a network to ONNX or TorchScript")
    e.add_argument("model", help="a built-in model's name or a file")
    e.add_argument("--format", choices=FORMATS, default="onnx")
    e.add_argument("-o", "--output", help="default: MODEL.onnx / MODEL.pt here")


def cmd_info(args: argparse.Namespace) -> int:
    import numpy
    import PIL
    import torch

    from .devices import bf16_is_fast, resolve_device
    from .nets.weights import candidates, find_weights

    weights = find_weights(args.weights)
    device = resolve_device(args.device)
    report = {
        "impasto": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "device": str(device),
        "cuda": torch.version.cuda,
        "cpu": f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads",
        "bf16": bf16_is_fast(device),  # --precision bf16 runs as fp32 where it would be slow
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
    for key in ("impasto", "python", "torch", "numpy", "pillow", "device", "cuda", "cpu"):
        print(f"{key:<10}{report[key]}")
    bf16 = "fast here" if report["bf16"] else "no bfloat16 kernels on this CPU: runs as fp32"
    print(f"{'bf16':<10}{bf16}")
    print("weights")
    for key, value in report["weights"].items():
        print(f"  {key:<12}{value}")
    print("searched")
    for c in report["searched"]:
        print(f"  [{'x' if c['found'] else ' '}] {c['source']}: {c['path']}")
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from .io.images import check_output_path, load_image
    from .methods.optimize import Options, Stylizer

    output = args.output or f"{Path(args.content).stem}_{Path(args.style[0]).stem}.png"
    inputs = (args.content, *args.style, *([args.init] if args.init else []))
    check_output_path(output, inputs)  # fail now, not after minutes of work
    _check_bit_depth(args, output)
    if args.snapshots is None and args.save_every:
        raise OptionError("--save-every needs --snapshots DIR")
    given = {f.name: getattr(args, f.name) for f in fields(Options)
             if getattr(args, f.name, None) is not None}  # fmt: skip
    if len(given.get("iterations", ())) == 1:
        given["iterations"] = given["iterations"][0]
    options = Options.preset(args.preset, **given)
    options.validate()
    limit = {"max_pixels": args.max_pixels}
    content = load_image(args.content, **limit)
    styles = [load_image(path, **limit) for path in args.style]
    if options.init not in ("content", "noise"):
        options.init = load_image(options.init, **limit)
    stylizer = Stylizer(args.weights, args.device)
    result = stylizer.run(content, styles, options=options, progress=not args.quiet)
    _save(args, result.image, result.pixels, content, output, inputs)
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


def cmd_train(args: argparse.Namespace) -> int:
    from .training.train import TrainOptions, train

    options = TrainOptions(
        styles=args.style, style_names=args.style_names, data=args.data, output=args.output,
        steps=args.steps, batch_size=args.batch_size, image_size=args.image_size,
        style_size=args.style_size, lr=args.lr, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight,
        content_layers=args.content_layers, style_layers=args.style_layers, width=args.width,
        blocks=args.blocks, checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every, holdout=args.holdout, seed=args.seed,
        device=args.device, precision=args.precision, workers=args.workers, resume=args.resume,
        weights=args.weights, distill=args.distill, distill_images=args.distill_images,
        distill_size=args.distill_size, distill_iterations=args.distill_iterations,
        pixel_weight=args.pixel_weight,
    )  # fmt: skip
    meta = train(options, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        done = meta["training"]
        print(f"wrote {args.output}: {done['steps']} steps in {done['seconds']:.0f} s, "
              f"{done['images']} images, {done['skipped_images']} unreadable skipped")  # fmt: skip
    return 0


def _fast_stylizer(args: argparse.Namespace):
    from .methods.feedforward import FastStylizer, check_strength, parse_style

    check_strength(args.strength)  # before a model loads or a frame is decoded
    device = args.device
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():  # under torchrun: one GPU per rank
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    fast = FastStylizer(args.model, device, args.backend, args.precision)
    if args.tile < 256:
        raise OptionError("--tile must be at least 256 px")
    fast.tile = args.tile
    return fast, parse_style(args.style, fast.styles)


def cmd_fast(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from .io.images import (
        DEEP_FORMATS,
        SAVE_FORMATS,
        carry_metadata,
        expand_inputs,
        to_image,
        to_tensor,
    )

    inputs = expand_inputs(args.inputs)
    single = len(inputs) == 1 and (args.output is None or Path(args.output).suffix != "")
    fast, weights = _fast_stylizer(args)
    label = "+".join(item.split(":")[0] for item in (args.style or fast.styles[0]).split(","))
    if single:
        targets = [Path(args.output or f"{inputs[0][0].stem}_{label}.png")]
        _check_bit_depth(args, targets[0])
    else:
        if args.output is None:
            raise OptionError("several inputs: give an output folder with -o DIR")
        folder = Path(args.output)
        targets = []
        for _, name in inputs:
            kept = DEEP_FORMATS if args.bit_depth == 16 else SAVE_FORMATS
            suffix = name.suffix.lower() if name.suffix.lower() in kept else ".png"
            targets.append(folder / name.with_suffix(suffix))
    if len(set(targets)) < len(targets):
        raise OptionError("two inputs would write the same output; use folders")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    work = list(zip(inputs, targets, strict=True))[rank::world]  # torchrun: a shard per rank
    failed = 0
    bar = tqdm(total=len(work), disable=args.quiet or len(work) < 2, unit="img")
    for start in range(0, len(work), args.batch):
        chunk, pictures = [], []
        for (path, _), target in work[start : start + args.batch]:
            try:
                pictures.append(fast.prepare(path, args.size))
                chunk.append((path, target))
            except ImpastoError as e:
                failed += 1
                bar.write(f"impasto: skipped: {e}")
        # Images of one size share a forward pass; others go alone.
        by_size: dict[tuple, list[int]] = {}
        for i, picture in enumerate(pictures):
            by_size.setdefault(picture.size, []).append(i)
        for group in by_size.values():
            content = torch.cat([to_tensor(pictures[i]) for i in group])
            out = fast.run_batch(content, weights)
            out = fast.finish(out, content, args.strength, args.preserve_color)
            for j, i in enumerate(group):
                path, target = chunk[i]
                target.parent.mkdir(parents=True, exist_ok=True)
                image = carry_metadata(to_image(out[j]), pictures[i])
                _save(args, image, out[j], pictures[i], target, (path,))
                bar.update()
    bar.close()
    if failed:
        print(f"impasto: error: {failed} of {len(work)} inputs could not be read", file=sys.stderr)
        return EXIT_USAGE
    if single:
        print(f"wrote {targets[0]}")
    elif rank == 0:
        print(f"wrote {len(work)} images to {args.output}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from PIL import Image

    from .io.images import resize_longest, to_tensor
    from .io.video import stylize_video

    fast, weights = _fast_stylizer(args)

    def transform(frame):
        picture = Image.fromarray(frame)
        if args.size:
            picture = resize_longest(picture, args.size)
        content = to_tensor(picture)
        out = fast.finish(fast.run_batch(content, weights), content, args.strength,
                          args.preserve_color)  # fmt: skip
        return out[0].permute(1, 2, 0).mul(255).numpy()

    frames = stylize_video(args.input, args.output, transform, smooth=args.smooth,
                           progress=not args.quiet)  # fmt: skip
    print(f"wrote {args.output}: {frames} frames")
    return 0


def cmd_webcam(args: argparse.Namespace) -> int:
    from .io.webcam import run_webcam

    fast, weights = _fast_stylizer(args)
    run_webcam(fast, weights, camera=args.camera, size=args.size, strength=args.strength,
               preserve_color=args.preserve_color)  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .io.atomic import atomic_write
    from .methods.feedforward import load_transformer
    from .nets.export import export_onnx, export_torchscript

    net, _ = load_transformer(args.model)
    suffix = {"onnx": ".onnx", "torchscript": ".pt"}[args.format]
    output = Path(args.output or Path(args.model).name.removesuffix(".safetensors") + suffix)
    if output.resolve() == Path(args.model).resolve():
        raise OptionError(f"{output}: is the input; impasto never overwrites its inputs")
    with atomic_write(output) as f:
        (export_onnx if args.format == "onnx" else export_torchscript)(net, f)
    print(f"wrote {output} ({args.format}: inputs image (N,3,H,W) in [0,1] and "
          f"style_weights ({len(net.arch.styles)},): {', '.join(net.arch.styles)})")  # fmt: skip
    return 0


def cmd_dream(args: argparse.Namespace) -> int:
    from .io.images import check_output_path, save_image
    from .methods.dream import Dreamer, DreamOptions

    inputs = (args.image, args.guide)
    check_output_path(args.output, inputs)
    if args.snapshots is None and args.save_every:
        raise OptionError("--save-every needs --snapshots DIR")
    options = DreamOptions(
        layers=args.layers, octaves=args.octaves, octave_scale=args.octave_scale,
        iterations=args.iterations, step_size=args.step_size, jitter=args.jitter,
        size=args.size, guide=args.guide, seed=args.seed, save_every=args.save_every,
        snapshots=args.snapshots,
    )  # fmt: skip
    options.validate()
    result = Dreamer(args.weights, args.device).run(
        args.image, options=options, progress=not args.quiet
    )
    save_image(result.image, args.output, inputs)
    print(f"wrote {args.output} ({result.iterations} steps, {result.seconds:.1f} s)")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .io.images import check_output_path, load_image, resize_longest, save_image, to_tensor
    from .methods.features import feature_grid, gram_heatmap
    from .nets.vgg import VGG19
    from .nets.weights import find_weights

    check_output_path(args.output, (args.image,))
    device = resolve_device(args.device)
    vgg = VGG19.from_weights(find_weights(args.weights)).to(device)
    image = to_tensor(resize_longest(load_image(args.image), args.size)).to(device)
    if args.gram:
        picture = gram_heatmap(vgg, image, args.layer)
    else:
        picture = feature_grid(vgg, image, args.layer, top=args.top)
    save_image(picture, args.output, (args.image,))
    print(f"wrote {args.output}")
    return 0


def cmd_arbitrary(args: argparse.Namespace) -> int:
    from .io.images import carry_metadata, check_output_path, to_image
    from .methods.arbitrary import ArbitraryStylizer

    inputs = (args.content, *args.style)
    check_output_path(args.output, inputs)
    _check_bit_depth(args, args.output)
    stylizer = ArbitraryStylizer(args.decoders, args.weights, args.device)
    pixels, photo = stylizer.paint(args.content, args.style, style_weights=args.style_weights,
                         alpha=args.alpha, method=args.method, levels=args.levels,
                         size=args.size, style_size=args.style_size,
                         preserve_color=args.preserve_color,
                         precision=args.precision)  # fmt: skip
    image = carry_metadata(to_image(pixels), photo)
    _save(args, image, pixels, photo, args.output, inputs)
    print(f"wrote {args.output}")
    return 0


def cmd_train_decoders(args: argparse.Namespace) -> int:
    from .training.decoders import DecoderOptions, train_decoders

    options = DecoderOptions(
        data=args.data, output=args.output, levels=args.levels, width=args.width,
        unpool=args.unpool, encoder_width=args.encoder_width, embed_weight=args.embed_weight,
        steps=args.steps, batch_size=args.batch_size,
        image_size=args.image_size, lr=args.lr,
        pixel_weight=args.pixel_weight, feature_weight=args.feature_weight,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
        holdout=args.holdout, seed=args.seed, device=args.device, precision=args.precision,
        workers=args.workers, resume=args.resume, weights=args.weights,
    )  # fmt: skip
    meta = train_decoders(options, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        done = meta["training"]
        psnr = ", ".join(f"{k} {v} dB" for k, v in done["holdout_psnr"].items())
        print(f"wrote {args.output}: {done['steps']} steps in {done['seconds']:.0f} s"
              + (f"; held-out PSNR {psnr}" if psnr else ""))  # fmt: skip
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .io.modelfile import load_model
    from .models import builtin_models

    rows = []
    for name, path in builtin_models().items():
        _, meta = load_model(path)
        arch = meta["architecture"]
        rows.append({
            "name": name, "kind": arch["kind"], "styles": arch.get("styles"),
            "levels": arch.get("levels"), "encoder_width": arch.get("encoder_width"),
            "megabytes": round(path.stat().st_size / 2**20, 2),
            "sha256": meta["sha256"], "path": str(path),
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no built-in models installed")
    for r in rows:
        what = ", ".join(r["styles"]) if r["styles"] else f"levels {r['levels']}"
        if (r["encoder_width"] or 1) < 1:
            what += f", own encoder (VGG-19 at width {r['encoder_width']})"
        print(f"{r['name']:<12}{r['kind']:<13}{r['megabytes']:>6} MB  {what}")
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    from .io.images import check_output_path, load_image, resize_longest, save_image
    from .io.sheet import labelled_grid
    from .methods.feedforward import FastStylizer

    check_output_path(args.output, (args.photo,))
    fast = FastStylizer(args.model, args.device)
    photo = resize_longest(load_image(args.photo), args.size)
    tiles = [photo] + [fast.run(photo, i) for i in range(len(fast.styles))]
    out = labelled_grid(tiles, ["photo", *fast.styles], args.columns, cell=args.size)
    save_image(out, args.output, (args.photo,))
    print(f"wrote {args.output}: {len(fast.styles)} styles")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import Evaluator

    scores = Evaluator(args.weights, args.device).score(
        args.output, args.content, args.style, size=args.size
    )
    if args.json:
        print(json.dumps(scores))
    else:
        for name, value in scores.items():
            print(f"{name:<18}{value:.4f}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .serve.app import create_app
        from .serve.jobs import Limits
    except ImportError as e:
        raise OptionError(f"impasto serve needs its extra ({e.name} is missing): "
                          "pip install 'impasto[serve]'") from None  # fmt: skip
    from .devices import resolve_device

    resolve_device(args.device)  # a bad device is a usage error now, not a failed job later
    if args.max_size < 64:
        raise OptionError("--max-size must be at least 64")
    limits = Limits(upload_bytes=args.max_upload_mb * 2**20, pixels=args.max_pixels,
                    side=args.max_size, iterations=args.max_iterations, queue=args.max_queue,
                    job_seconds=args.job_timeout)  # fmt: skip
    app = create_app(args.data_dir, workers=args.workers, token=args.token, limits=limits,
                     device=args.device, weights=args.weights)  # fmt: skip
    print(f"impasto: serving on http://{args.host}:{args.port}/ (data in {args.data_dir})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


COMMANDS = {
    "info": cmd_info,
    "stylize": cmd_stylize,
    "train": cmd_train,
    "fast": cmd_fast,
    "video": cmd_video,
    "webcam": cmd_webcam,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
    "dream": cmd_dream,
    "models": cmd_models,
    "sheet": cmd_sheet,
    "arbitrary": cmd_arbitrary,
    "train-decoders": cmd_train_decoders,
    "features": cmd_features,
    "serve": cmd_serve,
}


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def retain_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse rather than hand it back to the
    system. A run frees and allocates the same tens-of-MB activations every iteration;
    by default glibc maps blocks over its (moving) threshold anew and trims the top of its
    heap, so they came back page-faulted: 15–90 thousand faults an iteration of a 512-px
    optimization, which took 5–9% longer for it, with the same peak memory. Here blocks
    up to 32 MB (the most glibc allows) come from the heap, which gives memory back only
    past 1 GB free. Process-wide, so the CLI applies it and the library leaves it to its
    host. Returns whether it applied (glibc only)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError, TypeError):  # no mallopt there (macOS), or Windows
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and mallopt(_M_TRIM_THRESHOLD, 2**30))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    retain_freed_memory()
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
