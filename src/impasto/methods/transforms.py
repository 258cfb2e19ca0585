"""Moving features to another picture's statistics: the whitening and colouring
transform (WCT, Li et al. 2017) and adaptive instance normalization (AdaIN, Huang &
Belongie 2017), on statistics gathered part by part (a big picture's tiles).

A transform is an affine map of the features, f -> A f + b, found from the two pictures'
means and covariances; maps blend linearly, so several styles make one map.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from ..losses import Moments


class RunningMoments:
    """Mean and covariance of (C, positions) feature parts added one by one: a picture's
    statistics from its tiles without keeping the tiles' features. Each part's scatter
    is one float32 matrix product about a rough mean of its own (no float64 copy of the
    features); the exact means and the parts' combination (Chan et al.'s pairwise
    update) are float64, so nothing large is subtracted from anything large."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | float = 0.0
        self.scatter: torch.Tensor | float = 0.0  # sum of outer products about the mean

    def add(self, part: torch.Tensor) -> None:
        n = part.shape[1]
        # Shifted by a rough mean (of a sample of positions) the values are small, so
        # float32 loses nothing that matters; the exact mean and scatter then follow in
        # float64 from the shifted values' sum.
        rough = part[:, :: max(1, n // 1024)].float().mean(1, keepdim=True)
        shifted = part - rough  # float32 (from bf16 features too), in one pass
        offset = shifted.sum(1, keepdim=True).double()
        scatter = (shifted @ shifted.T).double() - offset @ offset.T / n
        mean = rough.double() + offset / n
        total = self.count + n
        delta = mean - self.mean
        self.scatter = self.scatter + scatter + (delta @ delta.T) * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.count = total

    def result(self) -> Moments:
        """The statistics a style loss uses too: mean and second moment, float64."""
        mean = torch.as_tensor(self.mean).flatten()
        return Moments(mean, self.scatter / max(self.count, 1) + torch.outer(mean, mean))


def moments(parts: Iterable[torch.Tensor]) -> Moments:
    """The statistics of (C, positions) feature parts taken together."""
    running = RunningMoments()
    for part in parts:
        running.add(part)
    return running.result()


def wct_matrix(content: Moments, style: Moments, eps: float = 1e-5) -> torch.Tensor:
    """Whitening by the content's covariance, then colouring by the style's. Both are
    regularised by eps times their mean eigenvalue plus an absolute floor, so flat
    images (rank-deficient covariance) give no NaN."""
    return _cov_power(style.covariance(), 0.5, eps) @ _cov_power(content.covariance(), -0.5, eps)


def adain_matrix(content: Moments, style: Moments, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalization: each channel takes the style's spread."""
    c_std = content.covariance().diagonal().clamp_min(0).sqrt()
    s_std = style.covariance().diagonal().clamp_min(0).sqrt()
    return torch.diag(s_std / (c_std + eps))


Affine = tuple[torch.Tensor, torch.Tensor]  # f -> A f + b on (C, positions) features


def affine_map(content: Moments, style: Moments, matrix: torch.Tensor, alpha: float) -> Affine:
    """The transform with its alpha mix, alpha·(M(f − μc) + μs) + (1 − alpha)·f, as one
    affine map (A, b), in float64. Maps blend linearly, so several styles make one map."""
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    return alpha * matrix + (1 - alpha) * eye, alpha * (style.mean - matrix @ content.mean)


def apply_map(features: torch.Tensor, affine: Affine) -> torch.Tensor:
    """(N, C, H, W) features through an affine map, as a 1×1 convolution in their own
    dtype (bf16 features: a bf16 map, as autocast would round it) and memory layout: one
    pass over them, the result ready for a decoder (the identity map gives the features
    back exactly)."""
    mixing, shift = affine
    weight = mixing.to(features.dtype)[:, :, None, None]
    return F.conv2d(features, weight, shift.to(features.dtype).flatten())


def transform(
    features: torch.Tensor, content: Moments, style: Moments, matrix: torch.Tensor, alpha: float
) -> torch.Tensor:
    """(1, C, H, W) features moved to the style's statistics by `matrix`, then mixed with
    the originals by `alpha`."""
    return apply_map(features, affine_map(content, style, matrix, alpha))


def move_to_style(
    content: torch.Tensor,
    style: torch.Tensor,
    method: str,
    alpha: float = 1.0,
    eps: float = 1e-5,
) -> torch.Tensor:
    """(1, C, H, W) `content` features moved to `style`'s statistics by `method` (a key of
    MATRICES: wct, adain), then mixed with the originals by `alpha`."""
    c, s = moments([content[0].flatten(1)]), moments([style[0].flatten(1)])
    return transform(content, c, s, MATRICES[method](c, s, eps), alpha)


def wct(
    content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Whitening and colouring transform of (1, C, H, W) features (Li et al. 2017)."""
    return move_to_style(content, style, "wct", alpha, eps)


def adain(
    content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Adaptive instance normalization: the style's per-channel mean and std."""
    return move_to_style(content, style, "adain", alpha, eps)


def _cov_power(cov: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    """cov^power, regularised: no eigenvalue under eps times the mean one (plus a floor),
    even one that rounding made negative (a flat frame's bf16 features), which would
    otherwise whiten by thousands and overflow."""
    floor = eps * cov.diagonal().mean().clamp_min(1e-12) + 1e-8
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    values, vectors = torch.linalg.eigh(cov + floor * eye)
    return vectors @ torch.diag(values.clamp_min(floor).pow(power)) @ vectors.T


MATRICES = {"wct": wct_matrix, "adain": adain_matrix}
