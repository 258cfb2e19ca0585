"""Optimization options from a preset (options.PRESETS), and the checks that look at
several options at once (each option alone is checked where it is declared)."""

from __future__ import annotations

from dataclasses import replace

from ..errors import OptionError
from ..nets.vgg import check_loss_layers
from ..options import PRESETS, OptimizeOptions, check, update
from .schedule import iterations_per_scale, scale_ladder
from .tiles import OVERLAP


def preset(name: str = "balanced", **changes) -> OptimizeOptions:
    """The options of preset `name`, with `changes` (OptimizeOptions' fields) on top."""
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    return update(OptimizeOptions(**PRESETS[name]), changes, "optimize")


def resolve(options: OptimizeOptions | None, preset_name: str | None, changes: dict):
    """A run's options: `options` (or a preset's) with `changes` on top, all checked; the
    caller's object is never edited."""
    if options is not None and preset_name is not None:
        raise OptionError("give options or a preset, not both")
    base = replace(options) if options is not None else preset(preset_name or "balanced")
    weights = {"content_weight", "style_weight"} & changes.keys()
    if weights and "content_target" not in changes:  # weights given: the balance as given
        changes = {**changes, "content_target": 0.0}
    opts = update(base, changes, "optimize")
    validate(opts)
    return opts


def validate(opts: OptimizeOptions) -> None:
    """Every option in its bounds, and the options that depend on each other agreeing."""
    check(opts)
    if opts.size < 16 or any(s < 16 for s in scale_ladder(opts)):
        raise OptionError("every scale must be at least 16 px")
    if opts.tile is not None and opts.tile < 2 * OVERLAP:
        raise OptionError(f"tile must be at least {2 * OVERLAP} px")
    iterations_per_scale(opts)  # one number per scale, when several are given
    check_loss_layers("content", opts.content_layers)
    check_loss_layers("style", opts.style_layers)
    if not opts.style_layers and opts.style_weight != 0:
        raise OptionError("no style layers given")
