"""Losses on VGG features, and the metrics built from them.

Three style losses, chosen by name (`STYLE_LOSSES`):
- "gram" (Gatys et al.): a Gram matrix divided by C·H·W (as in Johnson's neural-style),
  compared by mean squared error.
- "moments": the features' mean and covariance, each compared by mean squared error.
- "w2": the Wasserstein-2 distance between Gaussians with the features' and the
  style's mean and covariance (as in crowsonkb's style-transfer-pytorch).
"moments" and "w2" are divided by the style's mean squared activation (its powers),
so they are relative: the same weights work at every layer and every image size.
All three start from one description of a style layer, its `Moments` (mean and second
raw moment), which blend linearly between styles and sum over tiles.
Content features are compared by mean squared error.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .errors import ImageError
from .options import DEFAULT_STYLE_LAYERS


class _SelfProduct(torch.autograd.Function):
    """A Aᵀ, returned in at least float32 whatever A's dtype. Autograd would see A and Aᵀ
    as two inputs and spend two products on the gradient; this symmetric product needs
    one, (G + Gᵀ) A, in A's dtype. bf16 A is multiplied in float32 (`wide`, after a
    float32 copy), or as it is: summed in float32, rounded once to bf16, several times
    faster."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, wide: bool) -> torch.Tensor:
        ctx.save_for_backward(a)
        with torch.autocast(a.device.type, enabled=False):
            if wide or a.dtype.itemsize >= 4:
                a = a.to(torch.promote_types(a.dtype, torch.float32))
                return a @ a.mT
            # One 2-D product per matrix: batched bf16 products of channels-last features
            # (columns contiguous) copy them first on the CPU.
            matrices = a.reshape(-1, *a.shape[-2:])
            products = torch.stack([m @ m.mT for m in matrices])
            return products.float().reshape(*a.shape[:-1], a.shape[-2])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (a,) = ctx.saved_tensors
        with torch.autocast(a.device.type, enabled=False):
            sym = (grad + grad.mT).to(a.dtype)
            if a.stride(-1) == 1:
                return sym @ a, None
            # Channels-last features (A's columns are contiguous): the gradient laid out as
            # A is, so the convolutions' backward pass need not convert it (sym = symᵀ).
            return (a.mT @ sym).mT, None


def self_product(a: torch.Tensor, wide: bool = True) -> torch.Tensor:
    """A Aᵀ (a product over A's last dimension) in float32 or float64. For bf16 A, `wide`
    multiplies in float32; otherwise the product is rounded to bf16 (relative error ~1e-3)."""
    return _SelfProduct.apply(a, wide)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations of (N, C, H, W) features: (N, C, C), divided by C·H·W; float32
    for bf16 features, rounded to bf16: the Gram loss converged as fast with it (512 px,
    bf16 L-BFGS: 351 iterations to the float32 textbook's 300-iteration loss against
    346), and the float32 product took ~0.05 s of a ~0.5-s iteration on 2 CPU cores."""
    n, c, h, w = features.shape
    return self_product(features.reshape(n, c, h * w), wide=False) / (c * h * w)


class Moments(NamedTuple):
    """What a style loss knows of one layer of a style: mean (C,), second raw moment (C, C)."""

    mean: torch.Tensor
    square: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor) -> Moments:
        """Over every position of every image of (N, C, H, W) features, in float32."""
        flat = features.transpose(0, 1).reshape(features.shape[1], -1)
        n = flat.shape[1]
        # In float32: covariances subtract the means' product from this, and a bf16
        # second moment left the W2 loss measurably higher.
        return cls(flat.sum(1, dtype=torch.float32) / n, self_product(flat) / n)

    def covariance(self) -> torch.Tensor:
        return self.square - torch.outer(self.mean, self.mean)

    def power(self) -> torch.Tensor:
        """Mean squared activation: what "moments" and "w2" are measured against."""
        return self.square.diagonal().mean().clamp_min(1e-12)


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix, in float64."""
    values, vectors = torch.linalg.eigh(matrix.double())
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def style_target(kind: str, moments: Moments) -> dict[str, torch.Tensor]:
    """What style loss `kind` compares against, computed once per scale."""
    c = moments.mean.shape[0]
    if kind == "gram":
        return {"gram": (moments.square / c)[None]}
    cov = moments.covariance()
    target = {"mean": moments.mean, "cov": cov, "power": moments.power()}
    if kind == "w2":
        # A small ridge keeps the square roots well-conditioned on flat images.
        cov = cov + torch.eye(c, device=cov.device) * W2_RIDGE * target["power"]
        target.update(cov=cov, cov_sqrt=psd_sqrt(cov))  # float64, as the loss uses it
    return target


def gram_style_loss(features: torch.Tensor, target: dict) -> torch.Tensor:
    return style_loss(features, target["gram"])


def moments_style_loss(features: torch.Tensor, target: dict) -> torch.Tensor:
    """Relative mean squared error of mean and covariance."""
    m = Moments.of(features)
    power = target["power"]
    return (
        F.mse_loss(m.mean, target["mean"]) / power
        + F.mse_loss(m.covariance(), target["cov"]) / power**2
    )


W2_RIDGE = 1e-4  # added to covariances, relative to the style's power


def w2_style_loss(features: torch.Tensor, target: dict) -> torch.Tensor:
    """Squared Wasserstein-2 distance between N(μ, Σ) and the style's N(μs, Σs), per
    channel and relative to the style's power:
        |μ − μs|² + tr Σ + tr Σs − 2 tr (Σs½ Σ Σs½)½.
    The matrix square root is taken by one eigendecomposition, outside autograd; the
    gradient is then the transport map's (dW2²/dΣ = I − T, T the map from N(μ, Σ) to
    N(μs, Σs)), which costs one matrix product instead of a backward pass through
    an iterative square root."""
    m = Moments.of(features)
    c = m.mean.shape[0]
    eye = torch.eye(c, device=features.device)
    cov = m.covariance() + eye * W2_RIDGE * target["power"]
    root64 = target["cov_sqrt"]
    with torch.no_grad():  # in float64: the small eigenvalues decide T's size
        values, vectors = torch.linalg.eigh(root64 @ cov.double() @ root64)
        floor = (W2_RIDGE * target["power"].double()) ** 2  # the ridges bound them below
        values = values.clamp_min(floor)
        middle = (vectors * values.rsqrt()) @ vectors.T  # (Σs½ Σ Σs½)^-½
        transport = (root64 @ middle @ root64).float()
        bures = cov.trace() + target["cov"].trace() - 2 * values.sqrt().sum().float()
    mean_term = (m.mean - target["mean"]).pow(2).sum()
    # Same gradient as W2² (envelope theorem: T is optimal, so only Σ's explicit terms
    # move); the detached difference makes the value exact.
    surrogate = ((eye - transport) * cov).sum()
    value = mean_term + surrogate + (bures.float() - surrogate).detach()
    return value / (c * target["power"])


STYLE_LOSSES = {"gram": gram_style_loss, "moments": moments_style_loss, "w2": w2_style_loss}


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


def relative_error(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference over the target's mean square: the same weight means the
    same at every layer, whatever its activations' scale."""
    return F.mse_loss(features, target) / target.pow(2).mean().clamp_min(1e-8)


def temporal_loss(image: torch.Tensor, carried: torch.Tensor, trust: torch.Tensor) -> torch.Tensor:
    """How far a video frame strays from the last frame's painting carried along the motion
    (Ruder et al. 2016): the mean squared difference, in 0–255 units, weighted by `trust`
    (1, 1, H, W in [0, 1]: 0 where the motion is unknown, so new things are painted anew)."""
    return (trust * (image - carried).pow(2)).mean() * 255.0**2


# Metrics: relative, so they read the same at every size and for every style.
# Used by `impasto evaluate`, the benchmarks and the training reports.


@torch.no_grad()
def style_distances(vgg, image: torch.Tensor, style: torch.Tensor, layers=None) -> dict:
    """How far `image`'s textures are from `style`'s, two ways; 0 is a perfect match.

    - style_distance: mean over layers of ‖G(image) − G(style)‖ / ‖G(style)‖ (Gram
      matrices, Frobenius norm).
    - moment_distance: mean over layers of (‖μ − μs‖ / ‖μs‖ + ‖Σ − Σs‖ / ‖Σs‖) / 2, the
      features' mean and covariance against the style's. Unlike the Gram distance it
      tells a wrong average colour or texture strength (mean) from wrong textures (Σ).
    - style_distance_by_layer: the Gram distance at each layer.

    `style` should be at the scale it is meant to be seen at (e.g. resized to the
    output's longest side). One forward pass of each image serves both.
    """
    layers = list(layers or DEFAULT_STYLE_LAYERS)
    a, b = vgg(image, layers), vgg(style, layers)
    grams, moments = {}, []
    for name in layers:
        ga, gb = gram_matrix(a[name]), gram_matrix(b[name])
        grams[name] = float((ga - gb).norm() / gb.norm())
        m, t = Moments.of(a[name]), Moments.of(b[name])
        mean = (m.mean - t.mean).norm() / t.mean.norm().clamp_min(1e-12)
        cov = (m.covariance() - t.covariance()).norm() / t.covariance().norm().clamp_min(1e-12)
        moments.append((mean + cov) / 2)
    return {
        "style_distance": sum(grams.values()) / len(grams),
        "moment_distance": float(torch.stack(moments).mean()),
        # each layer's Gram distance: a mean hides where a painting's shapes live (deep)
        "style_distance_by_layer": grams,
    }


@torch.no_grad()
def content_distance(
    vgg, image: torch.Tensor, content: torch.Tensor, layer: str = "relu4_2"
) -> float:
    """‖F(image) − F(content)‖² / ‖F(content)‖² at `layer`; 0 is the photo itself."""
    if image.shape[-2:] != content.shape[-2:]:
        content = F.interpolate(content, size=image.shape[-2:], mode="bilinear", antialias=True)
    a, b = vgg(image, [layer])[layer], vgg(content, [layer])[layer]
    return float(relative_error(a, b))


# cycles per pixel: detail finer than an 8-px period. A transformation network halves
# its resolution twice, and its hatching lies on that 4-px grid, at 4-8 px periods.
ARTEFACT_CUTOFF = 0.125


def chroma_detail(images: torch.Tensor, cutoff: float = ARTEFACT_CUTOFF) -> torch.Tensor:
    """The mean square, per pixel in 0–255 units, of the finest detail (above `cutoff`
    cycles per pixel) in the colour of each (N, 3, H, W) image: its chroma channels (Cb,
    Cr of JPEG's YCbCr) high-passed in the Fourier domain, shape (N,). Paintings and
    photos have little there; a network's chromatic fringes, checkerboards and hatching
    have a lot. Differentiable: as a loss it keeps them out of a network's pictures
    while leaving strokes, which live in brightness and coarser colour, free."""
    r, g, b = (images * 255).unbind(1)
    chroma = torch.stack(
        [-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b], 1
    )
    h, w = chroma.shape[-2:]
    # Parseval: |FFT|² / (H·W) sums to the energy (squared real and imaginary parts: the
    # gradient of a complex abs is undefined at 0)
    power = torch.view_as_real(torch.fft.fft2(chroma)).pow(2).sum(-1) / (h * w)
    fy = torch.fft.fftfreq(h, dtype=images.dtype, device=images.device)
    fx = torch.fft.fftfreq(w, dtype=images.dtype, device=images.device)
    high = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt() > cutoff
    return (power * high).sum((1, 2, 3)) / (h * w)


# px: a decoder from relu4_1 upsamples 1/8 of the size by nearest neighbours, a
# transformation network 1/4: a period of 8 holds both grids
GRID_PERIOD = 8
GRID_WINDOW = 4  # periods a side: the patches in which a grid is looked for


def grid_detail(images: torch.Tensor, period: int = GRID_PERIOD) -> torch.Tensor:
    """The mean square, per pixel in 0–255 units, of the part of each (N, 3, H, W) image
    that repeats every `period` px along both axes, shape (N,). It is looked for in
    patches of GRID_WINDOW periods a side, after the image's coarser shading is taken
    out: each patch's mean at each of the period × period phases, less the patch's mean.
    A network that upsamples by nearest neighbours (from 1/4 or 1/8 of the size) can
    leave a faint grid of that period over flat areas; a photo or a painting has little
    there. Differentiable: as a loss it keeps the grid out."""
    n, c, h, w = images.shape
    side = period * GRID_WINDOW
    if h < side or w < side:
        raise ImageError(f"a {w}x{h} px picture is too small to look for a {period}-px grid in")
    # Shading and coarse shapes out first (less a (period + 1)-px box mean, which keeps a
    # ramp exactly), so that only what changes within a period is left to repeat.
    smooth = F.avg_pool2d(F.pad(images, [period // 2] * 4, mode="replicate"), period + 1, 1)
    x = (images - smooth)[..., : h // side * side, : w // side * side] * 255
    x = x.reshape(n, c, h // side, GRID_WINDOW, period, w // side, GRID_WINDOW, period)
    phases = x.mean((3, 6))  # (N, C, rows, period, cols, period)
    return (phases - phases.mean((3, 5), keepdim=True)).pow(2).mean((1, 2, 3, 4, 5))


def fine_chroma(image: torch.Tensor, cutoff: float = ARTEFACT_CUTOFF) -> float:
    """`chroma_detail` of one (1, 3, H, W) image, in float64: the metric."""
    return float(chroma_detail(image.double(), cutoff)[0])
