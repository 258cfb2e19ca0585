"""Nearest upsampling, reflection padding and a 3×3 convolution, in one transposed
convolution where the size doubles.

Both kinds of network paint their way back up so (nets.decoders, nets.transformer):
upsampling by copying each pixel over a 2×2 block keeps the checkerboard of transposed
convolutions away (Odena et al. 2016). But for a doubled size the three steps are one
linear map of the small features, and a transposed convolution of stride 2 computes it
exactly: along each axis, output pixel 2i reads input pixels i - 1 and i (by the 3×3
kernel's first tap and its other two summed), and 2i + 1 reads i and i + 1 (the first
two summed, then the last); at the edges, reflecting the upsampled features is
replicating the small ones. That is 16 multiply-adds a small pixel instead of 36, and
no upsampled or padded copy of the features is made: the same result to rounding, in
a fraction of the time (docs/benchmarks.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _four_taps(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """A 3-tap kernel along `dim` as the transposed convolution's 4 taps: tap t carries
    input pixel j to output pixel 2j + t - 1 (with the 1 px of padding and the 3 cropped)."""
    first, middle, last = weight.unbind(dim)
    return torch.stack([last, middle + last, first + middle, first], dim)


def upsampled_conv(x: torch.Tensor, conv: nn.Conv2d, size: tuple[int, int]) -> torch.Tensor:
    """`conv` (stride 1, unpadded) of `x` upsampled to `size` by nearest neighbour and
    reflection-padded by half its kernel; as one transposed convolution where the kernel
    is 3×3 and `size` twice `x`'s (other sizes, and traced exports, which must stay
    dynamic, take the three steps)."""
    h, w = x.shape[-2:]
    if (
        tuple(size) != (2 * h, 2 * w)
        or conv.kernel_size != (3, 3)
        or conv.stride != (1, 1)
        or conv.padding != (0, 0)
        or torch.jit.is_tracing()
    ):
        x = F.interpolate(x, size=tuple(size), mode="nearest")
        return conv(F.pad(x, [conv.kernel_size[0] // 2] * 4, mode="reflect"))
    weight = conv.weight.float()  # the taps summed in float32, then as the layer keeps them
    weight = _four_taps(_four_taps(weight, 2), 3).transpose(0, 1).to(conv.weight.dtype)
    x = F.pad(x, [1] * 4, mode="replicate")
    return F.conv_transpose2d(x, weight, conv.bias, stride=2, padding=3)
