"""The Python API: the same options, with the same names, as the CLI.

    import impasto
    image = impasto.stylize("photo.jpg", "painting.jpg", size=512)   # -> PIL.Image

For many runs, keep the network loaded:

    stylizer = impasto.Stylizer(device="cuda")
    for photo in photos:
        stylizer.run(photo, "painting.jpg", iterations=200).image.save(...)

Feed-forward networks (`impasto fast`, `impasto train`, `impasto export`):

    image = impasto.fast("photo.jpg", "styles.safetensors", style="udnie:0.7,candy:0.3")
    impasto.train(impasto.TrainOptions(styles=["a.jpg"], data="photos/", output="a.safetensors"))

Any style in one pass (`impasto arbitrary`), and DeepDream (`impasto dream`):

    image = impasto.arbitrary("photo.jpg", "painting.jpg", alpha=0.8)
    image = impasto.dream("photo.jpg", layers={"relu4_2": 1.0}, octaves=4)
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from .evaluate import Evaluator
from .io.images import ImageSource
from .methods.arbitrary import DEFAULT_DECODERS, ArbitraryStylizer
from .methods.dream import Dreamer, DreamOptions
from .methods.feedforward import FastStylizer, StyleSpec
from .methods.optimize import Options, Progress, Result, Stylizer
from .training.train import TrainOptions, train

__all__ = ["ArbitraryStylizer", "DreamOptions", "Dreamer", "Evaluator", "FastStylizer",
           "Options", "Progress", "Result", "Stylizer", "TrainOptions", "arbitrary", "dream",
           "fast", "stylize", "train"]  # fmt: skip

_cache: dict[tuple, Stylizer | FastStylizer | ArbitraryStylizer | Dreamer] = {}


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

    `options` are the fields of `Options` (size, iterations, content_weight, ...),
    `preset` ("balanced", "more-style", "more-photo", "classic"; given options override
    it) and `callback`, called with a `Progress` after every iteration.
    """
    key = ("optimize", weights, device)
    if key not in _cache:
        _cache.clear()  # one network at a time: VGG-19 is 80 MB
        _cache[key] = Stylizer(weights, device)
    return _cache[key].run(content, style, progress=progress, **options).image


def fast(
    content: ImageSource,
    model: str,
    style: StyleSpec = None,
    *,
    size: int | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    device: str = "auto",
    backend: str = "torch",
    precision: str = "fp32",
) -> Image.Image:
    """Stylize `content` with a trained network (a built-in name or a model file)."""
    key = ("fast", model, device, backend, precision)
    if key not in _cache:
        _cache.clear()
        _cache[key] = FastStylizer(model, device, backend, precision)
    return _cache[key].run(
        content, style, size=size, strength=strength, preserve_color=preserve_color
    )


def arbitrary(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    *,
    decoders: str = DEFAULT_DECODERS,
    weights: str | None = None,
    device: str = "auto",
    **options,
) -> Image.Image:
    """Stylize `content` in one pass with any style (universal style transfer); `options`
    as for `ArbitraryStylizer.paint` (alpha, method, levels, size, style_weights, ...)."""
    key = ("arbitrary", decoders, weights, device)
    if key not in _cache:
        _cache.clear()
        _cache[key] = ArbitraryStylizer(decoders, weights, device)
    return _cache[key].run(content, style, **options)


def dream(
    image: ImageSource,
    *,
    weights: str | None = None,
    device: str = "auto",
    progress: bool = False,
    **options,
) -> Image.Image:
    """DeepDream: amplify what the chosen layers see in `image`; `options` are the
    fields of `DreamOptions` (layers, octaves, iterations, step_size, guide, seed, ...)."""
    key = ("dream", weights, device)
    if key not in _cache:
        _cache.clear()
        _cache[key] = Dreamer(weights, device)
    return _cache[key].run(image, progress=progress, **options).image
