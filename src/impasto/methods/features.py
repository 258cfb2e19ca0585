"""Pictures of what VGG-19 sees: a layer's strongest feature maps, and its Gram matrix.

The feature maps are "content" as the optimization method sees it; the Gram matrix,
which channels fire together regardless of where, is "style".
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..errors import OptionError
from ..io.sheet import colormap, contact_sheet, labelled_grid
from ..losses import gram_matrix
from ..nets.vgg import LAYERS, VGG19


def _activations(vgg: VGG19, image: torch.Tensor, layer: str) -> torch.Tensor:
    if layer not in LAYERS:
        raise OptionError(f"unknown layer {layer!r}; names look like relu3_1, conv4_2, pool2")
    with torch.no_grad():
        return vgg(image, [layer])[layer][0].float().cpu()  # (C, H, W)


def feature_grid(
    vgg: VGG19, image: torch.Tensor, layer: str, top: int = 16, cell: int = 192
) -> Image.Image:
    """The `top` channels of `layer` with the largest mean activation, as labelled tiles."""
    if top < 1:
        raise OptionError("top must be at least 1")
    act = _activations(vgg, image, layer)
    strength = act.mean(dim=(1, 2))
    order = strength.argsort(descending=True)[: min(top, act.shape[0])]
    tiles, labels = [], []
    for c in order.tolist():
        fmap = act[c].numpy()
        span = fmap.max() - fmap.min()
        tile = colormap((fmap - fmap.min()) / span if span > 0 else np.zeros_like(fmap))
        scale = (cell - 4) / max(tile.size)  # blow small maps up, pixels kept sharp
        tiles.append(
            tile.resize(
                (round(tile.width * scale), round(tile.height * scale)), Image.Resampling.NEAREST
            )
        )
        labels.append(f"#{c}  mean {strength[c]:.3g}")
    return labelled_grid(tiles, labels, int(np.ceil(np.sqrt(len(tiles)))), cell=cell)


def gram_heatmap(vgg: VGG19, image: torch.Tensor, layer: str, size: int = 512) -> Image.Image:
    """The layer's Gram matrix (channels × channels) as a heat map, channels in index order."""
    act = _activations(vgg, image, layer)
    gram = gram_matrix(act[None])[0].numpy()
    scaled = np.sqrt(np.clip(gram, 0, None))  # square root: the few large entries dominate
    top = scaled.max()
    picture = colormap(scaled / top if top > 0 else scaled)
    label = f"{layer} Gram matrix, {gram.shape[0]} channels"
    tile = picture.resize((size, size), Image.Resampling.NEAREST)
    return contact_sheet([[tile]], [label], cell=size + 8)
