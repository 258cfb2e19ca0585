"""Style transfer by optimization (Gatys, Ecker & Bethge 2015).

The output's pixels are optimized until a frozen VGG-19 sees the photo's content
(features of a middle layer) and the painting's style (Gram matrices of several
layers). Coarse-to-fine: each scale's result, upsampled, starts the next scale, which
is both faster and better at large sizes than starting big.

    stylizer = Stylizer()                       # loads VGG-19 once
    result = stylizer.run(photo, painting, size=512)
    result.image.save("out.png")
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .. import color
from ..devices import autocast, usable_precision
from ..errors import DivergedError, OptionError
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
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    STYLE_LOSSES,
    Moments,
    content_loss,
    style_target,
    tv_loss,
)
from ..nets.vgg import PADDINGS, POOLINGS, check_loss_layers, load_vgg
from ..nets.weights import VGGWeights, find_weights
from .lbfgs import LBFGS
from .tiles import (
    FEATURE_CONTEXT,
    OVERLAP,
    available_memory,
    blend_ramp,
    feature_tiles,
    optimization_tile,
    tile_starts,
)

OPTIMIZERS = ("lbfgs", "adam")
COLOR_MODES = ("luminance", "histogram")
PRECISIONS = ("fp32", "bf16")
TILE_VISIT = 25  # iterations on one tile before moving to the next
# The style weight each style loss gets unless one is given: they differ in units.
DEFAULT_STYLE_WEIGHTS = {"gram": 100.0, "moments": 1e7, "w2": 3e6}


@dataclass
class Options:
    """Every setting of a run; the CLI flags and API keywords have the same names.

    The defaults (the "balanced" preset) were chosen by measurement on the project's
    photo-painting pairs (docs/benchmarks.md, benchmarks/quality.py): the Wasserstein-2
    style loss, Adam with a moving average of its iterates, warm-started across a
    ladder of scales sqrt(2) apart from 128 px, replicate padding. Where Gatys's Gram
    loss over-paints the photo, this keeps it crisp under the painting's strokes and
    colours. `Options.preset("classic")` is Gatys et al. with L-BFGS.
    """

    size: int = 512
    iterations: int | Sequence[int] = 100  # per scale, or one number for every scale
    content_weight: float = 5.0
    style_weight: float | None = None  # None: DEFAULT_STYLE_WEIGHTS[style_loss]
    tv_weight: float = 300.0
    style_loss: str = "w2"  # gram | moments | w2 (see impasto.losses)
    content_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CONTENT_LAYERS))
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    style_weights: Sequence[float] | None = None  # blend of several styles
    style_scale: float = 1.0  # style image size relative to the output
    init: str | ImageSource = "content"  # content | noise | an image or its path
    optimizer: str = "adam"
    lr: float | None = None  # Adam's learning rate (0.02); L-BFGS's first step (0.01)
    history: int = 20  # L-BFGS curvature pairs: 2 image-sized tensors each
    # Exponential moving average of the iterates, with this decay (0: off). The average
    # is what is shown, saved and upsampled to start the next scale: it smooths out
    # Adam's jitter.
    average: float = 0.95
    warm_start: bool = True  # Adam: carry its moments, upsampled, to the next scale
    preserve_color: str | None = None  # luminance | histogram
    scales: Sequence[int] | None = None  # None: divide size by scale_step down to min_scale
    scale_step: float = 2**0.5
    min_scale: int = 128
    pooling: str = "max"
    padding: str = "replicate"  # of VGG's first layer: replicate paints fewer edge artefacts
    precision: str = "fp32"  # fp32 | bf16 (VGG's convolutions in bfloat16: ~1.9x faster on CPU)
    seed: int | None = None
    save_every: int = 0
    snapshots: str | os.PathLike | None = None
    # Scales too big for memory are optimized in overlapping tiles of this many px (each
    # tile gets the scale's iterations), pulled toward the whole style's Gram matrices.
    tile: int | None = None  # None: the largest tile within max_memory
    max_memory: int | None = None  # MB; None: half the memory free when the run starts

    @classmethod
    def preset(cls, name: str = "balanced", **changes) -> Options:
        """The options of a preset (`PRESETS`), with `changes` on top."""
        if name not in PRESETS:
            raise OptionError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

    def scale_ladder(self) -> list[int]:
        if self.scales:
            return [int(s) for s in self.scales]
        ladder = [self.size]
        while round(ladder[0] / self.scale_step) >= self.min_scale:
            ladder.insert(0, round(ladder[0] / self.scale_step))
        return ladder

    def iterations_per_scale(self) -> list[int]:
        n = len(self.scale_ladder())
        if isinstance(self.iterations, int):
            return [self.iterations] * n
        its = [int(i) for i in self.iterations]
        if len(its) != n:
            raise OptionError(f"--iterations lists {len(its)} numbers for {n} scales")
        return its

    def validate(self) -> None:
        choices = (("optimizer", OPTIMIZERS), ("precision", PRECISIONS), ("pooling", POOLINGS),
                   ("padding", PADDINGS), ("style_loss", STYLE_LOSSES))  # fmt: skip
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise OptionError(f"{name} must be one of {', '.join(allowed)}")
        if self.scale_step <= 1:
            raise OptionError("scale_step must be above 1")
        if self.min_scale < 16:
            raise OptionError("min_scale must be at least 16 px")
        if not 0 <= self.average < 1:
            raise OptionError("average (the decay of the moving average) must be in [0, 1)")
        if self.preserve_color not in (None, *COLOR_MODES):
            raise OptionError(f"preserve_color must be one of {', '.join(COLOR_MODES)}")
        if self.size < 16:
            raise OptionError("size must be at least 16 px")
        if any(s < 16 for s in self.scale_ladder()):
            raise OptionError("every scale must be at least 16 px")
        if self.tile is not None and self.tile < 2 * OVERLAP:
            raise OptionError(f"tile must be at least {2 * OVERLAP} px")
        if self.lr is not None and not self.lr > 0:
            raise OptionError("lr must be positive")
        if self.history < 1:
            raise OptionError("history (L-BFGS curvature pairs) must be at least 1")
        if self.max_memory is not None and self.max_memory < 1024:
            raise OptionError("max_memory must be at least 1024 MB")
        if any(i < 0 for i in self.iterations_per_scale()):
            raise OptionError("iterations cannot be negative")
        if self.style_scale <= 0:
            raise OptionError("style_scale must be positive")
        if min(self.content_weight, self.style_weight or 0, self.tv_weight) < 0:
            raise OptionError("loss weights cannot be negative")
        check_loss_layers("content", self.content_layers)
        check_loss_layers("style", self.style_layers)
        if not self.style_layers and self.style_weight != 0:
            raise OptionError("no style layers given")


# Named sets of options. "balanced" is Options' own defaults; the others change only
# what they name, and flags given with a preset override it.
PRESETS: dict[str, dict] = {
    "balanced": {},
    "more-style": {"content_weight": 1.5},
    "more-photo": {"content_weight": 15.0},
    # Gatys et al. as the core benchmark measures it: Gram loss, L-BFGS, octave scales.
    "classic": {
        "style_loss": "gram",
        "optimizer": "lbfgs",
        "average": 0.0,
        "scale_step": 2.0,
        "min_scale": 256,
        "pooling": "max",
        "padding": "zeros",
        "content_weight": 5.0,
        "tv_weight": 300.0,
        "iterations": 300,
        "style_layers": dict(DEFAULT_STYLE_LAYERS),
    },
}


@dataclass
class Progress:
    """What a callback receives after each iteration."""

    scale: int  # index into the ladder
    size: int
    iteration: int  # within this scale, from 1
    iterations: int
    losses: dict[str, float]
    image: torch.Tensor  # current output, RGB [0, 1], (1, 3, H, W); do not modify
    # The pixels being optimized, unclamped and not averaged, (1, 3, H, W): what the losses
    # are computed on (an iteration reports the loss of the pixels it started from, those
    # the last iteration left); do not modify
    pixels: torch.Tensor


@dataclass
class Result:
    image: Image.Image
    losses: dict[str, float]
    seconds: float
    iterations: int
    sizes: list[tuple[int, int]]
    device: str
    interrupted: bool = False
    options: dict = field(default_factory=dict)
    pixels: torch.Tensor | None = None  # the picture as floats in [0, 1], (1, 3, H, W), CPU


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
        *,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = True,
        **options,
    ) -> Result:
        """Stylize `content` like `style` (one image or a list to blend).

        `options` are `Options` fields, or `options=Options(...)`; `preset=NAME` starts
        from a preset (`PRESETS`) that the other keywords override."""
        preset = options.pop("preset", None)
        opts = options.pop("options", None)
        if opts is not None and preset is not None:
            raise OptionError("give options or a preset, not both")
        opts = replace(opts or Options.preset(preset or "balanced"))  # never edit the caller's
        for key, value in options.items():
            if not hasattr(opts, key):
                raise OptionError(f"unknown option {key!r}")
            setattr(opts, key, value)
        opts.validate()
        opts.precision = usable_precision(opts.precision, self.device)
        if opts.style_weight is None:
            opts.style_weight = DEFAULT_STYLE_WEIGHTS[opts.style_loss]
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        blend = blend_weights(opts.style_weights, len(styles))
        content_image = load_image(content)
        style_images = [load_image(s) for s in styles]
        init_image = None if _is_named_init(opts.init) else load_image(opts.init)
        if opts.snapshots is not None:
            Path(opts.snapshots).mkdir(parents=True, exist_ok=True)

        self.vgg.pooling, self.vgg.padding = opts.pooling, opts.padding
        generator = torch.Generator().manual_seed(opts.seed) if opts.seed is not None else None
        ladder, iterations = opts.scale_ladder(), opts.iterations_per_scale()
        budget = opts.max_memory * 2**20 if opts.max_memory else _half_of_free_memory(self.device)
        shapes = [scaled_size(content_image.size, size)[::-1] for size in ladder]
        tiles = [opts.tile or optimization_tile(h, w, budget) for h, w in shapes]
        tiles = [
            t if t and t < max(shape) else None for t, shape in zip(tiles, shapes, strict=True)
        ]
        # At a tiled scale, each tile gets the scale's iterations.
        total = sum(n * (len(_tile_grid(shape, t)) if t else 1)
                    for n, shape, t in zip(iterations, shapes, tiles, strict=True))  # fmt: skip
        bar = tqdm(total=total, disable=not progress, unit="it", dynamic_ncols=True)
        start = time.perf_counter()
        x = average = None
        losses: dict[str, float] = {}
        sizes, done, interrupted = [], 0, False
        step = None

        def report(index, size, it, n_iter, new_losses, image, content_t, count=1, where=None,
                   pixels=None):  # fmt: skip
            """After `count` iterations: check, count, show, snapshot, call back."""
            nonlocal losses, done
            losses = new_losses
            if not all(math.isfinite(v) for v in losses.values()):
                raise DivergedError(
                    f"the loss became non-finite at {size}px, iteration {it}: lower "
                    "--lr or --style-weight, or use --optimizer lbfgs"
                )
            done += count
            if where:
                bar.set_description(f"scale {index + 1}/{len(ladder)} {size}px {where}")
            bar.update(count)
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            every = opts.save_every
            snapshot = bool(opts.snapshots and every and it // every > (it - count) // every)
            if callback is not None or snapshot:
                shown = _finish(image.detach(), content_t, opts)
                if snapshot:
                    name = f"scale{index + 1}_{size}px_{it:05d}.png"
                    save_image(to_image(shown), Path(opts.snapshots) / name)
                if callback is not None:
                    raw = (image if pixels is None else pixels).detach()
                    callback(Progress(index, size, it, n_iter, losses, shown, raw))

        try:
            for index, (size, n_iter, tile) in enumerate(
                zip(ladder, iterations, tiles, strict=True)
            ):
                where = f"scale {index + 1}/{len(ladder)} {size}px"
                bar.set_description(where + (f" in {tile}px tiles" if tile else ""))
                content_t = to_tensor(resize_longest(content_image, size)).to(self.device)
                sizes.append((content_t.shape[-1], content_t.shape[-2]))
                previous = average.value() if average else x
                average = None
                if tile:
                    x = self._start(previous, content_t, init_image, generator, opts).detach()
                    style = self._style_targets(content_t, style_images, blend, size, opts, tile)
                    self._tiled_scale(x, content_t, style, n_iter, tile, opts,
                                      partial(report, index, size))  # fmt: skip
                    continue
                target = self._targets(content_t, style_images, blend, size, opts)
                x = self._start(previous, content_t, init_image, generator, opts)
                step = Optimizer(x, opts, step if opts.warm_start and index else None)
                average = Average(opts.average) if opts.average and n_iter else None
                for it in range(1, n_iter + 1):
                    new_losses = step(partial(self._loss, x, target, opts))
                    if average:
                        average.update(x)
                    shown = average.value() if average else x
                    report(index, size, it, n_iter, new_losses, shown, content_t, pixels=x)
        except KeyboardInterrupt:
            if x is None:
                raise
            interrupted = True  # keep what was painted so far
        finally:
            bar.close()
        picture = average.value() if average else x
        output = _finish(picture.detach(), content_t, opts)
        return Result(
            image=carry_metadata(to_image(output), content_image),
            pixels=output.float().cpu(),
            losses=losses,
            seconds=time.perf_counter() - start,
            iterations=done,
            sizes=sizes,
            device=str(self.device),
            interrupted=interrupted,
            options={
                **asdict(opts),
                "init": opts.init if isinstance(opts.init, str) else "image",
                "snapshots": str(opts.snapshots) if opts.snapshots else None,
            },
        )

    @torch.no_grad()
    def _targets(self, content_t, style_images, blend, size, opts) -> dict:
        """Content features and style statistics that this scale aims at."""
        style = self._style_targets(content_t, style_images, blend, size, opts)
        return {"content": self._content_features(_seen(content_t, opts), opts), "style": style}

    def _features(self, image: torch.Tensor, layers, precision: str) -> dict[str, torch.Tensor]:
        """Target features, computed as the iterations compute theirs. A bf16 VGG is a
        slightly different network (its weights rounded): its Grams of the same style image
        differ from float32's by ~0.65% at relu4_1, and near the end, where the content and
        style gradients nearly cancel, float32 targets made its gradient 98% off float32's
        (512 px: 352 iterations to the float32 textbook's 300-iteration loss; with targets
        of its own, 322)."""
        with autocast(self.device, precision):
            return self.vgg(image, layers)

    def _content_features(self, image: torch.Tensor, opts: Options) -> dict[str, torch.Tensor]:
        features = self._features(image, opts.content_layers, opts.precision)
        return {name: f.float() for name, f in features.items()}

    @torch.no_grad()
    def _style_targets(self, content_t, style_images, blend, size, opts, tile=None) -> dict:
        """What the style loss compares against at this scale, per layer, from the
        blended moments of the style images; with `tile`, a style image is seen in
        tiles and their sums make the whole image's moments."""
        style_size = max(16, round(size * opts.style_scale))
        mean = dict.fromkeys(opts.style_layers, 0.0)
        square = dict.fromkeys(opts.style_layers, 0.0)
        for image, weight in zip(style_images, blend, strict=True):
            style_t = to_tensor(resize_longest(image, style_size)).to(self.device)
            if opts.preserve_color == "luminance":
                style_t = color.match_luminance(style_t, content_t)
            elif opts.preserve_color == "histogram":
                style_t = color.match_color(style_t, content_t)
            if tile and max(style_t.shape[-2:]) > tile:
                found = self._tiled_moments(style_t, list(opts.style_layers), tile, opts.precision)
            else:
                features = self._features(style_t, opts.style_layers, opts.precision)
                found = {name: Moments.of(features[name]) for name in opts.style_layers}
            for name in opts.style_layers:  # moments, unlike covariances, blend linearly
                mean[name] = mean[name] + weight * found[name].mean
                square[name] = square[name] + weight * found[name].square
        return {name: style_target(opts.style_loss, Moments(mean[name], square[name]))
                for name in opts.style_layers}  # fmt: skip

    def _tiled_moments(
        self, image: torch.Tensor, layers: list[str], tile: int, precision: str = "fp32"
    ) -> dict:
        """Moments of a whole image's features, from sums over its tiles' own features."""
        sums: dict[str, torch.Tensor] = {}
        squares: dict[str, torch.Tensor] = {}
        counts = dict.fromkeys(layers, 0)
        for own in feature_tiles(
            image, tile, FEATURE_CONTEXT, lambda w: self._features(w, layers, precision)
        ):
            for name, flat in own.items():
                flat = flat.float()
                sums[name] = sums.get(name, 0) + flat.sum(1)
                squares[name] = squares.get(name, 0) + flat @ flat.T
                counts[name] += flat.shape[1]
        return {n: Moments(sums[n] / counts[n], squares[n] / counts[n]) for n in layers}

    def _tiled_scale(self, x, content_t, style, n_iter, tile, opts, report) -> None:
        """Optimize `x` in place tile by tile: each visit runs up to TILE_VISIT iterations
        on one overlapping tile (its own content, the whole style's statistics) and blends it
        back with ramps over the overlaps; visits sweep the tiles until each tile has had
        `n_iter` iterations. Memory follows the tile, not the picture."""
        h, w = x.shape[-2:]
        seen = _seen(content_t, opts)
        grid = _tile_grid((h, w), tile)
        done = 0
        for first in range(0, n_iter, TILE_VISIT):
            k = min(TILE_VISIT, n_iter - first)
            for number, (y, x0) in enumerate(grid, 1):
                region = (..., slice(y, y + tile), slice(x0, x0 + tile))
                window = x[region].clone().requires_grad_(True)
                with torch.no_grad():
                    content = self._content_features(seen[region], opts)
                target = {"content": content, "style": style}
                step = Optimizer(window, opts)
                for _ in range(k):
                    losses = step(partial(self._loss, window, target, opts))
                ramp = blend_ramp(window.shape[-2:], (y > 0, y + tile < h),
                                  (x0 > 0, x0 + tile < w)).to(x.device)  # fmt: skip
                with torch.no_grad():
                    x[region] = x[region] * (1 - ramp) + window.detach().clamp(0, 1) * ramp
                done += k
                where = f"tile {number}/{len(grid)} ({tile}px)"
                report(done, n_iter * len(grid), losses, x, content_t, count=k, where=where)

    def _start(self, previous, content_t, init_image, generator, opts) -> torch.Tensor:
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

    def _loss(self, x: torch.Tensor, target: dict, opts: Options) -> dict[str, torch.Tensor]:
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
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


def _seen(content_t: torch.Tensor, opts: Options) -> torch.Tensor:
    """The photo as the content loss sees it (its luminance when only that is styled)."""
    return color.luminance(content_t) if opts.preserve_color == "luminance" else content_t


def _tile_grid(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    step = tile - OVERLAP
    return [(y, x) for y in tile_starts(shape[0], tile, step)
            for x in tile_starts(shape[1], tile, step)]  # fmt: skip


def _half_of_free_memory(device: torch.device) -> int | None:
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_memory()
    return free // 2 if free else None


def _is_named_init(init: object) -> bool:
    return isinstance(init, str) and init in ("content", "noise")


def blend_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if n == 0:
        raise OptionError("give at least one style image")
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise OptionError(f"{len(weights)} style weights for {n} style images")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise OptionError("style weights must be non-negative and not all zero")
    total = float(sum(weights))
    return [w / total for w in weights]


def _finish(x: torch.Tensor, content_t: torch.Tensor, opts: Options) -> torch.Tensor:
    """The picture a user sees from the optimized pixels."""
    if opts.preserve_color == "luminance":
        return color.combine_luminance(x, content_t)
    return x.clamp(0, 1)


class Average:
    """Bias-corrected exponential moving average of the iterates, as Adam's moments are."""

    def __init__(self, decay: float):
        self.decay, self.total, self.weight = decay, None, 0.0

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        if self.total is None:
            self.total = torch.zeros_like(x)
        self.total.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)
        self.weight = self.weight * self.decay + (1 - self.decay)

    def value(self) -> torch.Tensor:
        return self.total / self.weight


class Optimizer:
    """One iteration per call: evaluates the loss once, updates `x`, returns the losses.
    `previous`, the last scale's optimizer, warm-starts Adam: its moments, resized to
    `x`, so the new scale neither restarts Adam's bias correction nor its step sizes."""

    def __init__(self, x: torch.Tensor, opts: Options, previous: Optimizer | None = None):
        self.x, self.lbfgs = x, opts.optimizer == "lbfgs"
        if self.lbfgs:
            self.optim = LBFGS(x, history=opts.history, first_step=opts.lr or 0.01)
            return
        self.optim = torch.optim.Adam([x], lr=opts.lr or 0.02, betas=(0.9, 0.99))
        old = previous.optim.state.get(previous.x) if previous is not None else None
        if old:
            size = x.shape[-2:]
            self.optim.state[x] = {
                "step": old["step"].clone(),
                "exp_avg": F.interpolate(old["exp_avg"], size, mode="bicubic"),
                "exp_avg_sq": F.interpolate(old["exp_avg_sq"], size, mode="bilinear").relu_(),
            }

    def __call__(self, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, float]:
        values = {}

        def closure() -> torch.Tensor:
            self.x.grad = None
            terms = compute()
            terms["total"].backward()
            values.update({k: float(v.detach()) for k, v in terms.items()})
            return terms["total"]

        if self.lbfgs:
            self.optim.step(closure)
        else:
            closure()
            self.optim.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
        return values
