"""VGG-19 as a frozen feature extractor with named layers.

    vgg = VGG19.from_weights(find_weights())
    features = vgg(image, ["relu1_1", "conv4_2"])   # image: RGB in [0, 1], (N, 3, H, W)

The network runs only as deep as the deepest layer asked for, and applies the
input convention of its weights itself, so callers always pass RGB in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..devices import resolve_device
from ..errors import ImageError, OptionError
from ..options import PADDINGS, POOLINGS
from .weights import CONV_LAYERS, VGGWeights, find_weights


def _layer_names() -> tuple[str, ...]:
    names = []
    for conv, _, _ in CONV_LAYERS:
        block, index = conv[4], conv[6]
        names += [conv, f"relu{block}_{index}"]
        if (block in "12" and index == "2") or (block in "345" and index == "4"):
            names.append(f"pool{block}")
    return tuple(names)


LAYERS = _layer_names()  # conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...
# Average pooling shrinks ReLU features (their mass is sparse), more with each pool, and
# the style and content weights were set for max pooling: each average pool is scaled
# by the RMS ratio of max- to average-pooled features (mean over the project's 7 photos
# and 7 paintings at 256 px, default weights), as crowsonkb's style-transfer does with 2.
AVG_POOL_GAIN = {"pool1": 1.2, "pool2": 1.6, "pool3": 1.4, "pool4": 1.9, "pool5": 1.6}

# Per-channel affine map from RGB in [0, 1] to each convention's input.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCHVISION_MEAN = (0.485, 0.456, 0.406)
_TORCHVISION_STD = (0.229, 0.224, 0.225)


class VGG19(nn.Module):
    """VGG-19's convolutions, or, with `width` < 1 and `last` conv, a narrow copy of its
    first layers (a compact encoder distilled from it: `prune`)."""

    def __init__(
        self,
        convention: str = "caffe",
        pooling: str = "max",
        padding: str = "zeros",
        width: float = 1.0,
        last: str = "conv5_4",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise OptionError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        if padding not in PADDINGS:
            raise OptionError(f"padding must be one of {', '.join(PADDINGS)}, not {padding!r}")
        self.convention = convention
        self.pooling = pooling
        # Replicate padding of the input: zeros there are a black frame (or, after the
        # Caffe mean is subtracted, a grey one) that the style loss paints edges for.
        self.padding = padding
        stop = [name for name, _, _ in CONV_LAYERS].index(last) + 1
        self.convs = nn.ModuleDict(
            {
                name: nn.Conv2d(narrow(cin, width), narrow(cout, width), 3, padding=1)
                for name, cin, cout in CONV_LAYERS[:stop]
            }
        )
        if convention == "caffe":  # BGR, 0–255, minus mean
            order, scale = [2, 1, 0], [255.0] * 3
            shift = [-m for m in _CAFFE_MEAN_BGR]
        else:  # RGB, (x - mean) / std
            order = [0, 1, 2]
            scale = [1 / s for s in _TORCHVISION_STD]
            shift = [-m / s for m, s in zip(_TORCHVISION_MEAN, _TORCHVISION_STD, strict=True)]
        self.channel_order = order
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_weights(cls, weights: VGGWeights, pooling: str = "max") -> VGG19:
        vgg = cls(weights.convention, pooling)
        state = {f"convs.{k}": v for k, v in weights.state.items()}
        vgg.load_state_dict(state)
        return vgg

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> this network's input convention."""
        return image[:, self.channel_order] * self.scale + self.shift

    def forward(
        self, image: torch.Tensor, layers: Iterable[str], switches: list | None = None
    ) -> dict[str, torch.Tensor]:
        """Activations of `layers` for `image` (RGB, [0, 1], shape (N, 3, H, W)). With a
        `switches` list, each max pooling on the way appends where its maxima were
        (`pool_switches`), for decoders that unpool."""
        return dict(self.walk(image, layers, switches))

    def walk(
        self, image: torch.Tensor, layers: Iterable[str], switches: list | None = None
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, activation) of `layers`, shallowest first, each as the network reaches
        it. A loss built on each as it comes has its gradient computed only when the
        backward pass gets down to its layer (autograd runs the newest nodes first), so
        the shallow layers' full-size gradients are not all held from the start."""
        if switches is not None and self.pooling != "max":
            raise OptionError("pooling switches need max pooling")
        wanted = set(layers)
        unknown = wanted - set(LAYERS)
        if unknown:
            raise OptionError(
                f"unknown VGG-19 layer(s) {', '.join(sorted(unknown))}; "
                "names look like conv4_2, relu3_1, pool2"
            )
        last = max((LAYERS.index(name) for name in wanted), default=-1)
        reach = LAYERS.index(list(self.convs)[-1]) + 1  # the last conv's ReLU
        reach += LAYERS[reach + 1 : reach + 2] == (f"pool{LAYERS[reach][4]}",)  # its pooling
        if last > reach:
            raise OptionError(f"this encoder stops at {LAYERS[reach]}: it has no {LAYERS[last]}")
        need = 2 ** sum(name.startswith("pool") for name in LAYERS[: last + 1])
        if min(image.shape[-2:]) < need:
            h, w = image.shape[-2:]
            raise ImageError(
                f"a {w}x{h} px picture is too small for VGG-19 up to {LAYERS[last]}: "
                f"each side must be at least {need} px (choose a larger size)"
            )
        x = self.preprocess(image)
        for name in LAYERS[: last + 1]:
            kind = name[:4]
            if name == "conv1_1":
                x = self._first_conv(x)
            elif kind == "conv":
                x = self.convs[name](x)
            elif kind == "relu":
                # In place unless the conv output is wanted: halves activation memory.
                x = F.relu(x, inplace=f"conv{name[4:]}" not in wanted)
            elif self.pooling == "max":
                if x.requires_grad:  # MaxPool keeps no indices for its backward pass
                    pooled = MaxPool.apply(x)
                    if switches is not None:
                        switches.append(pool_switches(x.detach()))
                    x = pooled
                elif switches is not None:
                    x, where = max_pool_with_switches(x)
                    switches.append(where)
                else:
                    x = max_pool(x)
            else:
                x = F.avg_pool2d(x, 2) * AVG_POOL_GAIN[name]
            if name in wanted:
                yield name, x

    def _first_conv(self, x: torch.Tensor) -> torch.Tensor:
        conv, padding = self.convs["conv1_1"], 1
        if self.padding == "replicate":
            x, padding = F.pad(x, (1, 1, 1, 1), mode="replicate"), 0
        bf16 = (
            torch.is_autocast_enabled(x.device.type)
            and torch.get_autocast_dtype(x.device.type) == torch.bfloat16
        )
        if bf16 and x.dtype != torch.bfloat16 and not conv.weight.requires_grad:
            return SplitInputConv.apply(x, conv.weight, conv.bias, padding)
        return F.conv2d(x, conv.weight, conv.bias, padding=padding)


class SplitInputConv(torch.autograd.Function):
    """A frozen first convolution under bf16 autocast, its input carried as two bf16 parts
    (the value rounded, then what rounding lost) in one convolution of twice the channels,
    summed in float32. bf16 alone keeps 8 significant bits of the input, steps of 0.25–1
    of the 255 levels in the Caffe convention: an optimization's last steps, smaller than
    that, go unseen and its gradient strays from float32's (docs/benchmarks.md). The two
    parts keep 16 bits for little more time; the backward pass needs no more than bf16."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding: int):
        with torch.autocast(x.device.type, enabled=False):
            high = x.to(torch.bfloat16)
            low = (x - high.float()).to(torch.bfloat16)
            weight = weight.to(torch.bfloat16)
            ctx.save_for_backward(weight)
            ctx.shape, ctx.dtype, ctx.padding = x.shape, x.dtype, padding
            both = torch.cat([high, low], 1).contiguous(memory_format=layout(weight))
            return F.conv2d(
                both, torch.cat([weight, weight], 1), bias.to(torch.bfloat16), padding=padding
            )

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        with torch.autocast(grad.device.type, enabled=False):
            grad = torch.nn.grad.conv2d_input(
                ctx.shape, weight, grad.to(weight.dtype), padding=ctx.padding
            )
        return grad.to(ctx.dtype), None, None, None


def narrow(channels: int, width: float) -> int:
    """A layer's channels in a VGG of `width` (the colour input stays 3)."""
    return channels if channels == 3 else max(8, round(channels * width))


def prune(vgg: VGG19, width: float, last: str) -> VGG19:
    """A narrow VGG up to conv `last` that starts as `vgg` with, in each layer, only the
    filters of largest L1 norm (Li et al. 2017, "Pruning filters"): the warm start of a
    compact encoder, trainable."""
    small = VGG19(vgg.convention, vgg.pooling, vgg.padding, width, last)
    kept = torch.arange(3, device=vgg.scale.device)  # the input's channels
    for name, conv in small.convs.items():
        weight = vgg.convs[name].weight[:, kept]
        strongest = weight.abs().sum((1, 2, 3)).topk(conv.out_channels).indices.sort().values
        conv.weight.data.copy_(weight[strongest])
        conv.bias.data.copy_(vgg.convs[name].bias[strongest])
        kept = strongest
    return small.to(vgg.scale.device)


def check_loss_layers(kind: str, layers: Mapping[str, float]) -> None:
    """A loss's {layer: weight}: known layers, and no negative weight (it would reward
    the opposite of what the loss measures and run off to infinity)."""
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise OptionError(f"unknown {kind} layer(s): {', '.join(sorted(unknown))}")
    if any(w < 0 for w in layers.values()):
        raise OptionError(f"{kind} layer weights cannot be negative")


def max_pool(x: torch.Tensor) -> torch.Tensor:
    """2×2 max pooling, the same values as F.max_pool2d(x, 2). On the CPU the maximum of
    the four strided quarters is several times faster than that kernel (which also
    computes indices)."""
    if x.device.type != "cpu":
        return F.max_pool2d(x, 2)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # an odd last row or column is dropped
    top = torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2])
    return torch.maximum(top, torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


class MaxPool(torch.autograd.Function):
    """2×2 max pooling that keeps no int64 indices for the backward pass: its input, a
    ReLU output the graph holds anyway, says where each maximum was: less memory for an
    optimization to hold, for a little more arithmetic in the backward pass. Ties go to
    the first in row-major order, as F.max_pool2d's indices do."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return max_pool(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return unpool(grad, pool_switches(x), x.shape[-2:])


_QUARTERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (dy, dx) in row-major order


def layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format `x` is laid out in: channels-last (oneDNN's fast layout for
    inference on CPUs) or the default."""
    channels_last = (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    return torch.channels_last if channels_last else torch.contiguous_format


def pool_switches(x: torch.Tensor) -> torch.Tensor:
    """Where each 2×2 maximum of `x` was: (4, N, C, h, w) booleans laid out as `x` is
    (channels-last or not), one mask per quarter in row-major order, one true per window
    (ties go to the first, as F.max_pool2d's indices do)."""
    return max_pool_with_switches(x)[1]


def max_pool_with_switches(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`max_pool(x)` and `pool_switches(x)` together: they share the rows' maxima. Three
    comparisons place each maximum: left or right in each row, then the upper or the
    lower row's larger."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    a, b, c, d = (x[..., dy:h:2, dx:w:2] for dy, dx in _QUARTERS)
    right_top, right_bottom = b > a, d > c
    top, bottom = torch.maximum(a, b), torch.maximum(c, d)
    lower = bottom > top
    upper = ~lower
    one = torch.empty(a.shape, dtype=torch.bool, device=x.device, memory_format=layout(x))
    masks = torch.empty_strided(
        (4, *a.shape), (one.numel(), *one.stride()), dtype=torch.bool, device=x.device
    )
    torch.gt(upper, right_top, out=masks[0])  # upper and not right: bools compare as 0/1
    torch.logical_and(upper, right_top, out=masks[1])
    torch.gt(lower, right_bottom, out=masks[2])
    torch.logical_and(lower, right_bottom, out=masks[3])
    return torch.maximum(top, bottom), masks


def unpool(y: torch.Tensor, switches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Max unpooling: each value of `y` goes back to where its window's maximum was
    (`pool_switches`), zeros elsewhere, in a picture of `size` (an odd last row or
    column, which pooling dropped, stays zero)."""
    h, w = switches.shape[-2:]
    shape = (*y.shape[:-2], *size)
    out = torch.empty(shape, dtype=y.dtype, device=y.device, memory_format=layout(y)).zero_()
    for q, (dy, dx) in enumerate(_QUARTERS):
        place = out[..., dy : 2 * h : 2, dx : 2 * w : 2]
        if torch.is_grad_enabled() and y.requires_grad:  # training a decoder
            place.copy_(y * switches[q])
        else:  # straight into place, no temporary
            torch.mul(y, switches[q], out=place)
    return out


def load_vgg(
    weights: VGGWeights | str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> VGG19:
    """VGG-19 with weights found as `find_weights` finds them, on `device` ("auto": best).

    On the CPU its weights are laid out channels-last, and so are the features it returns:
    oneDNN's convolutions are faster in that layout (a 512-px forward and backward pass
    took 1.02 s instead of 1.49 in float32, 0.60 instead of 0.71 in bf16, on 2 AVX-512
    cores). Features are then not `.view`-able as (C, H·W); `.flatten(2)` is."""
    if not isinstance(weights, VGGWeights):
        weights = find_weights(weights)
    device = resolve_device(device)
    fast = torch.channels_last if device.type == "cpu" else torch.preserve_format
    return VGG19.from_weights(weights).to(device, memory_format=fast)
