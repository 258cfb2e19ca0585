"""What every method shares: the result it returns, the progress it reports, and the last
touches a picture gets (the photo's colours kept, the style's strength).

Every method is an object that loads its networks once and paints with
`run(content, style(s), options) -> Result`, calling `callback(Progress)` as it goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from .. import color
from ..errors import OptionError


@dataclass
class Progress:
    """What a callback receives: after each iteration of an iterative method (optimize,
    dream), once at the end of a one-pass one."""

    scale: int  # index into the ladder of scales (octaves)
    size: int  # that scale's longest side
    iteration: int  # within this scale, from 1
    iterations: int
    losses: dict[str, float]
    image: torch.Tensor  # current output, RGB [0, 1], (1, 3, H, W); do not modify
    # The pixels being optimized, unclamped and not averaged, (1, 3, H, W): what the losses
    # are computed on (an iteration reports the loss of the pixels it started from, those
    # the last iteration left); do not modify
    pixels: torch.Tensor


@dataclass
class Result:
    """A picture and how it was made."""

    image: Image.Image  # 8 bits, with the photo's EXIF and colour profile
    pixels: torch.Tensor  # the picture as floats in [0, 1], (1, 3, H, W), on the CPU
    seconds: float
    device: str
    losses: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: the picture painted so far
    options: dict = field(default_factory=dict)


def finish(
    out: torch.Tensor, photo: torch.Tensor, strength: float, preserve_color: str | None
) -> torch.Tensor:
    """A one-pass picture's last touches: the photo's colours (luminance: its chroma under
    the picture's brightness; histogram: the picture's colours moved to the photo's mean
    and covariance), then a blend with the photo by `strength`."""
    if preserve_color == "luminance":
        out = color.combine_luminance(out, photo)
    elif preserve_color == "histogram":
        out = torch.cat(
            [color.match_color(o[None], p[None]) for o, p in zip(out, photo, strict=True)]
        )
    return (strength * out + (1 - strength) * photo).clamp(0, 1)


def blend_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Several styles' blend weights, summing to 1 (None: equal)."""
    if n == 0:
        raise OptionError("give at least one style image")
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise OptionError(f"{len(weights)} style weights for {n} style images")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise OptionError("style weights must be non-negative and not all zero")
    total = float(sum(weights))
    return [w / total for w in weights]


def one_pass_progress(out: torch.Tensor) -> Progress:
    """The one report a one-pass method makes: its finished picture."""
    return Progress(0, max(out.shape[-2:]), 1, 1, {}, out, out)


def as_list(style: object) -> list:
    """One style image, or several, as a list."""
    return list(style) if isinstance(style, (list, tuple)) else [style]
