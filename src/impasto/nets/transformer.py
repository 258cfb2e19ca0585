"""The image transformation network of feed-forward style transfer.

Johnson et al. 2016 (perceptual losses), with the fixes that later work settled on:
reflection padding, instance normalization, and upsample + convolution instead of a
learned transposed convolution (no checkerboard artefacts; where the size doubles it is
computed as a transposed one whose taps it ties, nets/upsample.py). Every normalization
layer is conditional (Dumoulin et al. 2017): it holds one scale and shift per style, so a
network learns several styles at once, and a weighted mix of those parameters blends
styles. A single-style network is the same thing with one style.

    net = TransformerNet(Architecture(styles=("starry_night", "udnie")))
    out = net(photo, torch.tensor([0.6, 0.4]))   # photo: RGB [0, 1], (N, 3, H, W)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import Architecture
from .upsample import upsampled_conv


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with a learned scale and shift per style, mixed by style weights."""

    def __init__(self, channels: int, n_styles: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_styles, channels))
        self.shift = nn.Parameter(torch.zeros(n_styles, channels))
        # Tiled inference: statistics recorded on a whole (downscaled) image, then used
        # for every tile, so the tiles agree in colour and contrast.
        self.recording = False
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # weights: (N, n_styles), each row summing to 1.
        scale = (weights @ self.scale)[:, :, None, None]
        shift = (weights @ self.shift)[:, :, None, None]
        if self.stats is not None:
            mean, var = self.stats
            normed = (x - mean) * torch.rsqrt(var + 1e-5)
        else:
            if self.recording:
                self.stats_seen = (
                    x.mean((2, 3), keepdim=True),
                    x.var((2, 3), unbiased=False, keepdim=True),
                )
            normed = F.instance_norm(x, eps=1e-5)
        return normed * scale + shift


class Conv(nn.Module):
    """[nearest upsample to `size`] -> reflection pad -> conv -> [conditional instance norm]."""

    def __init__(self, cin, cout, kernel, n_styles, stride=1, norm=True):
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm(cout, n_styles) if norm else None

    def forward(self, x: torch.Tensor, weights: torch.Tensor, size=None) -> torch.Tensor:
        if size is not None:
            x = upsampled_conv(x, self.conv, size)
        else:
            x = self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))
        return self.norm(x, weights) if self.norm is not None else x


class Residual(nn.Module):
    def __init__(self, channels: int, n_styles: int):
        super().__init__()
        self.a = Conv(channels, channels, 3, n_styles)
        self.b = Conv(channels, channels, 3, n_styles)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.relu(self.a(x, weights)), weights)


class TransformerNet(nn.Module):
    def __init__(self, arch: Architecture | None = None):
        super().__init__()
        self.arch = arch = arch or Architecture()
        s, w = len(arch.styles), arch.width
        self.down = nn.ModuleList(
            [Conv(3, w, 9, s), Conv(w, 2 * w, 3, s, stride=2), Conv(2 * w, 4 * w, 3, s, stride=2)]
        )
        self.res = nn.ModuleList([Residual(4 * w, s) for _ in range(arch.blocks)])
        self.up = nn.ModuleList([Conv(4 * w, 2 * w, 3, s), Conv(2 * w, w, 3, s)])
        self.out = Conv(w, 3, 9, s, norm=False)

    def norms(self) -> list[ConditionalInstanceNorm]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    @torch.no_grad()
    def fix_statistics(self, image: torch.Tensor | None, weights: torch.Tensor | None = None):
        """Record every norm layer's statistics on `image` and use them from now on
        (for tiles of a bigger picture); None goes back to per-image statistics."""
        for norm in self.norms():
            norm.stats = None
            norm.recording = image is not None
        if image is None:
            return
        self(image, weights)
        for norm in self.norms():
            norm.stats, norm.recording = norm.stats_seen, False
            del norm.stats_seen

    def forward(
        self,
        image: torch.Tensor,
        weights: torch.Tensor | None = None,
        carry: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Stylize `image` (RGB in [0, 1], (N, 3, H, W)) -> RGB in [0, 1], same size.

        `weights`: the style mix, (n_styles,) for the whole batch or (N, n_styles) per
        image; None means the first style. `carry`: what the features after the residual
        blocks become before they are upsampled (a video's frame keeps part of the last
        one's there: methods.carried.Carried).
        """
        n = image.shape[0]
        if weights is None:
            weights = F.one_hot(torch.zeros((), dtype=torch.long), len(self.arch.styles))
        weights = weights.to(image.dtype).reshape(-1, len(self.arch.styles)).expand(n, -1)
        # Each upsampling returns to the exact size its mirror downsampling started
        # from, so any height and width come back unchanged (and export stays dynamic).
        x, sizes = image, []
        for layer in self.down:
            sizes.append(x.shape[-2:])
            x = F.relu(layer(x, weights))
        for block in self.res:
            x = block(x, weights)
        if carry is not None:
            x = carry(x)
        for layer, size in zip(self.up, sizes[:0:-1], strict=True):
            x = F.relu(layer(x, weights, size))
        return torch.sigmoid(self.out(x, weights))
