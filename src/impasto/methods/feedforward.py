"""Feed-forward stylization: one pass of a trained transformation network.

    fast = FastStylizer("starry.safetensors")      # or a built-in model's name
    fast.run("photo.jpg", style="starry_night:0.7,udnie:0.3", size=1024).save("out.png")

Backends: torch (CPU or GPU, fp32 or bf16) or onnxruntime on the CPU.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .. import color
from ..devices import autocast, resolve_device, usable_precision
from ..errors import OptionError
from ..io.images import ImageSource, carry_metadata, load_image, resize_longest, to_image, to_tensor
from ..models import load_network
from ..nets.transformer import Architecture, TransformerNet
from .tiles import blend_tiles

BACKENDS = ("torch", "onnx")
TILE = 1536  # px: larger pictures are stylized in tiles
STATS_SIDE = 1024  # px: the whole picture's norm statistics are taken at this size
PRECISIONS = ("fp32", "bf16")
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
    """A loaded transformation network; `run` stylizes one image, `run_batch` many."""

    def __init__(
        self,
        model: str | os.PathLike,
        device: str | torch.device = "auto",
        backend: str = "torch",
        precision: str = "fp32",
    ):
        if backend not in BACKENDS:
            raise OptionError(f"backend must be one of {', '.join(BACKENDS)}")
        if precision not in PRECISIONS:
            raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}")
        self.net, self.metadata = load_transformer(model)
        self.styles = tuple(self.net.arch.styles)
        self.backend = backend
        self.device = torch.device("cpu") if backend == "onnx" else resolve_device(device)
        if backend == "torch":
            precision = usable_precision(precision, self.device)
        self.precision = precision
        self.net.to(self.device)
        self._session = _onnx_session(self.net) if backend == "onnx" else None
        self.tile = TILE

    def _tiled(self, image: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Stylize one big (1, 3, H, W) picture tile by tile, without seams.

        Norm statistics come from the whole picture seen at STATS_SIDE px; tiles overlap
        by tiles.OVERLAP px and are blended with linear ramps across the overlaps.
        """
        h, w = image.shape[-2:]
        scale = min(1.0, STATS_SIDE / max(h, w))
        small = F.interpolate(image, size=(max(16, round(h * scale)), max(16, round(w * scale))),
                              mode="area")  # fmt: skip
        self.net.fix_statistics(small.to(self.device), weights.to(self.device))
        try:
            return blend_tiles(image, self.tile, lambda window: self._forward(window, weights))
        finally:
            self.net.fix_statistics(None)

    @torch.no_grad()
    def run_batch(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> stylized, same shape, on the CPU, float32.

        Pictures larger than `tile` px on a side go through in overlapping tiles, so
        memory follows the tile, not the picture (torch backend).
        """
        if max(images.shape[-2:]) > self.tile and self._session is None:
            return torch.cat([self._tiled(image[None], weights) for image in images])
        return self._forward(images, weights)

    def _forward(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self._session is not None:
            feed = {"image": images.cpu().numpy(), "style_weights": weights.numpy()}
            return torch.from_numpy(self._session.run(None, feed)[0])
        images = images.to(self.device)
        with autocast(self.device, self.precision):
            out = self.net(images, weights.to(self.device))
        return out.float().cpu()

    def run(
        self,
        image: ImageSource,
        style: StyleSpec = None,
        *,
        size: int | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
    ) -> Image.Image:
        """Stylize one image; `size` scales its longest side first (None: as it is)."""
        picture = self.prepare(image, size)
        content = to_tensor(picture)
        out = self.run_batch(content, parse_style(style, self.styles))
        return carry_metadata(
            to_image(self.finish(out, content, strength, preserve_color)), picture
        )

    @staticmethod
    def prepare(image: ImageSource, size: int | None) -> Image.Image:
        picture = load_image(image)
        if size is not None:
            if size < 16:
                raise OptionError("size must be at least 16 px")
            picture = resize_longest(picture, size)
        return picture

    @staticmethod
    def finish(
        out: torch.Tensor, content: torch.Tensor, strength: float, preserve_color: bool
    ) -> torch.Tensor:
        """Apply colour preservation and strength (a blend with the photo)."""
        check_strength(strength)
        if preserve_color:
            out = color.combine_luminance(out, content)
        return (strength * out + (1 - strength) * content).clamp(0, 1)


def check_strength(strength: float) -> None:
    if not 0.0 <= strength <= 1.0:
        raise OptionError(f"strength must be between 0 and 1, not {strength}")


def _onnx_session(net: TransformerNet):
    try:
        import onnxruntime
    except ImportError:
        raise OptionError("--backend onnx needs onnxruntime: pip install 'impasto[onnx]'") from None
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
