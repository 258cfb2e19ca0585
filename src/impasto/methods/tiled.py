"""Optimization in tiles, for scales too big for memory: each overlapping tile is pulled
toward its own region of the photo and the whole painting's statistics, and blended back
without seams. Memory follows the tile, not the picture."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from ..losses import Moments
from ..options import OptimizeOptions
from .schedule import Optimizer
from .tiles import FEATURE_CONTEXT, OVERLAP, blend_ramp, feature_tiles, tile_starts

TILE_VISIT = 25  # iterations on one tile before moving to the next


def tile_grid(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    """The top-left corners of the overlapping tiles that cover `shape`."""
    step = tile - OVERLAP
    return [
        (y, x) for y in tile_starts(shape[0], tile, step) for x in tile_starts(shape[1], tile, step)
    ]


def tiled_moments(
    image: torch.Tensor, layers: list[str], tile: int, features: Callable
) -> dict[str, Moments]:
    """Moments of a whole image's features, from sums over its tiles' own features;
    `features(window, layers)` computes a window's."""
    sums: dict[str, torch.Tensor] = {}
    squares: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(layers, 0)
    for own in feature_tiles(image, tile, FEATURE_CONTEXT, lambda w: features(w, layers)):
        for name, flat in own.items():
            flat = flat.float()
            sums[name] = sums.get(name, 0) + flat.sum(1)
            squares[name] = squares.get(name, 0) + flat @ flat.T
            counts[name] += flat.shape[1]
    return {n: Moments(sums[n] / counts[n], squares[n] / counts[n]) for n in layers}


def tiled_scale(
    stylizer, x, content_t, seen, style, n_iter, tile, opts: OptimizeOptions, report
) -> None:
    """Optimize `x` in place tile by tile: each visit runs up to TILE_VISIT iterations
    on one overlapping tile (its own content, the whole style's statistics) and blends it
    back with ramps over the overlaps; visits sweep the tiles until each tile has had
    `n_iter` iterations. `seen` is the photo as the content loss sees it."""
    h, w = x.shape[-2:]
    grid = tile_grid((h, w), tile)
    done = 0
    for first in range(0, n_iter, TILE_VISIT):
        k = min(TILE_VISIT, n_iter - first)
        for number, (y, x0) in enumerate(grid, 1):
            region = (..., slice(y, y + tile), slice(x0, x0 + tile))
            window = x[region].clone().requires_grad_(True)
            with torch.no_grad():
                content = stylizer.content_features(seen[region], opts)
            target = {"content": content, "style": style}
            step = Optimizer(window, opts)
            for _ in range(k):
                losses = step(partial(stylizer.loss, window, target, opts))
            ramp = blend_ramp(window.shape[-2:], (y > 0, y + tile < h), (x0 > 0, x0 + tile < w)).to(
                x.device
            )
            with torch.no_grad():
                x[region] = x[region] * (1 - ramp) + window.detach().clamp(0, 1) * ramp
            done += k
            where = f"tile {number}/{len(grid)} ({tile}px)"
            report(done, n_iter * len(grid), losses, x, content_t, count=k, where=where)
