"""The last touches a one-pass picture gets (the photo's colours kept, the style's
strength), in torch."""

from __future__ import annotations

import torch

from .. import color


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
