"""The Python API: the methods, found by name, with the same options as the CLI.

    import impasto
    image = impasto.stylize("photo.jpg", "painting.jpg", size=512)   # -> PIL.Image
    image = impasto.fast("photo.jpg", "udnie:0.7,candy:0.3")          # built-in styles
    image = impasto.arbitrary("photo.jpg", "painting.jpg", strength=0.8)
    image = impasto.dream("photo.jpg", layers={"relu4_2": 1.0}, octaves=4)
    impasto.video("clip.mp4", "clip.candy.mp4", "candy")              # or a painting:
    impasto.video("clip.mp4", "clip.starry.mp4", "starry.jpg", method="arbitrary")
    impasto.stylize_video("clip.mp4", "out.mp4", "starry.jpg", size=256)  # by optimization

Keywords are the fields of the method's options (impasto.options: OptimizeOptions,
FastOptions, ArbitraryOptions, DreamOptions) and of `Setup` (device, weights, model,
decoders, backend: what the method loads). This module is the one place that loads and
keeps methods: `load("fast", model="styles")` gives the loaded object, whose
`run(content, style, options) -> Result` paints a picture with its timings and details.

    stylizer = impasto.load("optimize", device="cuda")
    for photo in photos:
        stylizer.run(photo, "painting.jpg", iterations=200).image.save(...)

Training: `impasto.train(impasto.TrainOptions(styles=[...], data="photos/", output=...))`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from . import runtime
from .errors import OptionError
from .io.images import ImageSource
from .methods.result import Progress, Result  # noqa: F401 (impasto.Progress)
from .options import METHODS, SETUP, FrameOptions, Media, Setup, update

if TYPE_CHECKING:
    from .methods.temporal import FlowConsistency

# The methods' classes load on first use: torch is imported only by a method that needs
# it, so a command on the onnxruntime backend starts without it.
CLASSES = {
    "Stylizer": "methods.optimize",
    "FastStylizer": "methods.feedforward",
    "OnnxStylizer": "methods.onnxrt",
    "OnnxPainter": "methods.onnx_painter",
    "ArbitraryStylizer": "methods.arbitrary",
    "Dreamer": "methods.dream",
    "Evaluator": "evaluate",
    "TrainOptions": "training.options",
    "train": "training.train",
}
Method = Any  # one of the classes above: each has run(content, style, options) -> Result


def __getattr__(name: str):
    if name in CLASSES:
        return getattr(import_module(f".{CLASSES[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fast(s: Setup) -> Method:
    """The fast method's backend: `auto` is onnxruntime (no torch to import) where it is
    installed and no CUDA GPU is there to use, else torch."""
    backend = s.backend
    if backend == "auto":
        cpu = s.device == "cpu" or (s.device == "auto" and not runtime.cuda_device_present())
        backend = (
            "onnx" if cpu and import_module(".methods.onnxrt", __package__).available() else "torch"
        )
    if backend == "onnx":
        if s.device not in ("auto", "cpu"):
            raise OptionError(f"backend onnx runs on the CPU, not on device {s.device}")
        return __getattr__("OnnxStylizer")(s.model)
    return __getattr__("FastStylizer")(s.model, s.device)


def _arbitrary(s: Setup) -> Method:
    """The one-pass method's backend: `auto` is torch, which keeps a painting's statistics
    from picture to picture (the command line asks for onnx when it paints one picture:
    `one_picture_backend`)."""
    if s.backend == "onnx":
        if s.device not in ("auto", "cpu"):
            raise OptionError(f"backend onnx runs on the CPU, not on device {s.device}")
        if s.weights is not None:
            raise OptionError("backend onnx paints with a network's own encoder: no --weights")
        return __getattr__("OnnxPainter")(s.decoders)
    return __getattr__("ArbitraryStylizer")(s.decoders, s.weights, s.device)


def one_picture_backend(setup: dict[str, Any]) -> str:
    """The one-pass method's `auto` backend for a process that paints one picture: onnx
    where onnxruntime is installed, no CUDA GPU is there to use and the network paints in
    one graph (`onnx_painter.paints_in_one_graph`): no torch to import, which takes
    longer than the picture (docs/benchmarks.md); else torch."""
    device = setup.get("device", "auto")
    cpu = device == "cpu" or (device == "auto" and not runtime.cuda_device_present())
    onnx = import_module(".methods.onnx_painter", __package__)
    if not cpu or setup.get("weights") is not None or not onnx.available():
        return "torch"
    from .io.modelfile import load_model
    from .models import resolve_model

    _, meta = load_model(resolve_model(setup.get("decoders", "painter")), arrays=True)
    return "onnx" if onnx.paints_in_one_graph(meta.get("architecture", {})) else "torch"


def _moving_backend(device: str, precision: str) -> str:
    """The fast method's `auto` backend for moving pictures: torch where it paints in bf16
    on a CPU with bf16 kernels, whose bfloat16 copy of the network paints frame after
    frame faster than onnxruntime's fp32 graph (docs/benchmarks.md), and torch's import
    is paid once for the whole clip; elsewhere `auto` as for a picture."""
    if device not in ("auto", "cpu"):
        return "auto"
    import torch

    from .devices import usable_precision

    return "torch" if usable_precision(precision, torch.device("cpu")) == "bf16" else "auto"


LOADERS = {
    "optimize": lambda s: __getattr__("Stylizer")(s.weights, s.device),
    "fast": _fast,
    "arbitrary": _arbitrary,
    "dream": lambda s: __getattr__("Dreamer")(s.weights, s.device),
}


class Loader:
    """Loads methods and keeps the last `keep` of them loaded (VGG-19 alone is 80 MB):
    the one place where a method's networks are found and loaded."""

    def __init__(self, keep: int = 1):
        self.keep = keep
        self.loaded: dict[tuple, Method] = {}

    def __call__(self, method: str, **setup: Any) -> Method:
        """Method `method` ("optimize", "fast", "arbitrary", "dream") loaded with `setup`
        (the Setup fields it takes), or the one already loaded so."""
        if method not in LOADERS:
            raise OptionError(f"unknown method {method!r}; one of {', '.join(LOADERS)}")
        allowed = SETUP[method]
        wrong = set(setup) - set(allowed)
        if wrong:
            raise OptionError(
                f"{method} loads with {', '.join(allowed)}, not {', '.join(sorted(wrong))}"
            )
        chosen = update(Setup(), setup, "setup")
        key = (method, *(getattr(chosen, name) for name in allowed))
        if key not in self.loaded:
            while len(self.loaded) >= self.keep:
                self.loaded.pop(next(iter(self.loaded)))
            self.loaded[key] = LOADERS[method](chosen)
        return self.loaded[key]


load = Loader()  # the process's: load("fast", model="styles") -> a FastStylizer


def split(method: str, keywords: dict[str, Any]) -> tuple[dict, dict]:
    """Keywords -> (setup, options): those that load the method, the rest."""
    setup = {k: v for k, v in keywords.items() if k in SETUP[method]}
    return setup, {k: v for k, v in keywords.items() if k not in setup}


def run(
    method: str,
    content: ImageSource,
    style: Any = None,
    *,
    loader: Loader = load,
    **keywords: Any,
) -> Result:
    """Paint `content` with `method`; keywords are its setup and options (and `callback`,
    `progress`; `preset` for optimize)."""
    setup, options = split(method, keywords)
    loaded = loader(method, **setup)
    if method == "dream":
        return loaded.run(content, **options)
    return loaded.run(content, style, **options)


def stylize(
    content: ImageSource, style: ImageSource | Sequence[ImageSource], **keywords: Any
) -> Image.Image:
    """Repaint `content` like `style` by optimization (one image, or several to blend);
    keywords: OptimizeOptions' and Setup's (device, weights), `preset`, `callback`."""
    return run("optimize", content, style, **keywords).image


def fast(content: ImageSource, style: Any = None, **keywords: Any) -> Image.Image:
    """Stylize `content` with a trained network (default: the built-in `styles`) in one
    of its styles or a blend ("udnie:0.7,candy:0.3"); keywords: FastOptions' and
    Setup's (device, model, backend)."""
    return run("fast", content, style, **keywords).image


def arbitrary(
    content: ImageSource, style: ImageSource | Sequence[ImageSource], **keywords: Any
) -> Image.Image:
    """Stylize `content` like any painting in one pass; keywords: ArbitraryOptions' and
    Setup's (device, decoders, weights)."""
    return run("arbitrary", content, style, **keywords).image


def dream(image: ImageSource, **keywords: Any) -> Image.Image:
    """DeepDream: amplify what the chosen layers see in `image`; keywords: DreamOptions'
    and Setup's (device, weights)."""
    return run("dream", image, **keywords).image


# The methods that paint moving pictures: one pass a frame.
MOVING = ("fast", "arbitrary")
MEDIA = ("consistency", "consistency_strength", "smooth")  # Media's options for a video


def painter(
    method: str,
    style: Any = None,
    *,
    loader: Loader = load,
    steady: FlowConsistency | None = None,
    **keywords: Any,
) -> Callable[[Image.Image], np.ndarray]:
    """Paint picture after picture (a video's frames, a camera's) with `method`, "fast"
    (`style`: the network's style or blend) or "arbitrary" (`style`: paintings): a function
    from a picture to its painting, an (h, w, 3) float array in 0-255. The style is read,
    and its statistics found, once. `steady`: the frames' flow consistency, which is also
    applied to the network's features (methods.carried.Carried). Keywords: the
    method's options and setup."""
    from .io.images import pixels_array

    if method not in MOVING:
        raise OptionError(f"moving pictures are painted by {' or '.join(MOVING)}, not {method}")
    setup, changes = split(method, keywords)
    options = update(METHODS[method](), changes, method)
    if method == "fast" and setup.get("backend", "auto") == "auto":
        setup["backend"] = _moving_backend(setup.get("device", "auto"), options.precision)
    loaded = loader(method, **setup)
    draw = loaded.painter(style, options, steady.motion if steady else None)

    def paint(picture: Image.Image) -> np.ndarray:
        planes = pixels_array(draw(picture))[0] * 255
        # stacked pixel by pixel, not a transposed view: what flow consistency and the
        # encoder work on, and ~7x faster to make here than a copy of that view
        return np.stack(list(planes), axis=-1)

    return paint


def video(
    source: str | os.PathLike | bytes,
    output: str | os.PathLike,
    style: Any = None,
    *,
    method: str = "fast",
    progress: bool = False,
    on_frame: Callable[[int, int | None, np.ndarray], None] | None = None,
    loader: Loader = load,
    **keywords: Any,
) -> int:
    """Paint every frame of video `source` (a file, or its bytes) into `output` (.mp4,
    .mkv, .mov, .webm, .avi), keeping frame rate, timestamps and audio; returns the frame
    count. `method` and `style` as for `painter`; keywords: Media's (consistency,
    consistency_strength, smooth), the method's options and setup. `on_frame(done,
    total, frame)` hears of each frame (what it raises stops the video, and nothing is
    written); Ctrl-C writes the frames so far and raises errors.VideoInterrupted."""
    from .io.video import stylize_video
    from .methods.temporal import consistency

    media = update(Media(), {k: keywords.pop(k) for k in MEDIA if k in keywords}, "video")
    steady = consistency(media)
    paint = painter(method, style, loader=loader, steady=steady, **keywords)

    def transform(frame: np.ndarray) -> np.ndarray:
        return paint(Image.fromarray(frame))

    return stylize_video(
        source,
        output,
        transform if steady is None else steady.steadied(transform),
        smooth=media.smooth,
        progress=progress,
        on_frame=on_frame,
    )


def stylize_video(
    source: str | os.PathLike | bytes,
    output: str | os.PathLike,
    style: ImageSource | Sequence[ImageSource],
    *,
    preset: str | None = None,
    progress: bool = False,
    on_frame: Callable[[int, int | None, np.ndarray], None] | None = None,
    loader: Loader = load,
    **keywords: Any,
) -> int:
    """A video by optimization (Ruder et al. 2016; methods.video): every frame of `source`
    painted like `style` into `output`, each from the last one's painting carried along
    the motion; returns the frame count. Keywords: FrameOptions' (temporal_weight,
    frame_iterations, frames: the folder where finished frames wait, and a stopped run
    resumes; default OUTPUT.frames), OptimizeOptions' and Setup's (device, weights).
    Ctrl-C writes the frames so far and raises errors.VideoInterrupted; the same call
    again goes on from there."""
    from dataclasses import fields

    from .io.video import check_video_output
    from .io.video import stylize_video as paint_frames
    from .methods.presets import resolve
    from .methods.video import OptimizedFrames

    own = {f.name for f in fields(FrameOptions)}
    frames = update(FrameOptions(), {k: keywords.pop(k) for k in own & set(keywords)}, "video")
    setup, changes = split("optimize", keywords)
    options = resolve(None, preset, changes)
    check_video_output(source, output)
    folder = frames.frames or f"{output}.frames"
    painter = OptimizedFrames(loader("optimize", **setup), style, options, frames, folder)
    count = paint_frames(source, output, painter, progress=progress, on_frame=on_frame)
    painter.finished()
    return count
