"""DeepDream (Mordvintsev et al. 2015): amplify what chosen VGG-19 layers see.

Gradient ascent on the mean squared activations of the layers (or, with a guide
image, on how well each activation matches the guide's most similar one), over an
octave pyramid: the detail added at one scale is carried up to the next. Random
jitter (a roll of the image before each step) and steps normalised by the mean
gradient keep the patterns smooth and the step size meaningful at every layer.

    result = Dreamer().run("photo.jpg", layers={"relu4_2": 1.0}, octaves=4)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from ..errors import OptionError
from ..io.images import (
    ImageSource,
    carry_metadata,
    load_image,
    resize_longest,
    save_image,
    to_image,
    to_tensor,
)
from ..nets.vgg import LAYERS, load_vgg
from ..nets.weights import VGGWeights


@dataclass
class DreamOptions:
    layers: dict[str, float] = field(default_factory=lambda: {"relu4_2": 1.0})
    octaves: int = 4
    octave_scale: float = 1.4
    iterations: int = 10  # per octave
    step_size: float = 0.01  # per step, in [0, 1] pixel units, after normalising the gradient
    jitter: int = 32  # px, random roll before each step
    size: int | None = 512  # longest side of the output; None keeps the input's
    guide: ImageSource | None = None
    seed: int | None = None
    save_every: int = 0
    snapshots: str | os.PathLike | None = None

    def validate(self) -> None:
        unknown = set(self.layers) - set(LAYERS)
        if unknown:
            raise OptionError(f"unknown layer(s): {', '.join(sorted(unknown))}")
        if not self.layers:
            raise OptionError("give at least one layer")
        if self.octaves < 1 or self.iterations < 0:
            raise OptionError("octaves must be at least 1 and iterations not negative")
        if self.octave_scale <= 1:
            raise OptionError("octave_scale must be above 1")
        if self.step_size <= 0 or self.jitter < 0:
            raise OptionError("step_size must be positive and jitter not negative")
        if self.size is not None and self.size < 16:
            raise OptionError("size must be at least 16 px")


@dataclass
class DreamResult:
    image: Image.Image
    objective: float  # the last step's
    seconds: float
    iterations: int


class Dreamer:
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
        *,
        callback: Callable[[int, float, torch.Tensor], None] | None = None,
        progress: bool = True,
        **options,
    ) -> DreamResult:
        opts = replace(options.pop("options", None) or DreamOptions())
        for key, value in options.items():
            if not hasattr(opts, key):
                raise OptionError(f"unknown option {key!r}")
            setattr(opts, key, value)
        opts.validate()
        picture = load_image(image)
        if opts.size:
            picture = resize_longest(picture, opts.size)
        base = to_tensor(picture).to(self.device)
        guides = None
        if opts.guide is not None:
            guide = to_tensor(resize_longest(load_image(opts.guide), 224)).to(self.device)
            with torch.no_grad():
                feats = self.vgg(guide, opts.layers)
            guides = {n: f.flatten(2)[0] for n, f in feats.items()}  # (C, HW)
        if opts.snapshots:
            Path(opts.snapshots).mkdir(parents=True, exist_ok=True)
        generator = torch.Generator().manual_seed(opts.seed if opts.seed is not None else 0)

        h, w = base.shape[-2:]
        sizes = [(h, w)]
        for _ in range(opts.octaves - 1):
            sh, sw = round(sizes[0][0] / opts.octave_scale), round(sizes[0][1] / opts.octave_scale)
            if min(sh, sw) < 32:  # VGG sees little below this
                break
            sizes.insert(0, (sh, sw))
        start, done, value = time.perf_counter(), 0, 0.0
        bar = tqdm(total=len(sizes) * opts.iterations, disable=not progress, unit="it")
        detail = torch.zeros_like(F.interpolate(base, size=sizes[0], mode="area"))
        try:
            for octave, size in enumerate(sizes):
                octave_base = (
                    F.interpolate(base, size=size, mode="area") if size != (h, w) else base
                )
                detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
                x = (octave_base + detail).clamp(0, 1)
                for _ in range(opts.iterations):
                    dy, dx = (torch.randint(-opts.jitter, opts.jitter + 1, (2,),
                                            generator=generator).tolist()
                              if opts.jitter else (0, 0))  # fmt: skip
                    x = x.roll((dy, dx), (-2, -1)).detach().requires_grad_(True)
                    objective = self.objective(x, opts.layers, guides)
                    (grad,) = torch.autograd.grad(objective, x)
                    with torch.no_grad():
                        x = x + opts.step_size * grad / (grad.abs().mean() + 1e-12)
                        x = x.roll((-dy, -dx), (-2, -1)).clamp(0, 1)
                    value, done = float(objective.detach()), done + 1
                    bar.update()
                    bar.set_postfix(octave=f"{octave + 1}/{len(sizes)}", objective=f"{value:.4g}")
                    if callback is not None:
                        callback(done, value, x)
                    if opts.snapshots and opts.save_every and done % opts.save_every == 0:
                        save_image(to_image(x), Path(opts.snapshots) / f"dream_{done:05d}.png")
                detail = x - octave_base
        finally:
            bar.close()
        final = base + F.interpolate(detail, size=(h, w), mode="bilinear", align_corners=False)
        return DreamResult(
            carry_metadata(to_image(final.clamp(0, 1)), picture),
            value,
            time.perf_counter() - start,
            done,
        )
