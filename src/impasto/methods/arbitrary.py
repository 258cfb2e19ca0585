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
from collections.abc import Sequence

import torch
from PIL import Image

from .. import color
from ..errors import OptionError
from ..io.images import ImageSource, carry_metadata, load_image, resize_longest, to_image, to_tensor
from ..io.modelfile import fit_weights, load_model
from ..models import resolve_model
from ..nets.decoders import DecoderArchitecture, Decoders, level_layer
from ..nets.vgg import load_vgg
from ..nets.weights import VGGWeights
from .optimize import PRECISIONS, blend_weights

METHODS = ("wct", "adain")
# relu5_1 adds little but blur with decoders trained briefly (the built-ins: 1200 CPU
# steps); pass levels=[5, 4, 3, 2, 1] for the paper's full pipeline.
DEFAULT_LEVELS = (4, 3, 2, 1)
DEFAULT_ALPHA = 0.6  # Li et al.'s usual setting: style with the photo still readable


def wct(
    content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Whitening and colouring transform of (1, C, H, W) features, in float64.

    Both covariances are regularised by eps times their mean eigenvalue plus an
    absolute floor, so flat images (rank-deficient covariance) give no NaN.
    """
    c = content[0].double().flatten(1)  # (C, HW)
    s = style[0].double().flatten(1)
    c_mean, s_mean = c.mean(1, keepdim=True), s.mean(1, keepdim=True)
    c, s = c - c_mean, s - s_mean
    whiten = _cov_power(c, -0.5, eps)
    colour = _cov_power(s, 0.5, eps)
    out = colour @ (whiten @ c) + s_mean
    out = out.reshape(content.shape[1:]).unsqueeze(0).to(content.dtype)
    return alpha * out + (1 - alpha) * content


def _cov_power(centred: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    n = max(centred.shape[1] - 1, 1)
    cov = centred @ centred.T / n
    scale = cov.diagonal().mean().clamp_min(1e-12)
    cov = cov + (eps * scale + 1e-8) * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-12)
    return vectors @ torch.diag(values.pow(power)) @ vectors.T


def adain(
    content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Adaptive instance normalization: the style's per-channel mean and std."""
    c_mean, c_std = content.mean((2, 3), keepdim=True), content.std((2, 3), keepdim=True)
    s_mean, s_std = style.mean((2, 3), keepdim=True), style.std((2, 3), keepdim=True)
    out = (content - c_mean) / (c_std + eps) * s_std + s_mean
    return alpha * out + (1 - alpha) * content


TRANSFORMS = {"wct": wct, "adain": adain}


def load_decoders(model: str | os.PathLike) -> tuple[Decoders, dict]:
    path = resolve_model(model)
    state, meta = load_model(path, kind="decoders")
    decoders = Decoders(DecoderArchitecture.from_dict(meta["architecture"]))
    fit_weights(decoders, state, str(path))
    return decoders.eval().requires_grad_(False), meta


class ArbitraryStylizer:
    """VGG-19 and the decoders, loaded once."""

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

    @torch.no_grad()
    def run(
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
    ) -> Image.Image:
        """Stylize `content`; several styles blend their transformed features by weight.

        precision="bf16" runs VGG and the decoders in bfloat16 (the transforms stay in
        float32/64): about twice as fast on CPUs with avx512_bf16 and on GPUs.
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
        style_feats = [self.vgg(p, layers) for p in paintings]  # every level in one pass each
        x = photo
        transform = TRANSFORMS[method]
        bf16 = precision == "bf16"
        for level, layer in zip(levels, layers, strict=True):
            with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
                features = self.vgg(x, [layer])[layer].float()
            mixed = sum(w * transform(features, f[layer].float(), alpha)
                        for w, f in zip(blend, style_feats, strict=True))  # fmt: skip
            with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
                x = self.decoders[level](mixed, size=x.shape[-2:]).float().clamp(0, 1)
        if preserve_color:
            x = color.combine_luminance(x, photo)
        return carry_metadata(to_image(x), picture)

    @torch.no_grad()
    def reconstruct(self, image: ImageSource, level: int, size: int | None = None) -> Image.Image:
        """Encode at relu{level}_1 and decode: what the decoder alone gives back."""
        picture = load_image(image)
        if size:
            picture = resize_longest(picture, size)
        x = to_tensor(picture).to(self.device)
        layer = level_layer(level)
        return to_image(self.decoders[level](self.vgg(x, [layer])[layer], x.shape[-2:]))
