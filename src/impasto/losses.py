"""Losses on VGG features, and the metrics built from them.

Normalisation (as in Johnson's neural-style): a Gram matrix is divided by C·H·W and
compared by mean squared error, so a style weight means the same at every image size
and every layer; content features are compared by mean squared error too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Caffe's VGG applies ReLU in place, so the "conv1_1" blob of Gatys et al. is the
# rectified one: these are the paper's layers under their unambiguous names.
DEFAULT_CONTENT_LAYERS = {"relu4_2": 1.0}
DEFAULT_STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0,
                        "relu5_1": 1.0}  # fmt: skip


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations of (N, C, H, W) features: (N, C, C), divided by C·H·W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the Gram of `features` and a target Gram."""
    return F.mse_loss(gram_matrix(features), target_gram.expand(features.shape[0], -1, -1))


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference between neighbouring pixels, in 0–255 units.

    A weight of 300 smooths about as much as neural-style's default (1e-3, summed) at 512 px,
    and, being a mean, the same at every size.
    """
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    return (dy.pow(2).mean() + dx.pow(2).mean()) * 255.0**2


# Metrics: relative, so they read the same at every size and for every style.
# Used by `impasto evaluate`, the benchmarks and the training reports.


@torch.no_grad()
def style_distance(vgg, image: torch.Tensor, style: torch.Tensor, layers=None) -> float:
    """Mean over layers of ‖G(image) − G(style)‖ / ‖G(style)‖ (Frobenius); 0 is a perfect match.

    `style` should be at the scale it is meant to be seen at (e.g. resized to the
    output's longest side).
    """
    layers = list(layers or DEFAULT_STYLE_LAYERS)
    a, b = vgg(image, layers), vgg(style, layers)
    ratios = [
        (gram_matrix(a[n]) - gram_matrix(b[n])).norm() / gram_matrix(b[n]).norm() for n in layers
    ]
    return float(torch.stack(ratios).mean())


@torch.no_grad()
def content_distance(
    vgg, image: torch.Tensor, content: torch.Tensor, layer: str = "relu4_2"
) -> float:
    """‖F(image) − F(content)‖² / ‖F(content)‖² at `layer`; 0 is the photo itself."""
    if image.shape[-2:] != content.shape[-2:]:
        content = F.interpolate(content, size=image.shape[-2:], mode="bilinear", antialias=True)
    a, b = vgg(image, [layer])[layer], vgg(content, [layer])[layer]
    return float((a - b).pow(2).sum() / b.pow(2).sum())
