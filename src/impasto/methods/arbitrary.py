"""Any style in one pass: AdaIN (Huang & Belongie 2017) and universal style transfer
(Li et al. 2017), on an encoder (VGG-19 or a compact one distilled from it) and decoders.

The image is encoded, its features take on the style's statistics (AdaIN: the style's
per-channel mean and spread; WCT: whitening then colouring by the style's covariance),
and are decoded. Decoders trained to paint (the built-in `painter`, `impasto
train-arbitrary`) do it once, at relu4_1, with the transform they were trained on (the
built-in: WCT); those that modulate (`--modulate`)
are also given the paintings' statistics at relu1_1 ... relu3_1, blended and mixed with
the photo's by the strength as the features are. Decoders trained to reconstruct go
coarse to fine, as in Li et al.: the result is encoded again at the next level, and so on
down to relu1_1. Each file says which transform it was trained for.

    arbitrary = ArbitraryStylizer()  # the built-in painter
    arbitrary.run("photo.jpg", "painting.jpg", strength=0.8).image.save("out.png")
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import color
from ..budget import BYTES_PER_ONE_PASS_PIXEL, check_fits
from ..devices import resolve_device, usable_precision
from ..errors import OptionError
from ..io.images import (
    ImageSource,
    carry_metadata,
    load_image,
    resize_longest,
    scaled_size,
    to_image,
    to_tensor,
)
from ..losses import Moments
from ..models import load_network
from ..nets.decoders import (
    PAINT_MARGIN,
    DecoderArchitecture,
    Decoders,
    level_layer,
    style_code,
)
from ..nets.vgg import load_vgg
from ..nets.weights import VGGWeights
from ..options import ArbitraryOptions, update
from .blend import blend_weights
from .carried import Carried
from .result import Progress, Result, as_list, one_pass_progress
from .temporal import Motion
from .tiles import FEATURE_CONTEXT, blend_tiles, feature_tiles
from .transforms import MATRICES, RunningMoments, affine_map, apply_map, moments

# The paper starts at relu5_1; from relu4_1 the photo's layout stays readable, and the
# built-in decoders stop there. With decoders for it, pass levels=[5, 4, 3, 2, 1].
DEFAULT_LEVELS = (4, 3, 2, 1)
TILE = 1024  # px: larger pictures (and paintings) are encoded and decoded in tiles
KEPT_STATISTICS = 4  # paintings' statistics a stylizer keeps for its next pictures


def _code(stats: Moments, block: int) -> torch.Tensor:
    """A modulating decoder's input from a picture's relu{block}_1 statistics, (1, 2C)."""
    spread = stats.covariance().diagonal().clamp_min(0).sqrt()
    return style_code(stats.mean[None], spread[None], block).float()


def fingerprint(image: Image.Image) -> tuple:
    """What tells one painting from another: its size, mode and a digest of its pixels
    (far cheaper than encoding it)."""
    return image.size, image.mode, hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def load_decoders(model: str | os.PathLike) -> tuple[Decoders, dict]:
    return load_network(model, "decoders", lambda a: Decoders(DecoderArchitecture.from_dict(a)))


class ArbitraryStylizer:
    """The encoder (VGG-19, or the decoders' own compact one) and the decoders, loaded
    once."""

    tile = TILE  # px: bigger pictures go through in tiles (set lower to save memory)
    _kept_lock = threading.Lock()  # held only to look up or store kept statistics

    def __init__(
        self,
        decoders: str | os.PathLike = "painter",
        weights: VGGWeights | str | os.PathLike | None = None,
        device: str | torch.device = "auto",
    ):
        self.decoders, self.metadata = load_decoders(decoders)
        # Decoders with a compact encoder of their own need no VGG-19
        if self.decoders.encoder is not None and weights is not None:
            raise OptionError(
                f"{decoders}: these decoders bring their own encoder, so VGG-19 "
                "weights do not apply (use decoders made for VGG-19, such as "
                "the built-in 'decoders')"
            )
        self.encoder = self.decoders.encoder or load_vgg(weights, device)
        self.device = resolve_device(device)
        self.decoders.to(self.device)

    def _moments(self, image: torch.Tensor, layers: list[str], encode) -> dict[str, Moments]:
        """Each layer's feature statistics over the whole picture, in tiles if it is big."""
        if max(image.shape[-2:]) <= self.tile:
            found = encode(image, layers)
            return {name: moments([found[name][0].flatten(1)]) for name in layers}
        running = {name: RunningMoments() for name in layers}
        for own in feature_tiles(image, self.tile, FEATURE_CONTEXT, lambda w: encode(w, layers)):
            for name, flat in own.items():
                running[name].add(flat)
        return {name: r.result() for name, r in running.items()}

    def run(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        options: ArbitraryOptions | None = None,
        *,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = False,
        **changes,
    ) -> Result:
        """Stylize `content` like `style` (one image or a list to blend): `options` with
        `changes`, the fields of ArbitraryOptions, on top. `progress` is accepted for the
        common method contract; one pass shows none."""
        opts = update(replace(options) if options else ArbitraryOptions(), changes, "arbitrary")
        start = time.perf_counter()
        picture = load_image(content)
        size = scaled_size(picture.size, opts.size)
        style_px = int(size[0] * size[1] * opts.style_scale**2)
        check_fits(size, BYTES_PER_ONE_PASS_PIXEL, "one-pass style", 24 * style_px)
        pixels = self.painter(style, opts)(picture).float().cpu()
        if callback is not None:
            callback(one_pass_progress(pixels))
        return Result(
            carry_metadata(to_image(pixels), picture),
            pixels,
            time.perf_counter() - start,
            str(self.device),
            options=asdict(opts),
        )

    def painter(
        self,
        style: ImageSource | Sequence[ImageSource],
        options: ArbitraryOptions | None = None,
        motion: Motion | None = None,
    ) -> Callable[[Image.Image], torch.Tensor]:
        """Paint picture after picture like `style`, as `run` does: a function from a
        picture to its painting, (1, 3, H, W) at `options.size`. The paintings are read
        once, and their statistics are found once for each picture size and kept by the
        stylizer (`_kept_statistics`), unless the paintings take each picture's colours
        (preserve_color histogram: then the paintings are kept at the last size). With
        `motion` (a video's `FlowConsistency.motion`), the pictures are frames whose
        painted features are carried from one to the next (`Carried`)."""
        opts = options or ArbitraryOptions()
        carried = Carried(motion) if motion is not None else None
        paintings = [load_image(s) for s in as_list(style)]
        names = tuple(fingerprint(p) for p in paintings)

        def sized(side: int) -> list[torch.Tensor]:
            """The paintings with their longest side at `side` px."""
            return [to_tensor(resize_longest(p, side)).to(self.device) for p in paintings]

        if opts.preserve_color == "histogram":  # recoloured for each picture: keep them sized
            sized = functools.lru_cache(maxsize=1)(sized)

        def paint(picture: Image.Image) -> torch.Tensor:
            photo = to_tensor(resize_longest(picture, opts.size)).to(self.device)
            side = max(16, round(opts.style_scale * max(photo.shape[-2:])))
            if opts.preserve_color == "histogram":  # the paintings in the photo's colours
                stats = self.statistics([color.match_color(p, photo) for p in sized(side)], opts)
            else:
                stats = self._kept_statistics(names, side, opts, sized)
            x = self.paint(photo, stats, opts, carried)
            if opts.preserve_color == "luminance":
                x = color.combine_luminance(x, photo)
            return x

        return paint

    def _kept_statistics(
        self,
        names: tuple,
        side: int,
        opts: ArbitraryOptions,
        sized: Callable[[int], list[torch.Tensor]],
    ) -> list[dict[str, Moments]]:
        """The statistics of the paintings `sized(side)` gives, kept for the next picture:
        a folder of photos, a video, or the web page's next photo painted like the same
        paintings (`names`: their fingerprints) encodes them once per size, whatever the
        strength, the blend or `preserve_color` luminance. The KEPT_STATISTICS most
        recently used are kept, for every thread."""
        layers = self._statistics_layers(self._plan(opts)[0])
        bf16 = usable_precision(opts.precision, self.device) == "bf16"
        key = (names, side, tuple(layers), bf16, self.encoder, self.decoders)
        kept = self.__dict__.setdefault("_kept", {})  # {key: statistics}, oldest first
        with self._kept_lock:
            found = kept.pop(key, None)
            if found is not None:
                kept[key] = found  # the most recently used last
        if found is None:
            found = self.statistics(sized(side), opts)
            with self._kept_lock:
                kept[key] = found
                while len(kept) > KEPT_STATISTICS:
                    del kept[next(iter(kept))]
        return found

    def _plan(self, opts) -> tuple[list[int], list[str], Callable, Decoders]:
        """The levels a picture goes through, coarse to fine, their layers, and the
        networks as this run uses them (an encoding function and the decoders)."""
        have = self.decoders.arch.levels
        levels = list(
            opts.levels or [lv for lv in DEFAULT_LEVELS if lv in have] or sorted(have)[::-1]
        )
        for level in levels:
            self.decoders[level]  # noqa: B018 (a clear error for a missing decoder)
        bf16 = usable_precision(opts.precision, self.device) == "bf16"
        encoder, decoders, prepare = self._networks(bf16)

        def encode(image: torch.Tensor, names: list[str], switches=None) -> dict:
            return encoder(prepare(image), names, switches)

        return levels, [level_layer(level) for level in levels], encode, decoders

    def _statistics_layers(self, levels: list[int]) -> list[str]:
        """The layers whose statistics a painting gives for `levels`: each level's, and
        those its decoder modulates with."""
        names = [level_layer(lv) for lv in levels]
        names += [name for lv in levels for name in self.decoders.arch.shallow(lv).values()]
        return list(dict.fromkeys(names))

    @torch.no_grad()
    def statistics(self, paintings: list[torch.Tensor], opts) -> list[dict[str, Moments]]:
        """Each painting's feature statistics at the layers `opts` paints with."""
        levels, _, encode, _ = self._plan(opts)
        layers = self._statistics_layers(levels)
        return [self._moments(p, layers, encode) for p in paintings]

    @torch.no_grad()
    def paint(
        self,
        photo: torch.Tensor,
        style_stats: list[dict[str, Moments]],
        opts,
        carried: Carried | None = None,
    ) -> torch.Tensor:
        """The photo's features moved to the paintings' statistics (`statistics`, blended
        by style_weights) level by level, coarse to fine, by `opts.strength` (for decoders
        that paint, the picture also faded into the photo by it); (1, 3, H, W). A video's
        frame may carry the first level's painted features from the last frame
        (`carried`; not for pictures of over `tile` px, painted in tiles)."""
        levels, layers, encode, decoders = self._plan(opts)
        blend = blend_weights(opts.style_weights, len(style_stats))
        whole = max(photo.shape[-2:]) <= self.tile  # the picture's size, not the margin's
        x, margin = photo, 0
        if self.decoders.arch.paints:  # its picture frays at the edges: paint past them
            margin = min(PAINT_MARGIN, min(photo.shape[-2:]) - 1)
            x = F.pad(photo, [margin] * 4, mode="reflect")
        carry = functools.partial(carried, margin=margin) if carried and whole else None
        for level, layer in zip(levels, layers, strict=True):
            x = self._level(
                x, level, layer, style_stats, blend, opts, encode, decoders, whole, carry
            )
            carry = None  # the first level only: one memory of one size
        if margin:
            x = x[..., margin:-margin, margin:-margin]
        if self.decoders.arch.paints and opts.strength < 1:  # it paints even the photo
            x = torch.lerp(photo, x, opts.strength)
        return x

    def _level(self, x, level, layer, style_stats, blend, opts, encode, decoders, whole, carry):
        """One level: encode, move the features to the styles' statistics, decode. Unless
        `whole` (a picture of at most `tile` px), the picture goes through in overlapping
        tiles; the statistics are always the whole picture's, so the tiles agree. `carry`
        (whole pictures): what the moved features become before they are decoded."""
        method = opts.method or self.decoders.arch.method
        shallow = self.decoders.arch.shallow(level)
        # the photo's own statistics at the modulated blocks: only to mix with the strength
        names = [layer, *shallow.values()] if opts.strength < 1 else [layer]
        if whole:  # one encoder pass gives both the statistics and the features
            switches = self.decoders.switches()
            found = encode(x, names, switches)
            features = found[layer]
            own = {name: moments([found[name][0].flatten(1)]) for name in names}
        else:
            own = self._moments(x, names, encode)
        stats = own[layer]
        # what the decoder's modulated blocks take: the paintings' statistics there,
        # blended, and mixed with the photo's own by the strength, as the features are
        style = {}
        for b, name in shallow.items():
            theirs = sum(w * _code(s[name], b) for w, s in zip(blend, style_stats, strict=True))
            mine = _code(own[name], b) if name in own else theirs
            style[b] = torch.lerp(mine, theirs, opts.strength)
        maps = [
            affine_map(stats, s[layer], MATRICES[method](stats, s[layer]), opts.strength)
            for s in style_stats
        ]
        blended = (
            sum(w * a for w, (a, _) in zip(blend, maps, strict=True)),
            sum(w * b for w, (_, b) in zip(blend, maps, strict=True)),
        )

        def decode(features, size, switches, carry=None):
            """Features moved to the styles' statistics (blended), then decoded (at the
            photo's own pooling switches, for decoders that unpool)."""
            mixed = apply_map(features, blended)
            if carry is not None:
                mixed = carry(mixed)
            return decoders[level](mixed, size, switches, style).float().clamp(0, 1)

        def paint(window):
            switches = self.decoders.switches()
            features = encode(window.to(self.device), [layer], switches)[layer]
            return decode(features, window.shape[-2:], switches)

        if whole:
            return decode(features, x.shape[-2:], switches, carry)
        return blend_tiles(x.cpu(), self.tile, paint).to(self.device)

    @torch.no_grad()
    def reconstruct(self, image: ImageSource, level: int, size: int | None = None) -> Image.Image:
        """Encode at relu{level}_1 and decode: what the decoder alone gives back."""
        picture = load_image(image)
        if size:
            picture = resize_longest(picture, size)
        x = to_tensor(picture).to(self.device)
        encoder, decoders, prepare = self._networks(bf16=False)
        layer, shallow = level_layer(level), self.decoders.arch.shallow(level)
        switches = self.decoders.switches()
        found = encoder(prepare(x), [layer, *shallow.values()], switches)
        own = {b: _code(moments([found[name][0].flatten(1)]), b) for b, name in shallow.items()}
        return to_image(decoders[level](found[layer], x.shape[-2:], switches, own).float())

    def _networks(self, bf16: bool) -> tuple[nn.Module, Decoders, Callable]:
        """The encoder and decoders as a run uses them, with the function that readies a
        tensor for them: laid out channels-last (oneDNN runs thin layers several times
        faster so on CPUs) and, for bf16, in bfloat16
        (autocast would cast activations anew at each layer); copies, made once, of the
        networks not already so (the originals may be shared)."""
        key = (bf16, self.encoder, self.decoders)
        made = self.__dict__.setdefault("_made", {})
        if key not in made:
            dtype = torch.bfloat16 if bf16 else torch.float32

            def ready(net: nn.Module) -> nn.Module:  # a copy only where it would differ
                weight = next(net.parameters())
                if weight.dtype == dtype and weight.is_contiguous(
                    memory_format=torch.channels_last
                ):  # load_vgg's VGG-19 on a CPU, for fp32: no second 80 MB
                    return net
                return copy.deepcopy(net).to(dtype=dtype, memory_format=torch.channels_last)

            made[key] = (
                ready(self.encoder),
                ready(self.decoders),
                lambda t: t.to(dtype, memory_format=torch.channels_last),
            )
        return made[key]
