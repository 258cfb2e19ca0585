"""Decoders that invert VGG-19: relu{L}_1 features back to an image, for L = 1 … 5.

Universal style transfer (Li et al. 2017) transforms features, then needs a way back to
pixels. Each decoder mirrors the encoder from its layer down: a 3×3 conv per encoder
conv (reflection padding, ReLU), nearest upsampling where the encoder pooled, back to
the exact size the encoder pooled from, so any height and width round-trip. They learn
reconstruction only, so no style is baked in. `width` scales every decoder channel
(0.5: a quarter of the weights, for small model files). With `unpool`, each upsampling
puts values back where the encoder's max pooling found its maxima (the photo's switches,
as in PhotoWCT, Li et al. 2018) instead of copying them over the 2×2 block: edges come
back where the photo had them, so the pictures are far sharper (docs/models.md).
With `encoder_width` < 1 the decoders come with their own compact encoder, a narrow VGG
distilled from VGG-19 (as in Wang et al. 2020, "Collaborative distillation"), kept in the
same file: a one-pass style then needs ~1/4 of the arithmetic (width 0.5). A decoder
trained to paint may also take the painting's statistics at shallower layers
(`modulated`): relu4_1's say little of its colours and finest texture.

    decoders = Decoders(Architecture(levels=(1, 2, 3, 4, 5), width=0.5))
    image = decoders[4](features, size=(h, w))   # features: relu4_1 of an (h, w) image
    # unpool: switches = []; features = vgg(image, ["relu4_1"], switches)["relu4_1"]
    #         decoders[4](features, size=(h, w), switches=switches)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from ..errors import ImageError, ModelError
from ..options import ONE_PASS_METHODS
from .upsample import upsampled_conv
from .vgg import VGG19, narrow, unpool
from .weights import CONVENTIONS

VGG_CHANNELS = (64, 128, 256, 512, 512)  # per block
VGG_CONVS = (2, 2, 4, 4, 4)  # convs per block
LEVELS = (1, 2, 3, 4, 5)
MAX_WIDTH = 8.0  # channel multiplier a model file may ask for: far past any trained one
# Root-mean-square of relu{L}_1 for natural photos with the Caffe VGG-19 (measured on
# ../shared/data/train at 256 px); torchvision's weights give about 1/57 of these.
FEATURE_RMS = {1: 46.0, 2: 218.0, 3: 268.0, 4: 890.0, 5: 124.0}
# px of reflected photo painted around the picture by decoders that paint, then cut off:
# they draw a frame along a picture's edges (4 cells of relu4_1 move it out of sight)
PAINT_MARGIN = 32


def level_layer(level: int) -> str:
    return f"relu{level}_1"


@dataclass(frozen=True)
class DecoderArchitecture:
    levels: tuple[int, ...] = LEVELS
    width: float = 0.5
    # Multiplies 1 / FEATURE_RMS[level]: features come in at about unit scale.
    input_scale: float = 1.0
    unpool: bool = False  # upsample at the encoder's pooling switches
    # 1: the pretrained VGG-19 encodes; below 1: a narrow VGG of this width, in the file
    encoder_width: float = 1.0
    encoder_convention: str = "caffe"  # the input convention the encoder was pruned from
    # The feature transform they decode best: wct for decoders that learnt to reconstruct,
    # for decoders trained with style losses (train-arbitrary), the one they trained on
    method: str = "wct"
    # Trained with style losses: it paints even the photo's own features, so a strength
    # below 1 also fades its picture into the photo (0 is the photo itself)
    paints: bool = False
    # Blocks below a decoder's level whose activations also take the painting's own
    # statistics at relu{b}_1 (`Modulation`): the finest colour and texture, which
    # relu4_1's statistics alone do not carry
    modulated: tuple[int, ...] = ()

    def shallow(self, level: int) -> dict[int, str]:
        """The blocks a relu{level}_1 decoder modulates, and the layers whose statistics
        they take."""
        return {b: level_layer(b) for b in self.modulated if b < level}

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "levels": list(self.levels),
            "modulated": list(self.modulated),
            "kind": "decoders",
        }

    @classmethod
    def from_dict(cls, d: dict) -> DecoderArchitecture:
        try:
            arch = cls(
                levels=tuple(int(v) for v in d["levels"]),
                width=float(d["width"]),
                input_scale=float(d["input_scale"]),
                unpool=bool(d.get("unpool", False)),
                encoder_width=float(d.get("encoder_width", 1.0)),
                encoder_convention=str(d.get("encoder_convention", "caffe")),
                method=str(d.get("method", "wct")),
                paints=bool(d.get("paints", False)),
                modulated=tuple(int(v) for v in d.get("modulated", ())),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"model metadata does not describe decoders ({e})") from e
        numbers = (arch.width, arch.input_scale, arch.encoder_width)
        if (
            not arch.levels
            or not set(arch.levels) <= set(LEVELS)
            or not all(math.isfinite(x) for x in numbers)
            or not 0 < arch.width <= MAX_WIDTH
            or not arch.input_scale > 0
            or not 0 < arch.encoder_width <= 1
            or arch.encoder_convention not in CONVENTIONS
            or arch.method not in ONE_PASS_METHODS
            or not all(0 < b < min(arch.levels) for b in arch.modulated)
        ):
            raise ModelError("model metadata has impossible decoders")
        return arch


class _Conv(nn.Sequential):
    """Reflection pad, 3×3 conv, [ReLU]; with `size`, the features upsampled to it first."""

    def __init__(self, cin: int, cout: int, relu: bool = True):
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))
        if relu:
            self.append(nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None:
            return super().forward(x)
        x = upsampled_conv(x, self[1], size)
        return self[2](x) if len(self) > 2 else x


def style_code(mean: torch.Tensor, std: torch.Tensor, block: int) -> torch.Tensor:
    """What a `Modulation` reads: the (N, C) per-channel mean and spread of a painting's
    relu{block}_1 features, side by side at about unit scale, (N, 2C)."""
    return torch.cat([mean, std], 1) / FEATURE_RMS[block]


class Modulation(nn.Module):
    """A decoder's activations at one block, given a painting's statistics there: each
    channel scaled and shifted by amounts read from the painting's `style_code` (FiLM,
    Perez et al. 2018). Nothing in it depends on the picture's own activations, so tiles
    of a large picture are modulated alike. It starts at nothing (zero weights): a decoder
    that did not have it paints as before until it learns to use it."""

    def __init__(self, encoded: int, channels: int):
        super().__init__()
        self.scale, self.shift = nn.Linear(2 * encoded, channels), nn.Linear(2 * encoded, channels)
        for linear in (self.scale, self.shift):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        code = code.to(self.scale.weight.dtype)
        gain, shift = 1 + self.scale(code), self.shift(code)
        return torch.addcmul(shift[..., None, None], x, gain[..., None, None])


class Decoder(nn.Module):
    """relu{level}_1 features -> RGB in [0, 1] (clamped only at inference)."""

    def __init__(
        self,
        level: int,
        width: float = 0.5,
        input_scale: float = 1.0,
        unpool: bool = False,
        encoder_width: float = 1.0,
        modulated: tuple[int, ...] = (),
    ):
        super().__init__()
        self.level, self.input_scale = level, input_scale / FEATURE_RMS[level]
        self.unpool = unpool

        def ch(block: int) -> int:  # decoder channels for a block (1-based)
            return max(8, round(VGG_CHANNELS[block - 1] * width))

        def encoded(block: int) -> int:  # the encoder's channels in a block
            return narrow(VGG_CHANNELS[block - 1], encoder_width)

        stages = []
        cin = encoded(level)  # the features come at the encoder's width
        for block in range(level, 1, -1):  # undo block `block`'s first conv and the pool
            # unpooling needs the pooled layer's own channels, one switch each
            mid = encoded(block - 1) if unpool else ch(block - 1)
            layers = [_Conv(cin, mid)]
            # after upsampling: the rest of the previous block's convs, mirrored
            post = [
                _Conv(mid if i == 0 else ch(block - 1), ch(block - 1))
                for i in range(VGG_CONVS[block - 2] - 1)
            ]
            stages.append(nn.ModuleList([nn.Sequential(*layers), nn.Sequential(*post)]))
            cin = ch(block - 1)
        self.stages = nn.ModuleList(stages)
        self.modulations = nn.ModuleDict(
            {str(b): Modulation(encoded(b), ch(b)) for b in modulated if b < level}
        )
        self.out = _Conv(cin, 3, relu=False)
        for module in self.modules():  # He init: the signal survives up to 16 ReLU layers
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        with torch.no_grad():  # start near a mid-grey picture, not at unit-scale noise
            self.out[1].weight.mul_(0.1)
            self.out[1].bias.fill_(0.45)

    def forward(
        self,
        features: torch.Tensor,
        size: tuple[int, int],
        switches: list | None = None,
        style: dict[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """`switches`: what VGG19(..., switches=[]) collected on the way to the features
        (needed when this decoder unpools; pools beyond this level are ignored). `style`:
        the `style_code` of each block it modulates."""
        if min(features.shape[-2:]) < 2:  # reflection padding needs 2 px of features
            h, w = size
            raise ImageError(
                f"a {w}x{h} px photo is too small for {level_layer(self.level)}: "
                f"each side must be at least {2**self.level} px (choose a larger size)"
            )
        # The encoder's sizes: each pool floors the halved size.
        sizes = [tuple(size)]
        for _ in range(self.level - 1):
            sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
        if self.unpool and (switches is None or len(switches) < self.level - 1):
            raise ModelError(
                f"this {level_layer(self.level)} decoder unpools: pass the "
                "encoder's pooling switches"
            )
        if self.modulations and not set(map(int, self.modulations)) <= set(style or ()):
            raise ModelError(
                f"this {level_layer(self.level)} decoder takes the painting's statistics at "
                + ", ".join(level_layer(int(b)) for b in self.modulations)
            )
        x = features * self.input_scale
        for (before, after), target, pool in zip(
            self.stages, sizes[-2::-1], range(self.level - 2, -1, -1), strict=True
        ):
            x = before(x)
            if self.unpool:
                x = unpool(x, switches[pool], target)
            # the block this stage arrives at; per channel, so the same before upsampling
            if str(pool + 1) in self.modulations:
                x = self.modulations[str(pool + 1)](x, style[pool + 1])
            # nearest upsampling is done by the first conv after it (nets.upsample)
            x = after[1:](after[0](x, size=None if self.unpool else target))
        return self.out(x)


class Decoders(nn.Module):
    def __init__(self, arch: DecoderArchitecture = DecoderArchitecture()):
        super().__init__()
        self.arch = arch
        self.decoders = nn.ModuleDict(
            {
                str(lv): Decoder(
                    lv,
                    arch.width,
                    arch.input_scale,
                    arch.unpool,
                    arch.encoder_width,
                    arch.modulated,
                )
                for lv in arch.levels
            }
        )
        # A compact encoder of their own (else the caller's VGG-19 encodes)
        self.encoder = None
        if arch.encoder_width < 1:
            self.encoder = VGG19(
                arch.encoder_convention, width=arch.encoder_width, last=f"conv{max(arch.levels)}_1"
            )

    def switches(self) -> list | None:
        """What to pass VGG19 as `switches` before decoding: a list for it to fill if these
        decoders unpool, else None (no switches computed)."""
        return [] if self.arch.unpool else None

    def __getitem__(self, level: int) -> Decoder:
        if str(level) not in self.decoders:
            have = ", ".join(level_layer(lv) for lv in self.arch.levels)
            raise ModelError(f"no decoder for {level_layer(level)} (this file has: {have})")
        return self.decoders[str(level)]


def _in_order(decoder: Decoder) -> Iterator[nn.Module]:
    """A decoder's convs and modulations in the order its features go through them."""
    for i, (before, after) in enumerate(decoder.stages):
        yield before[0][1]
        block = str(decoder.level - 1 - i)  # the block this stage arrives at
        if block in decoder.modulations:
            yield decoder.modulations[block]
        yield from (conv[1] for conv in after)
    yield decoder.out[1]


@torch.no_grad()
def prune_decoders(net: Decoders, width: float) -> Decoders:
    """`net` at another `width` (same encoder), each conv starting with only its filters
    of largest L1 norm, and the next conv with their inputs (as `vgg.prune` does for an
    encoder): the warm start of a narrower, faster decoder that learns from `net`."""
    small = Decoders(replace(net.arch, width=width)).to(next(net.parameters()).device)
    if net.encoder is not None:
        small.encoder.load_state_dict(net.encoder.state_dict())
    for level, big in net.decoders.items():
        kept = None  # the input's channels: the encoder's, every one
        for theirs, ours in zip(_in_order(big), _in_order(small.decoders[level]), strict=True):
            if isinstance(ours, Modulation):  # per channel of the conv before it
                for a, b in ((theirs.scale, ours.scale), (theirs.shift, ours.shift)):
                    b.weight.copy_(a.weight[kept])
                    b.bias.copy_(a.bias[kept])
                continue
            weight = theirs.weight if kept is None else theirs.weight[:, kept]
            kept = weight.abs().sum((1, 2, 3)).topk(ours.out_channels).indices.sort().values
            ours.weight.copy_(weight[kept])
            ours.bias.copy_(theirs.bias[kept])
    return small
