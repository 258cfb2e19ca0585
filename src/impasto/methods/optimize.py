"""Style transfer by optimization (Gatys, Ecker & Bethge 2015).

The output's pixels are optimized until a frozen VGG-19 sees the photo's content
(features of a middle layer) and the painting's style (statistics of several layers).
Coarse-to-fine: each scale's result, upsampled, starts the next scale, which is both
faster and better at large sizes than starting big.

    stylizer = Stylizer()                       # loads VGG-19 once
    result = stylizer.run(photo, painting, size=512)
    result.image.save("out.png")
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .. import color
from ..budget import BYTES_PER_IMAGE_PIXEL, available_memory, check_fits
from ..devices import autocast, usable_precision
from ..errors import DivergedError
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
from ..losses import (
    STYLE_LOSSES,
    Moments,
    content_distance,
    content_loss,
    style_target,
    temporal_loss,
    tv_loss,
)
from ..nets.vgg import load_vgg
from ..nets.weights import VGGWeights, find_weights
from ..options import DEFAULT_STYLE_WEIGHTS, OptimizeOptions
from . import balance
from .base import finish
from .blend import blend_weights
from .presets import resolve
from .result import Progress, Result, as_list
from .schedule import Average, Optimizer, iterations_per_scale, scale_ladder
from .tiled import tile_grid, tiled_moments, tiled_scale
from .tiles import optimization_tile


class Stylizer:
    """Keeps VGG-19 loaded on a device, for many runs."""

    def __init__(
        self,
        weights: VGGWeights | str | os.PathLike | None = None,
        device: str | torch.device = "auto",
    ):
        if not isinstance(weights, VGGWeights):
            weights = find_weights(weights)
        self.vgg = load_vgg(weights, device)
        self.device = self.vgg.scale.device
        # The network holds the tensors now; keep only the description (source, path).
        self.weights = replace(weights, state={})

    def run(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        options: OptimizeOptions | None = None,
        *,
        preset: str | None = None,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = False,
        temporal: Temporal | None = None,
        **changes,
    ) -> Result:
        """Stylize `content` like `style` (one image or a list to blend).

        `options` (default: the `preset`'s, "balanced" unless named) with `changes`, the
        fields of OptimizeOptions, on top. `callback` gets a Progress after every
        iteration. `temporal` holds a video frame near the last one's painting (Ruder et
        al. 2016; methods.video). Ctrl-C ends the run with the picture painted so far
        (interrupted)."""
        opts = resolve(options, preset, changes)
        opts.precision = usable_precision(opts.precision, self.device)
        if opts.style_weight is None:
            opts.style_weight = DEFAULT_STYLE_WEIGHTS[opts.style_loss]
        styles = as_list(style)
        blend = blend_weights(opts.style_weights, len(styles))
        photo = load_image(content)
        w, h = scaled_size(photo.size, scale_ladder(opts)[-1])
        painting_px = int(w * h * opts.style_scale**2)  # a painting's, at most, as floats
        check_fits((w, h), BYTES_PER_IMAGE_PIXEL, "optimization in tiles", 12 * painting_px)
        paintings = [load_image(s) for s in styles]
        init = None if _is_named_init(opts.init) else load_image(opts.init)
        if opts.snapshots is not None:
            make_folder(opts.snapshots, "snapshots folder")
        self.vgg.pooling, self.vgg.padding = opts.pooling, opts.padding
        run = _Painting(self, opts, photo, callback, progress, temporal)
        try:
            for index, size in enumerate(run.ladder):
                run.scale(index, size, paintings, blend, init)
        except KeyboardInterrupt:
            if run.x is None:
                raise
            run.interrupted = True  # keep what was painted so far
        finally:
            run.bar.close()
        return run.result()

    @torch.no_grad()
    def targets(self, content_t, paintings, blend, size, opts, tile=None) -> dict:
        """Content features and style statistics that a scale aims at."""
        style = self.style_targets(content_t, paintings, blend, size, opts, tile)
        return {"content": self.content_features(_seen(content_t, opts), opts), "style": style}

    def features(self, image: torch.Tensor, layers, precision: str) -> dict[str, torch.Tensor]:
        """Target features, computed as the iterations compute theirs: a bf16 VGG is a
        slightly different network (its weights rounded), and targets from the float32
        one leave its gradient far off where the content and style gradients nearly
        cancel (docs/benchmarks.md)."""
        with autocast(self.device, precision):
            return self.vgg(image, layers)

    def content_features(self, image: torch.Tensor, opts) -> dict[str, torch.Tensor]:
        features = self.features(image, opts.content_layers, opts.precision)
        return {name: f.float() for name, f in features.items()}

    @torch.no_grad()
    def style_targets(self, content_t, paintings, blend, size, opts, tile=None) -> dict:
        """What the style loss compares against at this scale, per layer, from the
        blended moments of the style images; with `tile`, a style image is seen in
        tiles and their sums make the whole image's moments."""
        style_size = max(16, round(size * opts.style_scale))
        mean = dict.fromkeys(opts.style_layers, 0.0)
        square = dict.fromkeys(opts.style_layers, 0.0)
        layers = list(opts.style_layers)
        for image, weight in zip(paintings, blend, strict=True):
            style_t = to_tensor(resize_longest(image, style_size)).to(self.device)
            if opts.preserve_color == "luminance":
                style_t = color.match_luminance(style_t, content_t)
            elif opts.preserve_color == "histogram":
                style_t = color.match_color(style_t, content_t)
            if tile and max(style_t.shape[-2:]) > tile:
                found = tiled_moments(
                    style_t, layers, tile, partial(self.features, precision=opts.precision)
                )
            else:
                features = self.features(style_t, layers, opts.precision)
                found = {name: Moments.of(features[name]) for name in layers}
            for name in layers:  # moments, unlike covariances, blend linearly
                mean[name] = mean[name] + weight * found[name].mean
                square[name] = square[name] + weight * found[name].square
        return {
            name: style_target(opts.style_loss, Moments(mean[name], square[name]))
            for name in layers
        }

    def start(self, previous, content_t, init_image, generator, opts) -> torch.Tensor:
        """The image a scale starts from: the last scale's, upsampled, or the init."""
        h, w = content_t.shape[-2:]
        if previous is not None:
            x = F.interpolate(previous.detach(), size=(h, w), mode="bicubic", align_corners=False)
        elif init_image is None and opts.init == "content":
            x = content_t.clone()
        elif init_image is None:  # noise
            x = torch.rand((1, 3, h, w), generator=generator).to(self.device)
        else:
            x = to_tensor(init_image.resize((w, h), Image.Resampling.LANCZOS)).to(self.device)
        if opts.preserve_color == "luminance" and previous is None:
            x = color.luminance(x)
        return x.clamp(0, 1).contiguous().requires_grad_(True)

    def loss(self, x: torch.Tensor, target: dict, opts) -> dict[str, torch.Tensor]:
        style_loss = STYLE_LOSSES[opts.style_loss]
        c = s = x.new_zeros(())  # a tensor even with no content (or style) layers
        on = self.device.type
        # bf16 runs the convolutions only; Grams and losses are float32 (the style losses
        # take bf16 features as they are: their Gram products read them in float32 and
        # send bf16 gradients back). Each layer's loss is built as VGG reaches it (see
        # VGG19.walk): less memory in the backward pass.
        with autocast(self.device, opts.precision):  # as the targets were computed
            for name, features in self.vgg.walk(x, {**opts.content_layers, **opts.style_layers}):
                with torch.autocast(on, enabled=False):
                    if name in opts.content_layers:
                        c = c + opts.content_layers[name] * content_loss(
                            features.float(), target["content"][name]
                        )
                    if name in opts.style_layers:
                        s = s + opts.style_layers[name] * style_loss(
                            features, target["style"][name]
                        )
        terms = {
            "content": opts.content_weight * c,
            "style": opts.style_weight * s,
            "tv": opts.tv_weight * tv_loss(x),
        }
        if "temporal" in target:
            carried, trust, weight = target["temporal"]
            terms["temporal"] = weight * temporal_loss(x, carried, trust)
        terms["total"] = sum(terms.values())
        return terms


@dataclass
class Temporal:
    """A video frame's tie to the last one (Ruder et al. 2016): the last frame's painting
    carried along the motion, (1, 3, H, W) in [0, 1], how far each pixel of it can be
    trusted, (1, 1, H, W) in [0, 1], and the weight of the temporal loss."""

    carried: torch.Tensor
    trust: torch.Tensor
    weight: float

    def at(self, shape: tuple[int, int], device: torch.device) -> tuple:
        """The tie at a scale's (h, w): what the loss compares against."""
        return tuple(
            F.interpolate(t, size=shape, mode="bilinear", align_corners=False).to(device)
            for t in (self.carried, self.trust)
        ) + (self.weight,)


class _Painting:
    """One run's state as it climbs the ladder: the pixels, their average, the optimizer
    carried between scales, what has been reported."""

    def __init__(
        self, stylizer: Stylizer, opts, photo: Image.Image, callback, progress, temporal=None
    ):
        self.stylizer, self.opts, self.photo, self.callback = stylizer, opts, photo, callback
        self.temporal = temporal
        self.device = stylizer.device
        self.ladder, self.iterations = scale_ladder(opts), iterations_per_scale(opts)
        budget = opts.max_memory * 2**20 if opts.max_memory else _half_of_free_memory(self.device)
        shapes = [scaled_size(photo.size, size)[::-1] for size in self.ladder]
        tiles = [opts.tile or optimization_tile(h, w, budget) for h, w in shapes]
        self.tiles = [t if t and t < max(s) else None for t, s in zip(tiles, shapes, strict=True)]
        # At a tiled scale, each tile gets the scale's iterations.
        total = sum(
            n * (len(tile_grid(shape, t)) if t else 1)
            for n, shape, t in zip(self.iterations, shapes, self.tiles, strict=True)
        )
        self.bar = tqdm(total=total, disable=not progress, unit="it", dynamic_ncols=True)
        self.generator = torch.Generator().manual_seed(opts.seed) if opts.seed is not None else None
        self.started = time.perf_counter()
        self.x = self.average = self.step = self.content_t = None
        self.losses: dict[str, float] = {}
        self.sizes: list[tuple[int, int]] = []
        self.done, self.interrupted = 0, False
        self.balance: dict | None = None  # how the coarsest scale chose α, if it did

    def scale(self, index: int, size: int, paintings, blend, init) -> None:
        """Optimize one scale of the ladder, starting from the last one's picture."""
        opts, stylizer, n_iter, tile = (
            self.opts,
            self.stylizer,
            self.iterations[index],
            self.tiles[index],
        )
        where = f"scale {index + 1}/{len(self.ladder)} {size}px"
        self.bar.set_description(where + (f" in {tile}px tiles" if tile else ""))
        content_t = to_tensor(resize_longest(self.photo, size)).to(self.device)
        self.content_t = content_t
        self.sizes.append((content_t.shape[-1], content_t.shape[-2]))
        previous = self.average.value() if self.average else self.x
        self.average = None
        report = partial(self.report, index, size)
        if tile:
            self.x = stylizer.start(previous, content_t, init, self.generator, opts).detach()
            style = stylizer.style_targets(content_t, paintings, blend, size, opts, tile)
            tiled_scale(
                stylizer,
                self.x,
                content_t,
                _seen(content_t, opts),
                style,
                n_iter,
                tile,
                opts,
                report,
            )
            return
        target = stylizer.targets(content_t, paintings, blend, size, opts)
        if self.temporal is not None:
            target["temporal"] = self.temporal.at(content_t.shape[-2:], self.device)
        if index > 0 or not opts.content_target or n_iter == 0:
            self.optimize(index, target, previous, content_t, init, n_iter, report)
            return
        # The coarsest scale sets the balance: painted again with α moved toward the
        # content target until its content distance lands near it (methods/balance.py).
        goal, tries = balance.coarse_target(opts.content_target, len(self.ladder)), []
        while True:
            self.optimize(index, target, previous, content_t, init, n_iter, report)
            shown = self.average.value() if self.average else self.x
            with torch.no_grad():
                distance = content_distance(stylizer.vgg, shown, _seen(content_t, opts))
            tries.append((opts.content_weight, distance))
            if balance.settled(distance, goal) or len(tries) == balance.TRIES:
                break
            opts.content_weight = balance.next_weight(tries, goal)
        self.balance = {
            "content_target": opts.content_target,
            "content_weight": round(opts.content_weight, 4),
            "tries": [{"content_weight": round(w, 4), "distance": round(d, 4)} for w, d in tries],
        }

    def optimize(self, index, target, previous, content_t, init, n_iter, report) -> None:
        """Optimize one scale's pixels (untiled) from the last scale's picture or the init."""
        stylizer, opts = self.stylizer, self.opts
        x = self.x = stylizer.start(previous, content_t, init, self.generator, opts)
        self.step = Optimizer(x, opts, self.step if opts.warm_start and index else None)
        self.average = Average(opts.average) if opts.average and n_iter else None
        for it in range(1, n_iter + 1):
            losses = self.step(partial(stylizer.loss, x, target, opts))
            if self.average:
                self.average.update(x)
            shown = self.average.value() if self.average else x
            report(it, n_iter, losses, shown, content_t, pixels=x)

    def report(
        self, index, size, it, n_iter, losses, image, content_t, count=1, where=None, pixels=None
    ) -> None:
        """After `count` iterations: check, count, show, snapshot, call back."""
        if not all(math.isfinite(v) for v in losses.values()):
            raise DivergedError(
                f"the loss became non-finite at {size}px, iteration {it}: lower the learning "
                "rate or the style weight, or use the lbfgs optimizer"
            )
        self.losses, self.done = losses, self.done + count
        if where:
            self.bar.set_description(f"scale {index + 1}/{len(self.ladder)} {size}px {where}")
        self.bar.update(count)
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        every, folder = self.opts.save_every, self.opts.snapshots
        snapshot = bool(folder and every and it // every > (it - count) // every)
        if self.callback is not None or snapshot:
            shown = _finish(image.detach(), content_t, self.opts)
            if snapshot:
                save_image(
                    to_image(shown), Path(folder) / f"scale{index + 1}_{size}px_{it:05d}.png"
                )
            if self.callback is not None:
                raw = (image if pixels is None else pixels).detach()
                self.callback(Progress(index, size, it, n_iter, losses, shown, raw))

    def result(self) -> Result:
        opts = self.opts
        picture = self.average.value() if self.average else self.x
        output = _finish(picture.detach(), self.content_t, opts)
        return Result(
            image=carry_metadata(to_image(output), self.photo),
            pixels=output.float().cpu(),
            losses=self.losses,
            seconds=time.perf_counter() - self.started,
            iterations=self.done,
            sizes=self.sizes,
            device=str(self.device),
            interrupted=self.interrupted,
            options={
                **asdict(opts),
                "init": opts.init if isinstance(opts.init, str) else "image",
                "snapshots": str(opts.snapshots) if opts.snapshots else None,
                "balance": self.balance,
            },
        )


def _seen(content_t: torch.Tensor, opts) -> torch.Tensor:
    """The photo as the content loss sees it (its luminance when only that is styled)."""
    return color.luminance(content_t) if opts.preserve_color == "luminance" else content_t


def _finish(x: torch.Tensor, content_t: torch.Tensor, opts) -> torch.Tensor:
    """The picture a user sees from the optimized pixels: with "luminance", the photo's
    chroma put back (histogram mode recoloured the painting instead); blended with the
    photo by the strength."""
    keep = "luminance" if opts.preserve_color == "luminance" else None
    return finish(x, content_t, opts.strength, keep)


def _half_of_free_memory(device: torch.device) -> int | None:
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_memory()
    return free // 2 if free else None


def _is_named_init(init: object) -> bool:
    return isinstance(init, str) and init in ("content", "noise")
