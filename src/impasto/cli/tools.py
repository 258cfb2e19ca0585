"""`info`, `models`, `export`, `evaluate` and `features`: looking at networks and pictures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import OptionError
from ..options import Inspect, Output, Setup
from .args import add_options, chosen
from .files import announce

TRANSFORMS = {"adain": "AdaIN", "wct": "WCT"}  # how `impasto models` names a one-pass transform
PAINTER_INPUTS = ["image", "painting", "strength"]  # an exported one-pass network's


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command in ("info", "models", "evaluate"):
        add_options(p, Output, only=("json",))
    if command in ("export", "features"):
        add_options(p, Output, only=("json", "quiet"))
    if command in ("info", "evaluate", "features"):
        add_options(p, Setup, only=("device", "weights"))
    if command == "export":
        p.add_argument("model", help="a built-in model's name or a model file")
        p.add_argument("-o", "--output", help="default: MODEL.onnx / MODEL.pt here")
        add_options(p, Inspect, only=("format",))
    if command == "evaluate":
        p.add_argument("picture", help="the stylized image")
        p.add_argument("--content", required=True, help="the photo")
        p.add_argument("--style", required=True, help="the painting")
        add_options(p, Inspect, only=("size",))
    if command == "features":
        p.add_argument("image")
        p.add_argument(
            "-o",
            "--output",
            metavar="OUT",
            help="default: IMAGE.LAYER.png (IMAGE.LAYER-gram.png) here",
        )
        add_options(p, Inspect, only=("size", "layer", "top", "gram"))


def run(args: argparse.Namespace) -> int:
    return {
        "info": info,
        "models": models,
        "export": export,
        "evaluate": evaluate,
        "features": features,
    }[args.command](args)


def info(args: argparse.Namespace) -> int:
    as_json = chosen(args, Output).json
    import platform

    import numpy
    import PIL
    import torch

    from .._version import __version__
    from ..devices import bf16_is_fast, resolve_device
    from ..nets.weights import candidates, find_weights

    where = chosen(args, Setup)
    weights, device = find_weights(where.weights), resolve_device(where.device)
    report = {
        "impasto": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "device": str(device),
        "cuda": torch.version.cuda,
        "cpu": f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads",
        "bf16": bf16_is_fast(device),  # precision auto picks bf16 where this is true
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
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for key in ("impasto", "python", "torch", "numpy", "pillow", "device", "cuda", "cpu"):
        print(f"{key:<10}{report[key]}")
    bf16 = (
        "fast here: --precision auto runs bf16"
        if report["bf16"]
        else "no bfloat16 kernels on this CPU: --precision auto runs fp32"
    )
    print(f"{'bf16':<10}{bf16}")
    print("weights")
    for key, value in report["weights"].items():
        print(f"  {key:<12}{value}")
    print("searched")
    for c in report["searched"]:
        print(f"  [{'x' if c['found'] else ' '}] {c['source']}: {c['path']}")
    return 0


def models(args: argparse.Namespace) -> int:
    from ..io.modelfile import load_model
    from ..models import builtin_models

    as_json, rows = chosen(args, Output).json, []
    for name, path in builtin_models().items():
        _, meta = load_model(path)
        arch = meta["architecture"]
        rows.append(
            {
                "name": name,
                "kind": arch["kind"],
                "styles": arch.get("styles"),
                "levels": arch.get("levels"),
                "encoder_width": arch.get("encoder_width"),
                "paints": arch.get("paints", False),
                "method": arch.get("method"),
                "megabytes": round(path.stat().st_size / 2**20, 2),
                "sha256": meta["sha256"],
                "path": str(path),
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no built-in models installed")
    for r in rows:
        what = ", ".join(r["styles"]) if r["styles"] else f"levels {r['levels']}"
        if (r["encoder_width"] or 1) < 1:
            what += f", own encoder (VGG-19 at width {r['encoder_width']})"
        if r["paints"]:
            what += f", trained to paint ({TRANSFORMS.get(r['method'], r['method'])})"
        print(f"{r['name']:<12}{r['kind']:<13}{r['megabytes']:>6} MB  {what}")
    return 0


def export(args: argparse.Namespace) -> int:
    from ..io.atomic import atomic_write
    from ..io.modelfile import load_model
    from ..models import resolve_model
    from ..nets.export import export_onnx, export_painter_onnx, export_torchscript

    form = chosen(args, Inspect).format
    suffix = {"onnx": ".onnx", "torchscript": ".pt"}[form]
    output = Path(args.output or Path(args.model).name.removesuffix(".safetensors") + suffix)
    if output.exists() and output.resolve() == Path(args.model).resolve():
        raise OptionError(f"{output}: is the input; impasto never overwrites its inputs")
    _, meta = load_model(resolve_model(args.model))
    if meta.get("architecture", {}).get("kind") == "decoders":
        from ..methods.arbitrary import ArbitraryStylizer

        if form != "onnx":
            raise OptionError(f"{args.model}: a one-pass network exports to ONNX only")
        stylizer = ArbitraryStylizer(args.model, device="cpu")
        with atomic_write(output) as f:
            export_painter_onnx(stylizer.encoder, stylizer.decoders, f)
        line = (
            f"wrote {output} (onnx: inputs image (N,3,H,W) and painting (1 or N,3,h,w) "
            "in [0,1], strength () from 0, the photo, to 1, the full style)"
        )
        announce(args, line, output=str(output), format=form, inputs=PAINTER_INPUTS)
        return 0
    from ..methods.feedforward import load_transformer

    net, _ = load_transformer(args.model)
    with atomic_write(output) as f:
        (export_onnx if form == "onnx" else export_torchscript)(net, f)
    line = (
        f"wrote {output} ({form}: inputs image (N,3,H,W) in [0,1] and "
        f"style_weights ({len(net.arch.styles)},): {', '.join(net.arch.styles)})"
    )
    announce(args, line, output=str(output), format=form, styles=list(net.arch.styles))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import Evaluator

    where = chosen(args, Setup)
    scores = Evaluator(where.weights, where.device).score(
        args.picture, args.content, args.style, size=chosen(args, Inspect).size
    )
    if chosen(args, Output).json:
        print(json.dumps(scores))
    else:
        for name, value in scores.items():
            if isinstance(value, dict):  # per layer
                for layer, v in value.items():
                    print(f"{'  ' + layer:<18}{v:.4f}")
            else:
                print(f"{name:<18}{value:.4f}")
    return 0


def features(args: argparse.Namespace) -> int:
    from ..budget import BYTES_PER_VGG_PIXEL, check_fits
    from ..devices import resolve_device
    from ..io.images import (
        check_output_path,
        load_image,
        resize_longest,
        save_image,
        scaled_size,
        to_tensor,
    )
    from ..methods.features import feature_grid, gram_heatmap
    from ..nets.vgg import load_vgg

    look = chosen(args, Inspect)
    name = f"{look.layer}-gram" if look.gram else look.layer
    output = args.output or f"{Path(args.image).stem}.{name}.png"
    check_output_path(output, (args.image,))
    where = chosen(args, Setup)
    device = resolve_device(where.device)
    vgg = load_vgg(where.weights, device)
    picture = load_image(args.image)
    check_fits(scaled_size(picture.size, look.size), BYTES_PER_VGG_PIXEL, "feature maps")
    image = to_tensor(resize_longest(picture, look.size)).to(device)
    if look.gram:
        picture = gram_heatmap(vgg, image, look.layer)
    else:
        picture = feature_grid(vgg, image, look.layer, top=look.top)
    save_image(picture, output, (args.image,))
    announce(
        args,
        f"wrote {output} ({picture.width}×{picture.height})",
        output=str(output),
        width=picture.width,
        height=picture.height,
    )
    return 0
