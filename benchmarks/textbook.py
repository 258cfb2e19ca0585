"""The textbook baseline for benchmarks/optimize.py: Gatys et al. as most tutorials write it.

One scale, init = content, torch.optim.LBFGS, the whole VGG-19 conv stack run every
iteration, and pixels optimized in the Caffe input space (BGR, 0–255, minus the
mean) as neural-style does: torch's L-BFGS needs that scale to take its first steps.
It uses impasto's weights and loss functions, so that its total loss is the same
number impasto reports, except that it writes the Gram matrix as tutorials do (autograd
differentiates both factors of F Fᵀ: two products in the backward pass, where impasto
spends one).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.losses import content_loss, tv_loss
from impasto.methods.presets import preset
from impasto.nets.vgg import LAYERS, VGG19
from impasto.nets.weights import find_weights
from impasto.options import DEFAULT_STYLE_WEIGHTS

MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def to_caffe(rgb: torch.Tensor) -> torch.Tensor:
    return rgb[:, [2, 1, 0]] * 255 - MEAN_BGR.to(rgb)


def from_caffe(caffe: torch.Tensor) -> torch.Tensor:
    return ((caffe + MEAN_BGR.to(caffe)) / 255)[:, [2, 1, 0]]


def textbook_loss(content_path, style_path, size: int, device: str = "cpu"):
    """The textbook's total loss as a function of an RGB image in [0, 1] (its pixels as they
    are, unclamped): what `run` minimizes, and what the benchmark scores other runs' pixels
    with."""
    opts = preset("classic")  # the same loss function as impasto's classic preset
    vgg = VGG19.from_weights(find_weights()).to(device)
    content = to_tensor(resize_longest(load_image(content_path), size)).to(device)
    style = to_tensor(resize_longest(load_image(style_path), size)).to(device)
    all_layers = [name for name in LAYERS if name.startswith("relu")]  # the whole stack
    with torch.no_grad():
        target_content = vgg(content, opts.content_layers)
        target_grams = {n: gram_matrix(f) for n, f in vgg(style, opts.style_layers).items()}

    def loss(image: torch.Tensor) -> torch.Tensor:
        features = vgg(image, all_layers + list(opts.content_layers) + list(opts.style_layers))
        total = opts.content_weight * sum(
            w * content_loss(features[n], target_content[n]) for n, w in opts.content_layers.items()
        )
        total = total + DEFAULT_STYLE_WEIGHTS["gram"] * sum(
            w * F.mse_loss(gram_matrix(features[n]), target_grams[n])
            for n, w in opts.style_layers.items()
        )
        return total + opts.tv_weight * tv_loss(image)

    return loss, content


def run(content_path, style_path, size: int, iterations: int, device: str = "cpu", log=None):
    """Returns [(seconds, total loss)] per iteration; `log` gets each pair as it comes."""
    loss_of, content = textbook_loss(content_path, style_path, size, device)
    pixels = to_caffe(content).clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([pixels], max_iter=1, history_size=100)
    trace: list[tuple[float, float]] = []
    start = time.perf_counter()

    def closure():
        optimizer.zero_grad()
        loss = loss_of(from_caffe(pixels))
        loss.backward()
        return loss

    for _ in range(iterations):
        loss = float(optimizer.step(closure))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        trace.append((time.perf_counter() - start, loss))
        if log:
            log(trace[-1])
    return trace, from_caffe(pixels.detach()).clamp(0, 1)
