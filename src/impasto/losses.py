"""Losses on VGG features, and the metrics built from them.

Normalisation (as in Johnson's neural-style): a Gram matrix is divided by C·H·W and
compared by mean squared error, so a style weight means the same at every image size
and every layer; content features are compared by mean squared error too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
