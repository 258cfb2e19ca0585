"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

Two ways to keep the photo's colours:
- luminance: transfer style on luminance alone, then put back the photo's chroma (YIQ);
- histogram: first give the style image the photo's colour mean and covariance.
Images are (N, 3, H, W) tensors, RGB in [0, 1].
"""

from __future__ import annotations

import torch

_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]]
)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    m = _RGB_TO_YIQ.to(image)
    return torch.einsum("ij,njhw->nihw", m, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(_RGB_TO_YIQ.double()).to(image)
    return torch.einsum("ij,njhw->nihw", m, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Luminance as a 3-channel grey image, so VGG can see it."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Grey `style` with its luminance mean and spread matched to `content`'s."""
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    matched = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def combine_luminance(luma_image: torch.Tensor, chroma_image: torch.Tensor) -> torch.Tensor:
    """Luminance of the first image with the chroma (I, Q) of the second."""
    yiq = torch.cat([rgb_to_yiq(luma_image)[:, :1], rgb_to_yiq(chroma_image)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def match_color(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Linearly map `source`'s colours so their mean and covariance equal `target`'s."""

    def stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = image[0].reshape(3, -1).double()
        mean = pixels.mean(1, keepdim=True)
        centred = pixels - mean
        cov = centred @ centred.T / pixels.shape[1] + eps * torch.eye(3, dtype=torch.float64)
        return mean, cov

    def sqrtm(cov: torch.Tensor, power: float) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(cov)
        return vectors @ torch.diag(values.clamp_min(eps) ** power) @ vectors.T

    mean_s, cov_s = stats(source)
    mean_t, cov_t = stats(target)
    transform = sqrtm(cov_t, 0.5) @ sqrtm(cov_s, -0.5)
    pixels = source[0].reshape(3, -1).double()
    mapped = transform @ (pixels - mean_s) + mean_t
    return mapped.reshape(source.shape).to(source.dtype).clamp(0, 1)
