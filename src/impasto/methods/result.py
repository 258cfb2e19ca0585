"""What every method returns and reports: the contract, free of any array library.

Every method is an object that loads its networks once and paints with
`run(content, style(s), options) -> Result`, calling `callback(Progress)` as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class Progress:
    """What a callback receives: after each iteration of an iterative method (optimize,
    dream), once at the end of a one-pass one."""

    scale: int  # index into the ladder of scales (octaves)
    size: int  # that scale's longest side
    # Within this scale, from 1. Optimization with a content target may paint its coarsest
    # scale again (methods/balance.py): its iterations then count from 1 once more.
    iteration: int
    iterations: int
    losses: dict[str, float]
    image: Any  # a torch.Tensor: current output, RGB [0, 1], (1, 3, H, W); do not modify
    # The pixels being optimized, unclamped and not averaged, (1, 3, H, W): what the losses
    # are computed on (an iteration reports the loss of the pixels it started from, those
    # the last iteration left); do not modify
    pixels: Any  # a torch.Tensor


@dataclass
class Result:
    """A picture and how it was made."""

    image: Image.Image  # 8 bits, with the photo's EXIF and colour profile
    pixels: Any  # the picture as floats in [0, 1], (1, 3, H, W), on the CPU: a torch
    # tensor, or a numpy array from a backend without torch (methods.onnxrt)
    seconds: float
    device: str
    losses: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: the picture painted so far
    options: dict = field(default_factory=dict)


def one_pass_progress(out: Any) -> Progress:
    """The one report a one-pass method makes: its finished picture, (1, 3, H, W)."""
    return Progress(0, max(out.shape[-2:]), 1, 1, {}, out, out)


def as_list(style: object) -> list:
    """One style image, or several, as a list."""
    return list(style) if isinstance(style, (list, tuple)) else [style]
