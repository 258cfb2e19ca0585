"""Feed-forward stylization: one pass of a trained transformation network.

    fast = FastStylizer("starry.safetensors")      # or a built-in model's name
    fast.run("photo.jpg", "starry_night:0.7,udnie:0.3", size=1024).image.save("out.png")

This is the torch backend (CPU or GPU, fp32 or bf16, big pictures in tiles);
methods/onnxrt.py runs the same network on onnxruntime, without torch.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..devices import autocast, resolve_device, usable_precision
from ..io.images import resize_longest, to_tensor
from ..models import load_network
from ..nets.transformer import Architecture, TransformerNet
from ..options import FastOptions
from .base import finish
from .blend import StyleSpec, style_mix
from .carried import Carried
from .network import Network
from .temporal import Motion
from .tiles import blend_tiles

STATS_SIDE = 1024  # px: the whole picture's norm statistics are taken at this size


def load_transformer(model: str | os.PathLike) -> tuple[TransformerNet, dict]:
    """A model file (a training checkpoint will do) or built-in name -> (network, metadata)."""
    return load_network(model, "transformer", lambda a: TransformerNet(Architecture.from_dict(a)))


def parse_style(spec: StyleSpec, names: Sequence[str]) -> torch.Tensor:
    """A mix of the network's styles as a tensor of weights (see blend.style_mix)."""
    return torch.from_numpy(style_mix(spec, names))


class FastStylizer(Network):
    """A loaded transformation network on torch (CPU or GPU, fp32 or bf16): `run`
    stylizes one image, `run_many` a list of them in batches, `run_batch` a tensor."""

    def __init__(self, model: str | os.PathLike = "styles", device: str | torch.device = "auto"):
        self.net, self.metadata = load_transformer(model)
        self.styles = tuple(self.net.arch.styles)
        self.device = resolve_device(device)
        self.net.to(self.device)
        self._bf16: TransformerNet | None = None

    def _network(self, precision: str) -> TransformerNet:
        """The network as `precision` runs it. On a CPU in bf16, a copy in bfloat16 laid
        out channels-last, made once: oneDNN runs its thin layers about twice as fast so
        as under autocast, which casts every weight anew at every layer, for the same
        pictures (docs/benchmarks.md). Otherwise the network itself (under autocast for
        bf16 on a GPU, where contiguous layers are the faster)."""
        if precision != "bf16" or self.device.type != "cpu":
            return self.net
        if self._bf16 is None:
            self._bf16 = copy.deepcopy(self.net).to(
                dtype=torch.bfloat16, memory_format=torch.channels_last
            )
        return self._bf16

    def _ready(self, net: TransformerNet, images: torch.Tensor, weights: torch.Tensor):
        """`images` and style `weights` as `net` (one `_network` gave) takes them."""
        images, weights = images.to(self.device), weights.to(self.device)
        if net is self.net:
            return images, weights
        return images.to(torch.bfloat16, memory_format=torch.channels_last), weights.to(
            torch.bfloat16
        )

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
        net = self._network(precision)
        net.fix_statistics(*self._ready(net, small, weights))
        try:
            return blend_tiles(
                image, tile, lambda window: self._forward(window, weights, precision)
            )
        finally:
            net.fix_statistics(None)

    @torch.no_grad()
    def run_batch(
        self,
        images: torch.Tensor,
        weights: torch.Tensor,
        precision: str = "auto",
        tile: int = FastOptions.tile,
        carried: Carried | None = None,
    ) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> stylized, same shape, on the CPU, float32.

        Pictures larger than `tile` px on a side go through in overlapping tiles, so
        memory follows the tile, not the picture. A video's frame may carry the
        network's features from the last frame (`carried`; whole pictures only).
        """
        precision = usable_precision(precision, self.device)
        if max(images.shape[-2:]) > tile:
            return torch.cat([self._tiled(im[None], weights, precision, tile) for im in images])
        carry = functools.partial(carried, margin=0) if carried else None
        return self._forward(images, weights, precision, carry)

    def _forward(self, images: torch.Tensor, weights: torch.Tensor, precision: str, carry=None):
        net = self._network(precision)  # a bf16 copy runs as it is; the network, by autocast
        with autocast(self.device, precision if net is self.net else "fp32"):
            out = net(*self._ready(net, images, weights), carry)
        return out.float().cpu()

    def paint(
        self,
        content: torch.Tensor,
        weights: torch.Tensor,
        opts: FastOptions,
        carried: Carried | None = None,
    ):
        """Photos (N, 3, H, W) in [0, 1] -> their pictures, with the photo's colours kept
        and the strength applied as `opts` say; a video's frame may carry the network's
        features from the last one (`carried`)."""
        out = self.run_batch(content, weights, opts.precision, opts.tile, carried)
        return finish(out, content, opts.strength, opts.preserve_color)

    def painter(
        self, style: StyleSpec, options: FastOptions, motion: Motion | None = None
    ) -> Callable[[Image.Image], torch.Tensor]:
        """Network.painter; with `motion`, the features after the residual blocks are
        carried from frame to frame along it (`Carried`), so the network paints its
        strokes where they were: blending the pictures alone averages strokes painted
        anew at each frame into a washed-out texture on flat walls and asphalt."""
        if motion is None:
            return super().painter(style, options)
        weights, carried = parse_style(style, self.styles), Carried(motion)

        def paint(picture: Image.Image) -> torch.Tensor:
            content = to_tensor(resize_longest(picture, options.size))
            return self.paint(content, weights, options, carried)

        return paint

    def paint_pictures(self, pictures, weights, opts: FastOptions) -> list[torch.Tensor]:
        content = torch.cat([to_tensor(p) for p in pictures])
        out = self.paint(content, torch.from_numpy(weights), opts)
        return [out[j : j + 1] for j in range(len(pictures))]


__all__ = ["FastStylizer", "load_transformer", "parse_style"]
