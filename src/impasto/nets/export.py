"""Export a transformation network to ONNX or TorchScript, any height and width.

Both take an image (N, 3, H, W), RGB in [0, 1], and the style weights (n_styles,),
and return the stylized image: what `TransformerNet.forward` takes and returns.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO

import torch

from .transformer import TransformerNet

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17


def _example(net: TransformerNet) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(net.arch.styles)
    return torch.rand(1, 3, 64, 96), torch.full((n,), 1.0 / n)


def export_onnx(net: TransformerNet, target: str | os.PathLike | BinaryIO) -> None:
    net = net.cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing are not for users
        torch.onnx.export(
            net,
            _example(net),
            target,
            input_names=["image", "style_weights"],
            output_names=["stylized"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "stylized": {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def export_torchscript(net: TransformerNet, target: str | os.PathLike | BinaryIO) -> None:
    net = net.cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, _example(net), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    if hasattr(target, "write"):
        target.write(buffer.getvalue())
    else:
        from ..io.atomic import atomic_write

        with atomic_write(target) as f:
            f.write(buffer.getvalue())
