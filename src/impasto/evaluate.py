"""The project's quality metric: how much like the painting, how much like the photo.

    scores = Evaluator().score("out.png", content="photo.jpg", style="painting.jpg")
    # {"style_distance": 0.41, "moment_distance": 0.38, "content_distance": 0.62,
    #  "style_distance_by_layer": {"relu1_1": 0.12, ...}}
    artefact_score("out.png", "photo.jpg")  # 1.3: fine colour detail against the photo's
    grid_score("out.png", "photo.jpg")  # 1.1: a pattern repeating every 8 px, likewise

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
from .losses import GRID_PERIOD, content_distance, fine_chroma, grid_detail, style_distances
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


def artefact_score(output: ImageSource, content: ImageSource, size: int = EVAL_SIZE) -> float:
    """How much fine colour detail (`losses.fine_chroma`) the picture has against its photo,
    both at `size`: about 1 for a picture as clean as the photo; chromatic fringes,
    checkerboards and hatching raise it. A style's own fine colour texture raises it too,
    so compare methods on the same pairs."""
    return _against_photo(fine_chroma, output, content, size)


def grid_score(
    output: ImageSource, content: ImageSource, size: int = EVAL_SIZE, period: int = GRID_PERIOD
) -> float:
    """How much of the picture repeats every `period` px (`losses.grid_detail`), in
    brightness or colour, against its photo, both at `size`: about 1 for none beyond the
    photo's own; the faint grid a network leaves where it upsamples raises it."""

    def measure(image: torch.Tensor) -> float:
        return float(grid_detail(image.double(), period)[0])

    return _against_photo(measure, output, content, size)


def _against_photo(measure, output: ImageSource, content: ImageSource, size: int) -> float:
    out = to_tensor(resize_longest(load_image(output), size))
    photo = to_tensor(resize_longest(load_image(content), size))
    return measure(out) / max(measure(photo), 1e-9)
