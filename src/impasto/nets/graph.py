"""The transformation network as an ONNX graph, built from its weights without torch.

The graph does what `TransformerNet.forward` does, layer for layer: reflection padding,
convolution, conditional instance norm (instance norm with the style mix's scale and
shift), nearest upsampling back to each downsampling's input size, a sigmoid at the end.
It takes `image` (N, 3, H, W), RGB in [0, 1], any height and width, and `style_weights`
(n_styles,), and gives `stylized`. `impasto export --format onnx` writes it, and the
onnxruntime backend runs it, so neither needs torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .architecture import Architecture

OPSET = 17


class Graph:
    """Nodes and weights as they are added; names are made unique by counting."""

    def __init__(self, state: Mapping[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.state, self.nodes, self.initializers, self.count = state, [], [], 0

    def op(self, kind: str, *inputs: str, **attributes) -> str:
        self.count += 1
        out = f"{kind.lower()}{self.count}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(value, name))
        return name

    def weight(self, name: str) -> str:
        return self.constant(name, np.asarray(self.state[name], dtype=np.float32))

    def conv(
        self,
        x: str,
        prefix: str,
        mix: str,
        stride: int = 1,
        size: str | None = None,
        norm: bool = True,
    ) -> str:
        """[nearest upsample to `size`] -> reflection pad -> conv -> [conditional norm]."""
        if size is not None:
            target = self.op(
                "Concat", self.op("Slice", self.op("Shape", x), "zero", "two"), size, axis=0
            )
            x = self.op(
                "Resize",
                x,
                "",
                "",
                target,
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
        kernel = self.state[f"{prefix}.conv.weight"].shape[-1]
        pad = self.constant(f"{prefix}.pad", np.array([0, 0, kernel // 2, kernel // 2] * 2))
        x = self.op("Pad", x, pad, mode="reflect")
        x = self.op(
            "Conv",
            x,
            self.weight(f"{prefix}.conv.weight"),
            self.weight(f"{prefix}.conv.bias"),
            strides=[stride, stride],
        )
        if not norm:
            return x
        # the style mix's scale and shift are the norm's own: no pass of their own
        scale = self.op("MatMul", mix, self.weight(f"{prefix}.norm.scale"))
        shift = self.op("MatMul", mix, self.weight(f"{prefix}.norm.shift"))
        scale, shift = self.op("Reshape", scale, "flat"), self.op("Reshape", shift, "flat")
        return self.op("InstanceNormalization", x, scale, shift, epsilon=1e-5)


# The whole network, or its halves either side of the features after the residual
# blocks, which a video's frame carries from the last one (methods.carried).
PARTS = ("whole", "head", "tail")


def transformer_graph(
    arch: Architecture, state: Mapping[str, np.ndarray], part: str = "whole"
) -> bytes:
    """The serialized ONNX model of the network `arch` with weights `state`: the `part`
    "whole" takes `image` and `style_weights` and gives `stylized`; the "head" gives
    `features` and the two sizes its upsamplings return to (`size0`, `size1`); the
    "tail" takes those and `style_weights` and gives `stylized`."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    from onnx import TensorProto, helper

    g = Graph(state)
    g.constant("zero", np.array([0]))
    g.constant("two", np.array([2]))
    g.constant("four", np.array([4]))
    g.constant("flat", np.array([-1]))
    mix = g.op("Reshape", "style_weights", g.constant("row", np.array([1, -1])))
    n, channels = len(arch.styles), 4 * arch.width
    image = helper.make_tensor_value_info(
        "image", TensorProto.FLOAT, ["batch", 3, "height", "width"]
    )
    stylized = helper.make_tensor_value_info(
        "stylized", TensorProto.FLOAT, ["batch", 3, "height", "width"]
    )
    features = helper.make_tensor_value_info(
        "features", TensorProto.FLOAT, ["batch", channels, "rows", "columns"]
    )
    sizes = [helper.make_tensor_value_info(f"size{i}", TensorProto.INT64, [2]) for i in (0, 1)]
    inputs = [helper.make_tensor_value_info("style_weights", TensorProto.FLOAT, [n])]
    if part == "tail":
        x, back = "features", ["size0", "size1"]
        inputs += [features, *sizes]
    else:
        x, back = "image", []
        inputs.insert(0, image)
        for i, stride in enumerate((1, 2, 2)):
            back.insert(0, g.op("Slice", g.op("Shape", x), "two", "four"))
            x = g.op("Relu", g.conv(x, f"down.{i}", mix, stride))
        back = back[:2]  # the sizes the upsamplings return to, the first one first
        for i in range(arch.blocks):
            inner = g.op("Relu", g.conv(x, f"res.{i}.a", mix))
            x = g.op("Add", x, g.conv(inner, f"res.{i}.b", mix))
    if part == "head":
        for value, name in zip([x, *back], ["features", "size0", "size1"], strict=True):
            g.nodes.append(helper.make_node("Identity", [value], [name]))
        outputs = [features, *sizes]
    else:
        for i, size in enumerate(back):
            x = g.op("Relu", g.conv(x, f"up.{i}", mix, size=size))
        out = g.op("Sigmoid", g.conv(x, "out", mix, norm=False))
        g.nodes.append(helper.make_node("Identity", [out], ["stylized"]))
        outputs = [stylized]
    graph = helper.make_graph(
        g.nodes,
        "impasto_transformer" + ("" if part == "whole" else f"_{part}"),
        inputs,
        outputs,
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # what onnxruntime releases of the last years all read
    return model.SerializeToString()
