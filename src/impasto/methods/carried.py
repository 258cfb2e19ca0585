"""A video's network features, carried from frame to frame along the motion.

Before a frame is painted from them, the features (the one-pass network's painted
features, its decoder's input; the fast network's after its residual blocks) keep part
of the last frame's, warped along the video's flow (`methods.temporal.Motion`), so the
network paints its strokes where they were; the pictures are then blended too
(methods.temporal). Averaged over frames, features lose spread, and the picture would
lose the painting's texture with it: the blend is whitened and coloured back to the
frame's own features' statistics. The warp is bicubic, as the pictures' is: what is
carried is blended again at the next frame, and a bilinear warp's blur would compound.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..nets.vgg import layout
from .temporal import Motion
from .transforms import move_to_style

CUBIC = -0.75  # the bicubic kernel's a, as torch's grid_sample and OpenCV's remap use


def _cubic_weights(t: torch.Tensor) -> torch.Tensor:
    """The four taps' weights (..., 4) of a bicubic kernel at fractions t of a cell."""

    def near(x: torch.Tensor) -> torch.Tensor:
        return ((CUBIC + 2) * x - (CUBIC + 3)) * x * x + 1

    def far(x: torch.Tensor) -> torch.Tensor:
        return ((CUBIC * x - 5 * CUBIC) * x + 8 * CUBIC) * x - 4 * CUBIC

    return torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], -1)


def warp_bicubic(features: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) features resampled at (h, w) maps of positions in cells, bicubically,
    the borders repeated: what grid_sample(..., "bicubic", "border", align_corners=True)
    gives, in float32. On a CPU, as one sparse matrix of 16 taps a cell times the
    channels-last features: several times faster than grid_sample there."""
    _, c, h, w = features.shape
    if features.device.type != "cpu":
        grid = torch.stack([map_x * 2 / max(w - 1, 1) - 1, map_y * 2 / max(h - 1, 1) - 1], -1)
        return F.grid_sample(features.float(), grid[None], "bicubic", "border", align_corners=True)
    x0, y0 = map_x.floor(), map_y.floor()
    taps = torch.arange(-1, 3)
    cols = (x0.long()[..., None] + taps).clamp(0, w - 1)
    rows = (y0.long()[..., None] + taps).clamp(0, h - 1)
    index = (rows[..., :, None] * w + cols[..., None, :]).flatten()
    weight = _cubic_weights(map_y - y0)[..., :, None] * _cubic_weights(map_x - x0)[..., None, :]
    n = h * w
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.sparse_csr_tensor(
            torch.arange(0, 16 * n + 1, 16), index, weight.flatten(), (n, n), check_invariants=False
        )
    flat = features[0].permute(1, 2, 0).reshape(n, c).float()  # a view when channels-last
    return (matrix @ flat).reshape(h, w, c).permute(2, 0, 1)[None]


class Carried:
    """A video's features, carried from one frame to the next (the module's docstring)."""

    def __init__(self, motion: Motion):
        self.motion = motion
        self.last: torch.Tensor | None = None  # the last frame's features, as painted from

    def __call__(self, features: torch.Tensor, margin: int) -> torch.Tensor:
        """(1, C, h, w) features of a frame painted with `margin` px around it, carried."""
        found = None
        if self.last is not None and self.last.shape == features.shape:
            found = self.motion(features.shape[-2:], margin)
        if found is not None:
            map_x, map_y, keep = (torch.from_numpy(a).to(features.device) for a in found)
            blend = torch.lerp(features.float(), warp_bicubic(self.last, map_x, map_y), keep)
            # in the features' own layout: channels-last for torch's networks, plain for
            # onnxruntime's, which would otherwise pay for two copies
            blend = blend.to(features.dtype, memory_format=layout(features))
            features = move_to_style(blend, features, "wct")
        self.last = features
        return features
