"""Tiles for pictures larger than memory allows: where they start, how they blend, and
how big they may be for a memory budget. Used by the fast networks and by optimization.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ..budget import BASE_BYTES, BYTES_PER_IMAGE_PIXEL, BYTES_PER_TILE_PIXEL, MIN_TILE
from ..errors import OptionError

OVERLAP = 128  # px shared by neighbouring tiles
FEATURE_CONTEXT = 64  # px seen around a tile when a picture's feature statistics are summed


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Offsets of tiles of `tile` px every `step` px that cover `length` px exactly."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def blend_ramp(
    shape: tuple[int, int],
    vertical: tuple[bool, bool],
    horizontal: tuple[bool, bool],
    overlap: int = OVERLAP,
) -> torch.Tensor:
    """(1, H, W) blend weights of a tile: rising over `overlap` px from each side it
    shares with a neighbour (before, after), 1 elsewhere and never exactly 0."""

    def axis(n: int, before: bool, after: bool) -> torch.Tensor:
        ramp = torch.ones(n)
        edge = torch.linspace(0, 1, overlap + 2)[1:-1]
        k = min(overlap, n)
        if before:
            ramp[:k] = torch.minimum(ramp[:k], edge[:k])
        if after:
            ramp[-k:] = torch.minimum(ramp[-k:], edge.flip(0)[-k:])
        return ramp

    return (axis(shape[0], *vertical)[:, None] * axis(shape[1], *horizontal)[None, :])[None]


def blend_tiles(
    image: torch.Tensor, tile: int, paint: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """`paint` applied to a (1, 3, H, W) picture tile by tile: overlapping tiles of `tile`
    px, each painted alone and blended with linear ramps across the overlaps. Memory
    follows the tile; the result (on the CPU) has the picture's size."""
    if tile <= OVERLAP:  # no step forward: the first tiles would never be painted
        raise OptionError(f"tile must be more than {OVERLAP} px, the tiles' overlap")
    h, w = image.shape[-2:]
    out, total = torch.zeros(3, h, w), torch.zeros(1, h, w)
    step = tile - OVERLAP
    for y in tile_starts(h, tile, step):
        for x in tile_starts(w, tile, step):
            painted = paint(image[..., y : y + tile, x : x + tile])[0].float().cpu()
            ramp = blend_ramp(painted.shape[-2:], (y > 0, y + tile < h), (x > 0, x + tile < w))
            out[:, y : y + tile, x : x + tile] += painted * ramp
            total[:, y : y + tile, x : x + tile] += ramp
    return (out / total)[None]


def feature_tiles(
    image: torch.Tensor, tile: int, context: int, features: Callable[[torch.Tensor], dict]
) -> Iterator[dict[str, torch.Tensor]]:
    """For statistics of a whole picture from tiles: each tile is seen with `context` px
    around it, and of each layer `features(window)` returns only the tile's own part
    (C, positions), so the tiles' parts together are the whole picture's features."""
    h, w = image.shape[-2:]
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(0, y0 - context), max(0, x0 - context)
            yb, xb = min(h, y1 + context), min(w, x1 + context)
            own = {}
            for name, f in features(image[..., ya:yb, xa:xb]).items():
                fy, fx = (yb - ya) / f.shape[-2], (xb - xa) / f.shape[-1]  # its pooling
                part = f[
                    0,
                    :,
                    round((y0 - ya) / fy) : round((y1 - ya) / fy),
                    round((x0 - xa) / fx) : round((x1 - xa) / fx),
                ]
                own[name] = part.reshape(part.shape[0], -1)
            yield own


def optimization_tile(height: int, width: int, budget: int | None) -> int | None:
    """The side of the square tiles an optimization scale of height x width px should use
    to stay within `budget` bytes (None: no limit), or None if it fits whole."""
    if budget is None:
        return None
    room = budget - BASE_BYTES - BYTES_PER_IMAGE_PIXEL * height * width
    if BYTES_PER_TILE_PIXEL * height * width <= room:
        return None
    side = int((max(room, 0) / BYTES_PER_TILE_PIXEL) ** 0.5) // 32 * 32
    return max(side, MIN_TILE)


__all__ = [
    "FEATURE_CONTEXT",
    "OVERLAP",
    "blend_ramp",
    "blend_tiles",
    "feature_tiles",
    "optimization_tile",
    "tile_starts",
]
