"""A one-pass network trained to paint (the built-in `painter`, `impasto train-arbitrary`)
as one ONNX graph: a photo and any painting in, the photo painted like it out.

The graph does what `ArbitraryStylizer` does with such a network for a picture of up to
its tile size: PAINT_MARGIN px of reflected photo around the photo; the encoder, on the
photo and on the painting; the photo's features moved to the painting's mean and
covariance at the decoder's layer (WCT, or AdaIN, as the network was trained) and mixed
with its own by the strength; the decoder (its modulated blocks given the painting's
statistics, mixed with the photo's alike); the margin cut off; the picture faded into
the photo below strength 1. It takes `image` (N, 3, H, W) and `painting` (1 or N, 3, h,
w), RGB in [0, 1], any sizes, and `strength` (a float scalar: 1 is the full style, 0 the
photo), and gives `stylized` (N, 3, H, W): onnxruntime paints any painting with it,
with no torch and no Python (examples/onnx_painter.py).

ONNX has no eigendecomposition, so WCT's matrix powers (the photo's covariance to the
power -1/2, the painting's to 1/2) come from the coupled Newton–Schulz iteration
(Higham 2008, ch. 6), matrix products only, in float64. Each covariance is first
regularised as `methods.transforms` does (every eigenvalue raised by eps times the mean
one), which bounds how small an eigenvalue can be against the largest: the iteration
runs as many steps as that worst case needs (`newton_schulz_steps`), and agrees with the
eigendecomposition to ~1e-11.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..errors import ModelError
from .decoders import FEATURE_RMS, PAINT_MARGIN, Decoder, level_layer
from .graph import OPSET, Graph
from .vgg import LAYERS, VGG19


def newton_schulz_steps(smallest: float, tolerance: float = 1e-15) -> int:
    """Steps of the coupled Newton–Schulz iteration that take every eigenvalue of a matrix
    scaled to at most 1, and at least `smallest`, to its root: along each eigenvector the
    product of the two iterates goes p -> p (3 - p)² / 4, slowest from the smallest p."""
    p, steps = smallest, 0
    while abs(1 - p) > tolerance:
        p, steps = p * (3 - p) ** 2 / 4, steps + 1
    return steps


DOUBLE, FLOAT = 11, 1  # ONNX's element types, for Cast


class _Painter:
    """The graph's nodes and weights, added as the network is walked."""

    def __init__(self, encoder: VGG19, decoder: Decoder, method: str, eps: float):
        self.g = g = Graph({})
        self.encoder, self.decoder, self.method, self.eps = encoder, decoder, method, eps
        self.names: dict[int, str] = {}  # id of a parameter -> its initializer
        self.channels = encoder.convs[f"conv{decoder.level}_1"].out_channels
        for name, value in {
            "zero": [0],
            "one": [1],
            "two": [2],
            "four": [4],
            "flat": [0, 0, -1],  # (N, C, h, w) -> (N, C, hw)
            "margin": [PAINT_MARGIN],
            "pads": [0, 0, 1, 1] * 2,
            "spatial": [2, 3],
            "matrix_axes": [1, 2],
            "row_axis": [2],
        }.items():
            g.constant(name, np.array(value, np.int64))
        for name, value in {
            "eye": np.eye(self.channels),
            "eye_three_halves": 1.5 * np.eye(self.channels),
            "half": 0.5,
            "unit": 1.0,
            "eps": eps,
            "tiny": 1e-12,
            "floor": 1e-8,
            "channels": float(self.channels),
        }.items():
            g.constant(name, np.asarray(value, np.float64))
        for name, value in {"lowest": 0.0, "highest": 1.0}.items():
            g.constant(name, np.array(value, np.float32))
        # RGB in [0, 1] to the encoder's convention (channel order, scale, shift): a 1x1 conv
        mix = np.zeros((3, 3, 1, 1), np.float32)
        for i, j in enumerate(encoder.channel_order):
            mix[i, j] = encoder.scale.flatten()[i]
        g.constant("convention", mix)
        g.constant("convention_shift", encoder.shift.flatten().cpu().numpy().astype(np.float32))

    def weight(self, parameter: torch.Tensor) -> str:
        """A parameter's initializer, added once however often it is used."""
        if id(parameter) not in self.names:
            value = parameter.detach().float().cpu().numpy()
            self.names[id(parameter)] = self.g.constant(f"weight{len(self.names)}", value)
        return self.names[id(parameter)]

    def conv(self, x: str, conv: nn.Conv2d, pad: str = "reflect") -> str:
        """A 3×3 conv: its 1 px of padding reflected (decoders) or zeros (the encoder), or
        the edge repeated (an encoder that pads its input so)."""
        g, weight, bias = self.g, self.weight(conv.weight), self.weight(conv.bias)
        if pad == "zeros":
            return g.op("Conv", x, weight, bias, pads=[1, 1, 1, 1])
        return g.op("Conv", g.op("Pad", x, "pads", mode=pad), weight, bias)

    def encode(self, image: str, wanted: set[str]) -> tuple[dict[str, str], list[str]]:
        """The encoder's activations at the `wanted` layers, and the (h, w) each pooling
        took in, first to last: the sizes the decoder's upsamplings return to."""
        g, vgg = self.g, self.encoder
        x = g.op("Conv", image, "convention", "convention_shift")
        found, sizes = {}, []
        for name in LAYERS[: max(LAYERS.index(name) for name in wanted) + 1]:
            if name.startswith("conv"):
                edge = name == "conv1_1" and vgg.padding == "replicate"
                x = self.conv(x, vgg.convs[name], "edge" if edge else "zeros")
            elif name.startswith("relu"):
                x = g.op("Relu", x)
            else:
                sizes.append(g.op("Slice", g.op("Shape", x), "two", "four"))
                x = g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2])
            if name in wanted:
                found[name] = x
        return found, sizes

    def statistics(self, features: str) -> tuple[str, str]:
        """Mean (N, C, 1) and covariance (N, C, C), float64, of (N, C, h, w) features: the
        scatter about the mean in float32, as `transforms.RunningMoments` finds it."""
        g = self.g
        flat = g.op("Reshape", features, "flat")
        mean = g.op("ReduceMean", flat, axes=[2], keepdims=1)
        centered = g.op("Sub", flat, mean)
        scatter = g.op("MatMul", centered, g.op("Transpose", centered, perm=[0, 2, 1]))
        count = g.op("Cast", g.op("Slice", g.op("Shape", flat), "two", "four"), to=DOUBLE)
        return g.op("Cast", mean, to=DOUBLE), g.op("Div", g.op("Cast", scatter, to=DOUBLE), count)

    def diagonal(self, cov: str) -> str:
        """The (N, C, C) matrices' diagonals, (N, C, 1)."""
        return self.g.op("ReduceSum", self.g.op("Mul", cov, "eye"), "row_axis", keepdims=1)

    def roots(self, cov: str) -> tuple[str, str]:
        """cov^(1/2) and cov^(-1/2), (N, C, C), regularised as `transforms._cov_power`
        does: every eigenvalue raised by eps times the mean one, plus 1e-8."""
        g = self.g
        trace = g.op("ReduceSum", self.diagonal(cov), "matrix_axes", keepdims=1)
        floor = g.op("Max", g.op("Div", trace, "channels"), "tiny")
        floor = g.op("Add", g.op("Mul", floor, "eps"), "floor")
        a = g.op("Add", cov, g.op("Mul", floor, "eye"))
        norm = g.op("ReduceL2", a, axes=[1, 2], keepdims=1)  # every eigenvalue now <= 1
        y, z = g.op("Div", a, norm), "eye"
        for _ in range(newton_schulz_steps(self.eps / (self.channels * (1 + self.eps)))):
            step = g.op("Sub", "eye_three_halves", g.op("Mul", "half", g.op("MatMul", z, y)))
            y, z = g.op("MatMul", y, step), g.op("MatMul", step, z)
        scale = g.op("Sqrt", norm)
        return g.op("Mul", y, scale), g.op("Div", z, scale)

    def matrix(self, photo: tuple[str, str], painting: tuple[str, str]) -> str:
        """The transform's matrix, (N, C, C) float64, from the two pictures' mean and
        covariance: WCT whitens by the photo's, then colours by the painting's; AdaIN
        gives each channel the painting's spread."""
        g = self.g
        if self.method == "wct":
            return g.op("MatMul", self.roots(painting[1])[0], self.roots(photo[1])[1])
        mine, theirs = (
            g.op("Sqrt", g.op("Relu", self.diagonal(cov))) for _, cov in (photo, painting)
        )
        return g.op("Mul", "eye", g.op("Div", theirs, g.op("Add", mine, "eps")))

    def modulate(self, x: str, block: int, photo: dict, painting: dict, strength: str) -> str:
        """A modulated block (`decoders.Modulation`): each channel scaled and shifted by
        amounts read from the painting's `style_code` there, mixed with the photo's own
        by the strength, as the features are."""
        g, name = self.g, level_layer(block)
        codes = []
        for found in (photo, painting):
            flat = g.op("Reshape", found[name], "flat")
            mean = g.op("ReduceMean", flat, axes=[2], keepdims=1)
            centered = g.op("Sub", flat, mean)
            spread = g.op(
                "Sqrt", g.op("ReduceMean", g.op("Mul", centered, centered), axes=[2], keepdims=0)
            )
            mean = g.op("Squeeze", mean, "row_axis")
            rms = g.constant(f"rms{len(g.initializers)}", np.array(FEATURE_RMS[block], np.float32))
            codes.append(g.op("Div", g.op("Concat", mean, spread, axis=1), rms))
        code = g.op("Add", codes[0], g.op("Mul", g.op("Sub", codes[1], codes[0]), strength))
        modulation = self.decoder.modulations[str(block)]

        def linear(layer: nn.Linear) -> str:  # (N, 2C) -> (N, channels, 1, 1)
            out = g.op("Gemm", code, self.weight(layer.weight), self.weight(layer.bias), transB=1)
            return g.op("Unsqueeze", out, "spatial")

        one = g.constant(f"one{len(g.initializers)}", np.array(1.0, np.float32))
        gain = g.op("Add", linear(modulation.scale), one)
        return g.op("Add", g.op("Mul", x, gain), linear(modulation.shift))


def painter_graph(
    encoder: VGG19, decoder: Decoder, method: str = "wct", eps: float = 1e-5
) -> bytes:
    """The serialized ONNX model of a network trained to paint: `encoder` (its own compact
    one, or VGG-19) and the `decoder` of its one level, trained on `method` (wct, adain)."""
    from onnx import TensorProto, helper

    if decoder.unpool:
        raise ModelError("decoders that unpool at the photo's switches do not export to ONNX")
    if encoder.pooling != "max":
        raise ModelError("only an encoder with max pooling exports to ONNX")
    p = _Painter(encoder, decoder, method, eps)
    g = p.g
    layer = level_layer(decoder.level)
    wanted = {layer, *(level_layer(int(b)) for b in decoder.modulations)}

    # the photo with up to PAINT_MARGIN px of itself reflected around it
    size = g.op("Slice", g.op("Shape", "image"), "two", "four")
    margin = g.op("Min", g.op("Sub", g.op("ReduceMin", size, keepdims=1), "one"), "margin")
    pads = g.op("Concat", "zero", "zero", margin, margin, "zero", "zero", margin, margin, axis=0)
    photo, sizes = p.encode(g.op("Pad", "image", pads, mode="reflect"), wanted)
    painting, _ = p.encode("painting", wanted)

    # the photo's features moved to the painting's statistics and mixed with its own by
    # the strength s: s (M (f - own mean) + painting's mean) + (1 - s) f, one affine map
    s = g.op("Cast", "strength", to=DOUBLE)
    own, theirs = p.statistics(photo[layer]), p.statistics(painting[layer])
    m = p.matrix(own, theirs)
    mixing = g.op("Add", g.op("Mul", s, m), g.op("Mul", g.op("Sub", "unit", s), "eye"))
    shift = g.op("Mul", s, g.op("Sub", theirs[0], g.op("MatMul", m, own[0])))
    flat = g.op("Reshape", photo[layer], "flat")
    moved = g.op("MatMul", g.op("Cast", mixing, to=FLOAT), flat)
    moved = g.op("Add", moved, g.op("Cast", shift, to=FLOAT))
    x = g.op("Reshape", moved, g.op("Shape", photo[layer]))

    # the decoder, back up to the sizes the encoder pooled from (`Decoder.forward`)
    x = g.op("Mul", x, g.constant("input_scale", np.array(decoder.input_scale, np.float32)))
    for (before, after), target, block in zip(
        decoder.stages, sizes[::-1], range(decoder.level - 1, 0, -1), strict=True
    ):
        x = g.op("Relu", p.conv(x, before[0][1]))
        if str(block) in decoder.modulations:
            x = p.modulate(x, block, photo, painting, "strength")
        shape = g.op("Concat", g.op("Slice", g.op("Shape", x), "zero", "two"), target, axis=0)
        x = g.op(
            "Resize",
            x,
            "",
            "",
            shape,
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        for conv in after:
            x = g.op("Relu", p.conv(x, conv[1]))
    x = g.op("Clip", p.conv(x, decoder.out[1]), "lowest", "highest")

    # the margin cut off, and the picture faded into the photo below strength 1
    start = g.op("Concat", margin, margin, axis=0)
    x = g.op("Slice", x, start, g.op("Add", start, size), "spatial")
    change = g.op("Mul", g.op("Sub", x, "image"), "strength")
    g.nodes.append(helper.make_node("Add", ["image", change], ["stylized"]))

    def picture(name: str, dims: tuple[str, str, str], doc: str):
        batch, h, w = dims
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 3, h, w], doc)

    inputs = [
        picture("image", ("batch", "height", "width"), "the photos, RGB in [0, 1]"),
        picture(
            "painting",
            ("paintings", "painting_height", "painting_width"),
            "one painting, or one per photo, RGB in [0, 1], at about the photos' size",
        ),
        helper.make_tensor_value_info(
            "strength", TensorProto.FLOAT, [], "0 gives the photo, 1 the full style"
        ),
    ]
    output = picture("stylized", ("batch", "height", "width"), "the pictures, RGB in [0, 1]")
    used = {name for node in g.nodes for name in node.input}  # AdaIN takes no roots
    graph = helper.make_graph(
        g.nodes,
        "impasto_painter",
        inputs,
        [output],
        [tensor for tensor in g.initializers if tensor.name in used],
        doc_string="impasto's one-pass arbitrary style: the photo painted like the painting",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="impasto",
        producer_version=__version__,
    )
    model.ir_version = 8  # what onnxruntime releases of the last years all read
    return model.SerializeToString()
