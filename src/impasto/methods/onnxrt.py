"""The fast method on onnxruntime, without torch: the trained network as an ONNX graph
built from its weights (nets/graph.py), on the CPU. A command that runs it starts in a
fraction of the time torch takes to import; pictures go through whole, in fp32 (bigger
ones than the tile, or bf16, go to the torch backend). A video's frames under flow
consistency go through the graph's two halves, the network's features carried between
them (torch does that part).

    fast = OnnxStylizer("styles")
    fast.run("photo.jpg", "udnie:0.7,candy:0.3").image.save("out.png")
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImpastoError, OptionError
from ..io.atomic import atomic_write
from ..io.images import resize_longest, to_array
from ..io.modelfile import load_model
from ..models import resolve_model
from ..nets.architecture import Architecture
from ..nets.graph import OPSET, transformer_graph
from ..options import FastOptions
from ..runtime import cache_dir
from .blend import StyleSpec, style_mix
from .network import Network
from .temporal import Motion

# RGB -> YIQ, as color.py has it: the photo's chroma under the picture's brightness.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]], np.float64
)


GRAPH_VERSION = 2  # of nets/graph.py's graph: part of the cached graphs' names


def available() -> bool:
    """Whether onnxruntime and onnx are installed (the `onnx` extra), told without
    importing them."""
    return all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))


def cached(name: str, build: Callable[[], bytes]) -> bytes:
    """The ONNX graph called `name` from the cache (runtime.cache_dir) if it was built
    before, else `build()`'s, kept there for the next run: building needs the onnx
    package (and torch, for a one-pass network), whose import alone takes longer than a
    picture. Name a graph by its weights' checked SHA-256, so that it serves only them."""
    path = cache_dir() / f"{name}.onnx"
    if path.is_file():
        return path.read_bytes()
    graph = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            f.write(graph)
    except (OSError, ImpastoError):  # no cache to write: the next run builds it again
        pass
    return graph


def cached_session(name: str, build: Callable[[], bytes]):
    """A session of the graph `cached` gives; one the cache holds that onnxruntime cannot
    load (damaged on disk, or not a graph at all) is built again, and replaces it."""
    try:
        return session(cached(name, build))
    except Exception:  # onnxruntime's load errors derive from Exception alone
        path = cache_dir() / f"{name}.onnx"
        if not path.is_file():  # a graph just built that does not load: a real fault
            raise
        path.unlink(missing_ok=True)
        return session(cached(name, build))


def session(graph: bytes):
    """An onnxruntime session of `graph` on the CPU."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Idle threads that spin steal the cores from decoding, encoding and the rest.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxStylizer(Network):
    """A loaded transformation network on onnxruntime's CPU provider."""

    device = "cpu"

    def __init__(self, model: str | os.PathLike = "styles"):
        if not available():
            raise OptionError("backend onnx needs onnxruntime: pip install 'impasto[onnx]'")

        self.path = path = resolve_model(model)
        self._torch = None
        self._state, self.metadata = load_model(path, kind="transformer", arrays=True)
        self._arch = Architecture.from_dict(self.metadata["architecture"])
        self.styles = tuple(self._arch.styles)
        self.session = self._session("whole")
        self._halves: tuple | None = None  # the head and tail sessions, made for a video

    def _session(self, part: str):
        """An onnxruntime session of the graph's `part` (nets.graph) on the CPU."""
        name = f"transformer-{self.metadata['sha256'][:32]}-g{GRAPH_VERSION}-o{OPSET}"
        name += "" if part == "whole" else f"-{part}"
        return cached_session(name, lambda: transformer_graph(self._arch, self._state, part))

    def run_batch(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) RGB in [0, 1] -> stylized, same shape, float32."""
        feed = {"image": images.astype(np.float32), "style_weights": weights.astype(np.float32)}
        return self.session.run(None, feed)[0]

    def _torch_twin(self):
        """The same network on the torch backend (feedforward.FastStylizer), loaded once."""
        if self._torch is None:
            from .feedforward import FastStylizer

            self._torch = FastStylizer(self.path, "cpu")
        return self._torch

    @staticmethod
    def _torch_paints(opts: FastOptions, size: tuple[int, int]) -> bool:
        """Whether the torch backend paints a picture of `size` for this one: in bf16, or
        over the tile (it paints big pictures in tiles)."""
        return opts.precision == "bf16" or max(size) > opts.tile

    def painter(
        self, style: StyleSpec, options: FastOptions, motion: Motion | None = None
    ) -> Callable[[Image.Image], Any]:
        """Network.painter; with a video's `motion`, each frame goes through the graph in
        two halves, and the features after the residual blocks are carried between them
        from frame to frame along it (methods.carried.Carried, in torch), as the torch
        backend carries them. In bf16, or over `options.tile` px, frames go to the torch
        backend, as `paint_pictures` sends pictures."""
        if motion is None:
            return super().painter(style, options)
        import torch

        from .carried import Carried

        carried, twin = Carried(motion), None
        weights = {"style_weights": style_mix(style, self.styles).astype(np.float32)}

        def paint(picture: Image.Image) -> Any:
            nonlocal twin
            picture = resize_longest(picture, options.size)
            if self._torch_paints(options, picture.size):
                twin = twin or self._torch_twin().painter(style, options, motion)
                return twin(picture)
            if self._halves is None:
                self._halves = self._session("head"), self._session("tail")
            head, tail = self._halves
            content = to_array(picture)
            features, *sizes = head.run(None, {"image": content, **weights})
            features = carried(torch.from_numpy(features), margin=0).float().contiguous()
            feed = {"features": features.numpy(), "size0": sizes[0], "size1": sizes[1]}
            (out,) = tail.run(None, {**feed, **weights})
            return _finish(out, content, options)

        return paint

    def paint_pictures(self, pictures, weights, opts: FastOptions) -> list:
        """On onnxruntime; pictures over `opts.tile` px, or asked for in bf16, go to the
        torch backend, which paints big pictures in tiles."""
        if self._torch_paints(opts, pictures[0].size):
            return self._torch_twin().paint_pictures(pictures, weights, opts)
        content = np.concatenate([to_array(p) for p in pictures])
        out = _finish(self.run_batch(content, weights), content, opts)
        return [out[j : j + 1] for j in range(len(pictures))]


def _finish(out: np.ndarray, photo: np.ndarray, opts: FastOptions) -> np.ndarray:
    """The photo's colours kept as `opts` say, then the blend with the photo by strength:
    what methods.base.finish does in torch."""
    if opts.preserve_color == "luminance":
        out = keep_luminance(out, photo)
    elif opts.preserve_color == "histogram":
        out = np.stack([_match_color(o, p) for o, p in zip(out, photo, strict=True)])
    if opts.strength == 1:  # in [0, 1] already (the sigmoid's, or clipped above): as it is
        return out.astype(np.float32, copy=False)
    mixed = opts.strength * out + (1 - opts.strength) * photo
    return mixed.clip(0, 1).astype(np.float32)


def keep_luminance(picture: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) `picture`'s brightness with `photo`'s chroma (YIQ), as
    color.combine_luminance does in torch."""
    yiq = np.einsum("ij,njhw->nihw", _RGB_TO_YIQ, picture)
    yiq[:, 1:] = np.einsum("ij,njhw->nihw", _RGB_TO_YIQ[1:], photo)
    return np.einsum("ij,njhw->nihw", np.linalg.inv(_RGB_TO_YIQ), yiq).clip(0, 1)


def _match_color(source: np.ndarray, target: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """(3, H, W) `source` with its colours' mean and covariance moved to `target`'s."""

    def stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pixels = image.reshape(3, -1).astype(np.float64)
        mean = pixels.mean(1, keepdims=True)
        centred = pixels - mean
        return mean, centred @ centred.T / pixels.shape[1] + eps * np.eye(3)

    def power(cov: np.ndarray, p: float) -> np.ndarray:
        values, vectors = np.linalg.eigh(cov)
        return vectors @ np.diag(np.maximum(values, eps) ** p) @ vectors.T

    (mean_s, cov_s), (mean_t, cov_t) = stats(source), stats(target)
    mapped = power(cov_t, 0.5) @ power(cov_s, -0.5) @ (source.reshape(3, -1) - mean_s) + mean_t
    return mapped.reshape(source.shape).clip(0, 1)
