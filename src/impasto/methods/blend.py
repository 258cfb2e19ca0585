"""Blends of styles: weights over several paintings, or over a network's styles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

import numpy as np

from ..errors import OptionError
from ..io.images import IMAGE_EXTENSIONS

StyleSpec = str | int | Sequence[float] | dict[str, float] | None


def blend_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Several styles' blend weights, summing to 1 (None: equal)."""
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


def style_mix(spec: StyleSpec, names: Sequence[str]) -> np.ndarray:
    """A mix of a network's styles -> weights over `names`, summing to 1.

    `spec` is None (the first style), an index or a name (a unique prefix will do),
    `"starry_night:0.6,udnie:0.4"` or `"0:0.6,3:0.4"`, a {name: weight} dict, or a
    list of one weight per style.
    """
    n = len(names)
    weights = np.zeros(n, dtype=np.float32)
    if spec is None:
        weights[0] = 1
    elif isinstance(spec, int):
        weights[_style_index(spec, names)] = 1
    elif isinstance(spec, str):
        for item in filter(None, (t.strip() for t in spec.split(","))):
            key, _, w = item.partition(":")
            try:
                weights[_style_index(key, names)] += float(w) if w else 1.0
            except ValueError:
                raise OptionError(f"bad style weight in {item!r}") from None
    elif isinstance(spec, dict):
        for key, w in spec.items():
            weights[_style_index(key, names)] += float(w)
    else:
        if len(spec) != n:
            raise OptionError(f"{len(spec)} style weights for a model with {n} styles")
        weights = np.array([float(w) for w in spec], dtype=np.float32)
    if not np.isfinite(weights).all():
        raise OptionError("style weights must be finite numbers")
    if (weights < 0).any() or weights.sum() <= 0:
        raise OptionError("style weights must be non-negative and not all zero")
    return weights / weights.sum()


def _style_index(key: str | int, names: Sequence[str]) -> int:
    if isinstance(key, int) or key.isdigit():
        index = int(key)
        if not 0 <= index < len(names):
            raise OptionError(f"style index {index} out of range (the model has {len(names)})")
        return index
    if key in names:
        return list(names).index(key)
    matches = [i for i, name in enumerate(names) if name.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    hint, file = "", PurePath(key)
    if file.stem in names:  # a file named like one of the network's styles
        hint = f"; for this network's style of that name, give the name alone: {file.stem}"
    elif file.suffix.lower() in IMAGE_EXTENSIONS:  # a painting, given to a network
        hint = (
            "; a painting's file is a style for the one-pass method (impasto arbitrary) "
            "or for training a network on it (impasto train)"
        )
    raise OptionError(f"unknown style {key!r}; this model has: {', '.join(names)}{hint}")
