"""Any style in one pass: universal style transfer (Li et al. 2017) and AdaIN (Huang &
Belongie 2017) on decoders that invert VGG-19.

Coarse to fine, as in the paper: the image is encoded at relu5_1, its features take on
the style's statistics (WCT: whitening then colouring by the style's covariance; AdaIN:
the style's per-channel mean and spread), and are decoded; the result is encoded at
relu4_1, and so on down to relu1_1.

    arbitrary = ArbitraryStylizer("decoders.safetensors")
    arbitrary.run("photo.jpg", "painting.jpg", alpha=0.8).save("out.png")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch
from PIL import Image

from .. import color
from ..devices import usable_precision
from ..errors import OptionError
from ..io.images import ImageSource, carry_metadata, load_image, resize_longest, to_image, to_tensor
from ..models import load_network
from ..nets.decoders import DecoderArchitecture, Decoders, level_layer
from ..nets.vgg import load_vgg
from ..nets.weights import VGGWeights
from .optimize import PRECISIONS, blend_weights
from .tiles import FEATURE_CONTEXT, blend_tiles, feature_tiles

METHODS = ("wct", "adain")
# The paper starts at relu5_1; from relu4_1 the photo's layout stays readable, and the
# built-in decoders stop there. With decoders for it, pass levels=[5, 4, 3, 2, 1].
DEFAULT_LEVELS = (4, 3, 2, 1)
DEFAULT_ALPHA = 0.6  # Li et al.'s usual setting: style with the photo still readable
TILE = 1024  # px: larger pictures (and paintings) are encoded and decoded in tiles


Moments = tuple[torch.Tensor, torch.Tensor]  # per-channel mean (C, 1), covariance (C, C)


class RunningMoments:
    """Mean and covariance, in float64, of (C, positions) feature parts added one by one:
    a picture's statistics from its tiles without keeping the tiles' features."""

    def __init__(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.outer: torch.Tensor | float = 0.0
        self.count = 0

    def add(self, part: torch.Tensor) -> None:
        part = part.double()
        self.total = self.total + part.sum(1, keepdim=True)
        self.outer = self.outer + part @ part.T
        self.count += part.shape[1]

    def result(self) -> Moments:
        mean = self.total / self.count
        return mean, (self.outer - self.count * mean @ mean.T) / max(self.count - 1, 1)


def moments(parts: Iterable[torch.Tensor]) -> Moments:
    """Mean and covariance of (C, positions) feature parts taken together."""
    running = RunningMoments()
    for part in parts:
        running.add(part)
    return running.result()


def wct_matrix(content: Moments, style: Moments, eps: float = 1e-5) -> torch.Tensor:
    """Whitening by the content's covariance, then colouring by the style's. Both are
    regularised by eps times their mean eigenvalue plus an absolute floor, so flat
    images (rank-deficient covariance) give no NaN."""
    return _cov_power(style[1], 0.5, eps) @ _cov_power(content[1], -0.5, eps)


def adain_matrix(content: Moments, style: Moments, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalization: each channel takes the style's spread."""
    c_std, s_std = content[1].diagonal().sqrt(), style[1].diagonal().sqrt()
    return torch.diag(s_std / (c_std + eps))


Affine = tuple[torch.Tensor, torch.Tensor]  # f -> A f + b on (C, positions) features


def affine_map(content: Moments, style: Moments, matrix: torch.Tensor, alpha: float) -> Affine:
    """The transform with its alpha mix, alpha·(M(f − μc) + μs) + (1 − alpha)·f, as one
    affine map (A, b), in float64. Maps blend linearly, so several styles make one map."""
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    return alpha * matrix + (1 - alpha) * eye, alpha * (style[0] - matrix @ content[0])


def apply_map(features: torch.Tensor, affine: Affine) -> torch.Tensor:
    """(1, C, H, W) features through an affine map, in one float32 matrix product (the
    identity map gives the features back exactly)."""
    mixing, shift = affine
    flat = features[0].flatten(1).float()
    out = torch.addmm(shift.float(), mixing.float(), flat)
    return out.reshape(features.shape[1:])[None].to(features.dtype)


def transform(
    features: torch.Tensor, content: Moments, style: Moments, matrix: torch.Tensor, alpha: float
) -> torch.Tensor:
    """(1, C, H, W) features moved to the style's statistics by `matrix`, then mixed with
    the originals by `alpha`."""
    return apply_map(features, affine_map(content, style, matrix, alpha))


def wct(
    content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Whitening and colouring transform of (1, C, H, W) features (Li et al. 2017)."""
    c, s = moments([content[0].flatten(1)]), moments([style[0].flatten(1)])
    return transform(content, c, s, wct_matrix(c, s, eps), alpha)


def adain(
    content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Adaptive instance normalization: the style's per-channel mean and std."""
    c, s = moments([content[0].flatten(1)]), moments([style[0].flatten(1)])
    return transform(content, c, s, adain_matrix(c, s, eps), alpha)


def _cov_power(cov: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    scale = cov.diagonal().mean().clamp_min(1e-12)
    cov = cov + (eps * scale + 1e-8) * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-12)
    return vectors @ torch.diag(values.pow(power)) @ vectors.T


MATRICES = {"wct": wct_matrix, "adain": adain_matrix}


def load_decoders(model: str | os.PathLike) -> tuple[Decoders, dict]:
    return load_network(model, "decoders", lambda a: Decoders(DecoderArchitecture.from_dict(a)))


class ArbitraryStylizer:
    """VGG-19 and the decoders, loaded once."""

    tile = TILE  # px: bigger pictures go through in tiles (set lower to save memory)

    def __init__(
        self,
        decoders: str | os.PathLike = "decoders",
        weights: VGGWeights | str | os.PathLike | None = None,
        device: str | torch.device = "auto",
    ):
        self.vgg = load_vgg(weights, device)
        self.device = self.vgg.scale.device
        self.decoders, self.metadata = load_decoders(decoders)
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

    def run(self, content: ImageSource, style: ImageSource | Sequence[ImageSource],
            **options) -> Image.Image:  # fmt: skip
        """Stylize `content` (options as for `paint`); the picture keeps the photo's EXIF
        and colour profile."""
        painted, photo = self.paint(content, style, **options)
        return carry_metadata(to_image(painted), photo)

    @torch.no_grad()
    def paint(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        *,
        style_weights: Sequence[float] | None = None,
        alpha: float = DEFAULT_ALPHA,
        method: str = "wct",
        levels: Sequence[int] | None = None,
        size: int | None = 512,
        style_size: int | None = None,
        preserve_color: bool = False,
        precision: str = "fp32",
    ) -> tuple[torch.Tensor, Image.Image]:
        """Stylize `content`; several styles blend their transformed features by weight.
        Returns the picture as floats in [0, 1], (1, 3, H, W) on the CPU, and the photo as
        loaded (its metadata for saving).

        precision="bf16" runs VGG and the decoders in bfloat16 (the transforms stay in
        float32/64): about twice as fast on CPUs with avx512_bf16 and on GPUs (on a CPU
        without bf16 kernels it runs fp32: see devices.usable_precision).
        """
        if precision not in PRECISIONS:
            raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}")
        if method not in METHODS:
            raise OptionError(f"method must be one of {', '.join(METHODS)}")
        if not 0.0 <= alpha <= 1.0:
            raise OptionError(f"alpha must be between 0 and 1, not {alpha}")
        have = self.decoders.arch.levels
        levels = list(levels or [lv for lv in DEFAULT_LEVELS if lv in have] or sorted(have)[::-1])
        for level in levels:
            self.decoders[level]  # noqa: B018 (a clear error for a missing decoder)
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        blend = blend_weights(style_weights, len(styles))
        picture = load_image(content)
        if size:
            picture = resize_longest(picture, size)
        photo = to_tensor(picture).to(self.device)
        side = style_size or max(photo.shape[-2:])
        paintings = [to_tensor(resize_longest(load_image(s), side)).to(self.device)
                     for s in styles]  # fmt: skip
        layers = [level_layer(level) for level in levels]
        bf16 = usable_precision(precision, self.device) == "bf16"

        def encode(image: torch.Tensor, names: list[str], switches=None) -> dict:
            with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
                return {k: v.float() for k, v in self.vgg(image, names, switches).items()}

        style_stats = [self._moments(p, layers, encode) for p in paintings]  # one pass each
        x = photo
        for level, layer in zip(levels, layers, strict=True):
            # Above `tile` px the picture goes through in overlapping tiles; the statistics
            # are always the whole picture's, so the tiles agree.
            whole = max(x.shape[-2:]) <= self.tile
            if whole:  # one encoder pass gives both the statistics and the features
                switches = self.decoders.switches()
                features = encode(x, [layer], switches)[layer]
                stats = moments([features[0].flatten(1)])
            else:
                stats = self._moments(x, [layer], encode)[layer]
            maps = [affine_map(stats, s[layer], MATRICES[method](stats, s[layer]), alpha)
                    for s in style_stats]  # fmt: skip
            blended = (sum(w * a for w, (a, _) in zip(blend, maps, strict=True)),
                       sum(w * b for w, (_, b) in zip(blend, maps, strict=True)))  # fmt: skip

            def decode(features, size, switches, level=level, blended=blended):
                """Features moved to the styles' statistics (blended), then decoded (at
                the photo's own pooling switches, for decoders that unpool)."""
                mixed = apply_map(features, blended)
                with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
                    return self.decoders[level](mixed, size, switches).float().clamp(0, 1)

            def paint(window, layer=layer, decode=decode):
                switches = self.decoders.switches()
                features = encode(window.to(self.device), [layer], switches)[layer]
                return decode(features, window.shape[-2:], switches)

            if whole:
                x = decode(features, x.shape[-2:], switches)
            else:
                x = blend_tiles(x.cpu(), self.tile, paint).to(self.device)
        if preserve_color:
            x = color.combine_luminance(x, photo)
        return x.float().cpu(), picture

    @torch.no_grad()
    def reconstruct(self, image: ImageSource, level: int, size: int | None = None) -> Image.Image:
        """Encode at relu{level}_1 and decode: what the decoder alone gives back."""
        picture = load_image(image)
        if size:
            picture = resize_longest(picture, size)
        x = to_tensor(picture).to(self.device)
        layer = level_layer(level)
        switches = self.decoders.switches()
        features = self.vgg(x, [layer], switches)[layer]
        return to_image(self.decoders[level](features, x.shape[-2:], switches))
