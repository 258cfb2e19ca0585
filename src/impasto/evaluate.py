"""The project's quality metric: how much like the painting, how much like the photo.

    scores = Evaluator().score("out.png", content="photo.jpg", style="painting.jpg")
    # {"style_distance": 0.41, "moment_distance": 0.38, "content_distance": 0.62}

All are relative VGG-19 distances (see `losses.style_distances`, `content_distance`):
lower style distance (Gram matrices) or moment distance (means and covariances) is more
of the painting's textures and colours, lower content distance is more of the photo's
structure. Compare methods at equal settings.
"""

from __future__ import annotations

import os

import torch

from .budget import BYTES_PER_VGG_PIXEL, check_fits
from .io.images import ImageSource, load_image, resize_longest, scaled_size, to_tensor
from .losses import content_distance, style_distances
from .nets.vgg import load_vgg
from .nets.weights import VGGWeights

EVAL_SIZE = 512  # longest side everything is compared at


class Evaluator:
    def __init__(self, weights: VGGWeights | str | os.PathLike | None = None, device: str = "auto"):
        self.vgg = load_vgg(weights, device)
        self.device = self.vgg.scale.device

    def score(
        self,
        output: ImageSource,
        content: ImageSource,
        style: ImageSource,
        size: int = EVAL_SIZE,
    ) -> dict[str, float]:
        picture = load_image(output)
        check_fits(scaled_size(picture.size, size), 3 * BYTES_PER_VGG_PIXEL, "scoring")
        out = to_tensor(resize_longest(picture, size)).to(self.device)
        photo = to_tensor(resize_longest(load_image(content), size)).to(self.device)
        painting = to_tensor(resize_longest(load_image(style), size)).to(self.device)
        with torch.no_grad():
            return {
                **style_distances(self.vgg, out, painting),
                "content_distance": content_distance(self.vgg, out, photo),
            }
