"""Feed-forward stylization: one pass of a trained transformation network.

    fast = FastStylizer("starry.safetensors")      # or a built-in model's name
    fast.run("photo.jpg", "starry_night:0.7,udnie:0.3", size=1024).image.save("out.png")

Backends: torch (CPU or GPU, fp32 or bf16) or onnxruntime on the CPU.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F
from PIL import Image

from ..devices import autocast, resolve_device, usable_precision
from ..errors import ImpastoError, OptionError
from ..io.images import ImageSource, carry_metadata, load_image, resize_longest, to_image, to_tensor
from ..models import load_network
from ..nets.transformer import Architecture, TransformerNet
from ..options import BACKENDS, FastOptions, update
from .base import Progress, Result, finish, one_pass_progress
from .tiles import blend_tiles

STATS_SIDE = 1024  # px: the whole picture's norm statistics are taken at this size
StyleSpec = str | int | Sequence[float] | dict[str, float] | None


def load_transformer(model: str | os.PathLike) -> tuple[TransformerNet, dict]:
    """A model file (a training checkpoint will do) or built-in name -> (network, metadata)."""
    return load_network(model, "transformer", lambda a: TransformerNet(Architecture.from_dict(a)))


def parse_style(spec: StyleSpec, names: Sequence[str]) -> torch.Tensor:
    """A style mix -> weights over `names`, summing to 1.

    `spec` is None (the first style), an index or a name (a unique prefix will do),
    `"starry_night:0.6,udnie:0.4"` or `"0:0.6,3:0.4"`, a {name: weight} dict, or a
    list of one weight per style.
    """
    n = len(names)
    weights = torch.zeros(n)
    if spec is None:
        weights[0] = 1
    elif isinstance(spec, int):
        weights[_style_index(spec, names)] = 1
    elif isinstance(spec, str):
        for item in filter(None, (t.strip() for t in spec.split(","))):
            key, _, w = item.partition(":")
            try:
                weights[_style_index(key, names)] += float(w) if w else 1.0
            except ValueError:
                raise OptionError(f"bad style weight in {item!r}") from None
    elif isinstance(spec, dict):
        for key, w in spec.items():
            weights[_style_index(key, names)] += float(w)
    else:
        if len(spec) != n:
            raise OptionError(f"{len(spec)} style weights for a model with {n} styles")
        weights = torch.tensor([float(w) for w in spec])
    if not torch.isfinite(weights).all():
        raise OptionError("style weights must be finite numbers")
    if (weights < 0).any() or weights.sum() <= 0:
        raise OptionError("style weights must be non-negative and not all zero")
    return weights / weights.sum()


def _style_index(key: str | int, names: Sequence[str]) -> int:
    if isinstance(key, int) or key.isdigit():
        index = int(key)
        if not 0 <= index < len(names):
            raise OptionError(f"style index {index} out of range (the model has {len(names)})")
        return index
    if key in names:
        return list(names).index(key)
    matches = [i for i, name in enumerate(names) if name.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    raise OptionError(f"unknown style {key!r}; this model has: {', '.join(names)}")


class FastStylizer:
    """A loaded transformation network: `run` stylizes one image, `run_many` a list of
    them in batches, `run_batch` a tensor."""

    def __init__(
        self,
        model: str | os.PathLike = "styles",
        device: str | torch.device = "auto",
        backend: str = "torch",
    ):
        if backend not in BACKENDS:
            raise OptionError(f"backend must be one of {', '.join(BACKENDS)}")
        self.net, self.metadata = load_transformer(model)
        self.styles = tuple(self.net.arch.styles)
        self.backend = backend
        self.device = torch.device("cpu") if backend == "onnx" else resolve_device(device)
        self.net.to(self.device)
        self._session = _onnx_session(self.net) if backend == "onnx" else None

    def _tiled(self, image, weights, precision: str, tile: int) -> torch.Tensor:
        """Stylize one big (1, 3, H, W) picture tile by tile, without seams.

        Norm statistics come from the whole picture seen at STATS_SIDE px; tiles overlap
        by tiles.OVERLAP px and are blended with linear ramps across the overlaps.
        """
        h, w = image.shape[-2:]
        scale = min(1.0, STATS_SIDE / max(h, w))
        small = F.interpolate(
            image, size=(max(16, round(h * scale)), max(16, round(w * scale))), mode="area"
        )
        self.net.fix_statistics(small.to(self.device), weights.to(self.device))
        try:
            return blend_tiles(
                image, tile, lambda window: self._forward(window, weights, precision)
            )
        finally:
            self.net.fix_statistics(None)

    @torch.no_grad()
    def run_batch(
        self,
        images: torch.Tensor,
        weights: torch.Tensor,
        precision: str = "auto",
        tile: int = FastOptions.tile,
    ) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> stylized, same shape, on the CPU, float32.

        Pictures larger than `tile` px on a side go through in overlapping tiles, so
        memory follows the tile, not the picture (torch backend).
        """
        precision = usable_precision(precision, self.device)
        if max(images.shape[-2:]) > tile and self._session is None:
            return torch.cat([self._tiled(im[None], weights, precision, tile) for im in images])
        return self._forward(images, weights, precision)

    def _forward(self, images: torch.Tensor, weights: torch.Tensor, precision: str):
        if self._session is not None:
            feed = {"image": images.cpu().numpy(), "style_weights": weights.numpy()}
            return torch.from_numpy(self._session.run(None, feed)[0])
        images = images.to(self.device)
        with autocast(self.device, precision):
            out = self.net(images, weights.to(self.device))
        return out.float().cpu()

    def paint(self, content: torch.Tensor, weights: torch.Tensor, opts: FastOptions):
        """Photos (N, 3, H, W) in [0, 1] -> their pictures, with the photo's colours kept
        and the strength applied as `opts` say."""
        out = self.run_batch(content, weights, opts.precision, opts.tile)
        return finish(out, content, opts.strength, opts.preserve_color)

    def run(
        self,
        content: ImageSource,
        style: StyleSpec = None,
        options: FastOptions | None = None,
        *,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = False,
        **changes,
    ) -> Result:
        """Stylize one image in `style`, one of the network's styles or a blend of them
        ("udnie", 2, "udnie:0.7,candy:0.3"; default: its first): `options` with
        `changes`, the fields of FastOptions, on top."""
        (result,) = self.run_many([content], style, options, **changes)
        if isinstance(result, Exception):
            raise result
        if callback is not None:
            callback(one_pass_progress(result.pixels))
        return result

    def run_many(
        self,
        contents: Sequence[ImageSource],
        style: StyleSpec = None,
        options: FastOptions | None = None,
        *,
        batch: int = 1,
        load: Callable[[ImageSource], Image.Image] = load_image,
        **changes,
    ) -> Iterator[Result | ImpastoError]:
        """Stylize many images, `batch` at a time (images of one size share a forward
        pass); yields, in the order given, each one's Result, or the ImpastoError that
        kept it from being read (by `load`)."""
        opts = update(replace(options) if options else FastOptions(), changes, "fast")
        weights = parse_style(style, self.styles)
        for first in range(0, len(contents), batch):
            chunk: list[Result | ImpastoError | Image.Image] = []
            for content in contents[first : first + batch]:
                try:
                    chunk.append(resize_longest(load(content), opts.size))
                except ImpastoError as e:
                    chunk.append(e)
            by_size: dict[tuple, list[int]] = {}
            for i, picture in enumerate(chunk):
                if isinstance(picture, Image.Image):
                    by_size.setdefault(picture.size, []).append(i)
            for group in by_size.values():
                start = time.perf_counter()
                content = torch.cat([to_tensor(chunk[i]) for i in group])
                out = self.paint(content, weights, opts)
                seconds = (time.perf_counter() - start) / len(group)
                for j, i in enumerate(group):
                    image = carry_metadata(to_image(out[j]), chunk[i])
                    chunk[i] = Result(
                        image, out[j : j + 1], seconds, str(self.device), options=asdict(opts)
                    )
            yield from chunk


def _onnx_session(net: TransformerNet):
    try:
        import onnxruntime
    except ImportError:
        raise OptionError("backend onnx needs onnxruntime: pip install 'impasto[onnx]'") from None
    from ..nets.export import export_onnx

    buffer = io.BytesIO()
    export_onnx(net, buffer)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Idle threads that spin steal the cores from decoding, encoding and torch.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        buffer.getvalue(), options, providers=["CPUExecutionProvider"]
    )


__all__ = ["FastStylizer", "load_transformer", "parse_style"]
