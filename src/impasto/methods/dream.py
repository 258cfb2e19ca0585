"""DeepDream (Mordvintsev et al. 2015): amplify what chosen VGG-19 layers see.

Gradient ascent on the mean squared activations of the layers (or, with a guide
image, on how well each activation matches the guide's most similar one), over an
octave pyramid: the detail added at one scale is carried up to the next. Random
jitter (a roll of the image before each step) and steps normalised by the mean
gradient keep the patterns smooth and the step size meaningful at every layer.

    result = Dreamer().run("photo.jpg", layers={"relu4_2": 1.0}, octaves=4)
    result.image.save("dream.png")
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..budget import BYTES_PER_TILE_PIXEL, check_fits
from ..errors import OptionError
from ..io.atomic import make_folder
from ..io.images import (
    ImageSource,
    carry_metadata,
    load_image,
    resize_longest,
    save_image,
    scaled_size,
    to_image,
    to_tensor,
)
from ..nets.vgg import LAYERS, load_vgg
from ..nets.weights import VGGWeights
from ..options import DreamOptions, update
from .result import Progress, Result


class Dreamer:
    """VGG-19, loaded once, for many dreams."""

    def __init__(
        self,
        weights: VGGWeights | str | os.PathLike | None = None,
        device: str | torch.device = "auto",
    ):
        self.vgg = load_vgg(weights, device)
        self.device = self.vgg.scale.device

    def objective(
        self, image: torch.Tensor, layers: dict[str, float], guides: dict | None = None
    ) -> torch.Tensor:
        """What the ascent maximises: per layer, mean squared activation, or with guide
        features, the mean over positions of the best dot product with a guide vector."""
        features = self.vgg(image, layers)
        total = image.new_zeros(())
        for name, weight in layers.items():
            act = features[name]
            if guides is None:
                total = total + weight * act.pow(2).mean()
            else:
                flat = act.flatten(2)[0]  # (C, HW)
                match = (guides[name].T @ flat).max(dim=0).values  # best guide vector per place
                total = total + weight * match.mean()
        return total

    def run(
        self,
        image: ImageSource,
        options: DreamOptions | None = None,
        *,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = False,
        **changes,
    ) -> Result:
        """Dream on `image`: `options` with `changes`, the fields of DreamOptions, on top;
        `callback` gets a Progress after every step."""
        opts = update(replace(options) if options else DreamOptions(), changes, "dream")
        unknown = set(opts.layers) - set(LAYERS)
        if unknown or not opts.layers:
            raise OptionError(
                f"unknown layer(s): {', '.join(sorted(unknown))}"
                if unknown
                else "give at least one layer"
            )
        picture = load_image(image)
        check_fits(scaled_size(picture.size, opts.size), BYTES_PER_TILE_PIXEL, "DeepDream")
        picture = resize_longest(picture, opts.size)
        base = to_tensor(picture).to(self.device)
        guides = self._guides(opts)
        if opts.snapshots:
            make_folder(opts.snapshots, "snapshots folder")
        sizes = _octaves(base.shape[-2:], opts)
        start, done, value = time.perf_counter(), 0, 0.0
        bar = tqdm(total=len(sizes) * opts.iterations, disable=not progress, unit="it")
        generator = torch.Generator().manual_seed(opts.seed if opts.seed is not None else 0)
        detail = torch.zeros_like(F.interpolate(base, size=sizes[0], mode="area"))
        try:
            for octave, size in enumerate(sizes):
                octave_base = F.interpolate(base, size=size, mode="area")
                detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
                x = (octave_base + detail).clamp(0, 1)
                for it in range(1, opts.iterations + 1):
                    x, value = self._step(x, opts, guides, generator)
                    done += 1
                    bar.update()
                    bar.set_postfix(octave=f"{octave + 1}/{len(sizes)}", objective=f"{value:.4g}")
                    if callback is not None:
                        callback(
                            Progress(
                                octave, max(size), it, opts.iterations, {"objective": value}, x, x
                            )
                        )
                    if opts.snapshots and opts.save_every and done % opts.save_every == 0:
                        save_image(to_image(x), Path(opts.snapshots) / f"dream_{done:05d}.png")
                detail = x - octave_base
        finally:
            bar.close()
        final = base + F.interpolate(
            detail, size=base.shape[-2:], mode="bilinear", align_corners=False
        )
        pixels = final.clamp(0, 1).float().cpu()
        return Result(
            carry_metadata(to_image(pixels), picture),
            pixels,
            time.perf_counter() - start,
            str(self.device),
            losses={"objective": value},
            iterations=done,
            sizes=[(w, h) for h, w in sizes],
            options=asdict(opts),
        )

    def _guides(self, opts: DreamOptions) -> dict | None:
        """The guide image's feature vectors per layer, (C, HW), or None without one."""
        if opts.guide is None:
            return None
        guide = to_tensor(resize_longest(load_image(opts.guide), 224)).to(self.device)
        with torch.no_grad():
            feats = self.vgg(guide, opts.layers)
        return {n: f.flatten(2)[0] for n, f in feats.items()}

    def _step(self, x, opts, guides, generator) -> tuple[torch.Tensor, float]:
        """One jittered, normalised gradient-ascent step."""
        dy, dx = (
            torch.randint(-opts.jitter, opts.jitter + 1, (2,), generator=generator).tolist()
            if opts.jitter
            else (0, 0)
        )
        x = x.roll((dy, dx), (-2, -1)).detach().requires_grad_(True)
        objective = self.objective(x, opts.layers, guides)
        (grad,) = torch.autograd.grad(objective, x)
        with torch.no_grad():
            x = x + opts.step_size * grad / (grad.abs().mean() + 1e-12)
            x = x.roll((-dy, -dx), (-2, -1)).clamp(0, 1)
        return x, float(objective.detach())


def _octaves(shape, opts: DreamOptions) -> list[tuple[int, int]]:
    """The octaves' sizes, smallest first, each octave_scale times the last; none under
    32 px, where VGG sees little."""
    sizes = [tuple(shape)]
    for _ in range(opts.octaves - 1):
        sh, sw = round(sizes[0][0] / opts.octave_scale), round(sizes[0][1] / opts.octave_scale)
        if min(sh, sw) < 32:
            break
        sizes.insert(0, (sh, sw))
    return sizes
