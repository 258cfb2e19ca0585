"""Export a network to ONNX or TorchScript, any height and width.

A transformation network (either form) takes an image (N, 3, H, W), RGB in [0, 1], and
the style weights (n_styles,), and returns the stylized image: what
`TransformerNet.forward` takes and returns. A one-pass network trained to paint (ONNX)
takes the image, a painting and the strength (nets/painter_graph.py).
"""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO

import torch

from ..errors import ModelError
from ..io.atomic import atomic_write
from .decoders import Decoders
from .graph import transformer_graph
from .painter_graph import painter_graph
from .transformer import TransformerNet
from .vgg import VGG19


def _example(net: TransformerNet) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(net.arch.styles)
    return torch.rand(1, 3, 64, 96), torch.full((n,), 1.0 / n)


def export_onnx(net: TransformerNet, target: str | os.PathLike | BinaryIO) -> None:
    """The graph the onnxruntime backend runs (nets/graph.py), with `net`'s weights."""
    state = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    _write(transformer_graph(net.arch, state), target)


def export_painter_onnx(
    encoder: VGG19, decoders: Decoders, target: str | os.PathLike | BinaryIO
) -> None:
    """Decoders trained to paint, at one level, with their `encoder` (their own compact
    one, or VGG-19): photo and painting in, picture out, in one graph."""
    arch = decoders.arch
    if not arch.paints or len(arch.levels) != 1:
        raise ModelError(
            "only a one-pass network trained to paint (such as the built-in painter) "
            "exports to ONNX; decoders that reconstruct go level by level in impasto"
        )
    _write(painter_graph(encoder, decoders[arch.levels[0]], arch.method), target)


def export_torchscript(net: TransformerNet, target: str | os.PathLike | BinaryIO) -> None:
    net = net.cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, _example(net), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    _write(buffer.getvalue(), target)


def _write(data: bytes, target: str | os.PathLike | BinaryIO) -> None:
    if hasattr(target, "write"):
        target.write(data)
    else:
        with atomic_write(target) as f:
            f.write(data)
