"""The one-pass network that paints, on onnxruntime, without torch: its ONNX graph
(nets/painter_graph.py, what `impasto export` writes) paints a picture in one run.

A command that paints one picture so starts in a fraction of the time torch takes to
import (docs/benchmarks.md). The graph is built with torch once per model and machine,
then found in the cache (methods.onnxrt.cached_session). It paints what it was built for: one
painting, the network's own transform at its own level, a picture of up to the tile's
size, fp32, the photo's colours kept by luminance or not at all. Anything else (several
paintings blended, another transform or levels, bigger pictures, bf16, colours matched
by histogram, a video's frames, which carry features from frame to frame) goes to the
torch backend, loaded then, as the fast method's onnx backend hands it big pictures.

    painter = OnnxPainter("painter")
    painter.run("photo.jpg", "painting.jpg", strength=0.8).image.save("out.png")
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

import numpy as np
from PIL import Image

from ..errors import OptionError
from ..io.images import (
    ImageSource,
    carry_metadata,
    load_image,
    resize_longest,
    scaled_size,
    to_array,
    to_image,
)
from ..io.modelfile import load_model
from ..models import resolve_model
from ..nets.graph import OPSET
from ..options import ArbitraryOptions, update
from .onnxrt import available, cached_session, keep_luminance
from .result import Progress, Result, as_list, one_pass_progress
from .temporal import Motion

GRAPH_VERSION = 1  # of nets/painter_graph.py's graph: part of the cached graphs' names
TILE = 1024  # px: methods.arbitrary.TILE, past which torch paints in tiles


def paints_in_one_graph(architecture: dict) -> bool:
    """Whether decoders (a model file's architecture) paint in one graph: trained to paint,
    at one level, upsampling by nearest neighbours."""
    levels = architecture.get("levels", ())
    return bool(architecture.get("paints")) and len(levels) == 1 and not architecture.get("unpool")


class OnnxPainter:
    """A network trained to paint (`painter`, `impasto train-arbitrary`) on onnxruntime's
    CPU provider: `ArbitraryStylizer`'s run and painter, for what its graph paints."""

    device = "cpu"

    def __init__(self, decoders: str | os.PathLike = "painter"):
        if not available():
            raise OptionError("backend onnx needs onnxruntime: pip install 'impasto[onnx]'")
        self.path = resolve_model(decoders)
        _, self.metadata = load_model(self.path, kind="decoders", arrays=True)
        if not paints_in_one_graph(self.metadata["architecture"]):
            raise OptionError(
                f"{decoders}: backend onnx paints with a network trained to paint (such as "
                "painter); decoders that reconstruct go level by level on torch"
            )
        self._torch = None
        name = f"painter-{self.metadata['sha256'][:32]}-g{GRAPH_VERSION}-o{OPSET}"
        self.session = cached_session(name, self._graph)

    def _graph(self) -> bytes:
        """The graph, built from the torch backend's networks (once: then it is cached)."""
        from ..nets.painter_graph import painter_graph

        twin = self._torch_twin()
        level = twin.decoders.arch.levels[0]
        return painter_graph(twin.encoder, twin.decoders[level], twin.decoders.arch.method)

    def _torch_twin(self):
        """The same network on the torch backend (arbitrary.ArbitraryStylizer), loaded once."""
        if self._torch is None:
            from .arbitrary import ArbitraryStylizer

            self._torch = ArbitraryStylizer(self.path, device="cpu")
        return self._torch

    def paints(self, opts: ArbitraryOptions, paintings: int, size: tuple[int, int]) -> bool:
        """Whether the graph paints a picture of `size` like `paintings` paintings, as
        `opts` ask: else the torch backend does."""
        arch = self.metadata["architecture"]
        return (
            paintings == 1
            and opts.style_weights is None
            and opts.method in (None, arch["method"])
            and (opts.levels is None or list(opts.levels) == list(arch["levels"]))
            and max(size) <= TILE
            and opts.precision != "bf16"
            and opts.preserve_color in (None, "luminance")
        )

    def run(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        options: ArbitraryOptions | None = None,
        *,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = False,
        **changes,
    ) -> Result:
        """`ArbitraryStylizer.run`, on onnxruntime where the graph paints it."""
        opts = update(replace(options) if options else ArbitraryOptions(), changes, "arbitrary")
        start = time.perf_counter()
        picture, paintings = load_image(content), as_list(style)
        size = scaled_size(picture.size, opts.size)
        if not self.paints(opts, len(paintings), size):
            return self._torch_twin().run(picture, style, opts, callback=callback)
        photo = to_array(resize_longest(picture, opts.size))
        side = max(16, round(opts.style_scale * max(size)))
        painting = to_array(resize_longest(load_image(paintings[0]), side))
        strength = np.array(opts.strength, np.float32)
        feed = {"image": photo, "painting": painting, "strength": strength}
        (pixels,) = self.session.run(None, feed)
        if opts.preserve_color == "luminance":
            pixels = keep_luminance(pixels, photo).astype(np.float32)
        if callback is not None:
            callback(one_pass_progress(pixels))
        return Result(
            carry_metadata(to_image(pixels), picture),
            pixels,
            time.perf_counter() - start,
            self.device,
            options=asdict(opts),
        )

    def painter(
        self,
        style: ImageSource | Sequence[ImageSource],
        options: ArbitraryOptions | None = None,
        motion: Motion | None = None,
    ) -> Callable[[Image.Image], object]:
        """`ArbitraryStylizer.painter`: picture after picture, which the torch backend
        paints faster, keeping the paintings' statistics from one to the next."""
        return self._torch_twin().painter(style, options, motion)
