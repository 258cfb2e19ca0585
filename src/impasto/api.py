"""The Python API: the same options, with the same names, as the CLI.

    import impasto
    image = impasto.stylize("photo.jpg", "painting.jpg", size=512)   # -> PIL.Image

For many runs, keep the network loaded:

    stylizer = impasto.Stylizer(device="cuda")
    for photo in photos:
        stylizer.run(photo, "painting.jpg", iterations=200).image.save(...)
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from .io.images import ImageSource
from .methods.optimize import Options, Progress, Result, Stylizer

__all__ = ["Options", "Progress", "Result", "Stylizer", "stylize"]

_cache: dict[tuple, Stylizer] = {}


def stylize(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    *,
    weights: str | None = None,
    device: str = "auto",
    progress: bool = False,
    **options,
) -> Image.Image:
    """Repaint `content` in the style of `style` by optimization; returns the picture.

    `options` are the fields of `Options` (size, iterations, content_weight, ...) and
    `callback`, called with a `Progress` after every iteration.
    """
    key = (weights, device)
    if key not in _cache:
        _cache.clear()  # one network at a time: VGG-19 is 80 MB
        _cache[key] = Stylizer(weights, device)
    return _cache[key].run(content, style, progress=progress, **options).image
