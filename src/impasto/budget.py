"""Memory: what a picture needs, and a clear refusal, before any work, of one that cannot
fit whatever the tiles. The per-pixel figures are peak resident growth measured on runs
(docs/benchmarks.md, print resolution), rounded up."""

from __future__ import annotations

import os

from .errors import OptionError

# Optimization's memory per pixel of a tile: VGG-19 to relu5_1 forward and backward plus
# L-BFGS's history (2.2-2.5 KB at 256-768 px, fp32). DeepDream, untiled, needs as much
# per pixel of the whole picture.
BYTES_PER_TILE_PIXEL = 2800
# Per pixel of a whole optimized picture: the image, the photo, their float copies and
# blending; of a one-pass picture (tiled networks): the photo and picture as floats.
BYTES_PER_IMAGE_PIXEL = 72
BYTES_PER_VGG_PIXEL = 1000  # VGG-19 forward alone, no gradients (scores, feature maps)
BYTES_PER_ONE_PASS_PIXEL = 64
BASE_BYTES = 600 * 2**20  # the process with torch and VGG-19 loaded
MIN_TILE = 256


def available_memory() -> int | None:
    """Bytes of memory free for this process now (Linux and macOS), or None."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(size: tuple[int, int], per_pixel: int, what: str, fixed: int = 0) -> None:
    """Refuse a (width, height) picture that needs `per_pixel` bytes a pixel (and `fixed`
    more) when that is more memory than is free: one line that says how much."""
    width, height = size
    need = BASE_BYTES + fixed + per_pixel * width * height
    have = available_memory()
    if have is not None and need > have:
        raise OptionError(
            f"a {width}x{height} picture needs about {need / 2**30:.1f} GB for {what}, "
            f"more than the {have / 2**30:.1f} GB free: ask for a smaller size"
        )
