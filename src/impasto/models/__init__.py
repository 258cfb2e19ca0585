"""Built-in models, found by name: every `*.safetensors` file shipped in this folder.

resolve_model("starry_night")      # a built-in's path
resolve_model("my/model.safetensors")  # a path passes through
net, meta = load_network("styles", "transformer", build)  # either, loaded and frozen
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError
from ..io.modelfile import fit_weights, load_model

if TYPE_CHECKING:
    from torch import nn

FOLDER = Path(__file__).parent


def builtin_models() -> dict[str, Path]:
    """Name -> path of every model shipped with impasto."""
    return {p.stem: p for p in sorted(FOLDER.glob("*.safetensors"))}


def resolve_model(spec: str | os.PathLike) -> Path:
    """A model file path, or the path of the built-in model called `spec`."""
    path = Path(spec)
    if path.is_file():
        return path
    builtins = builtin_models()
    if str(spec) in builtins:
        return builtins[str(spec)]
    known = ", ".join(builtins) or "none installed"
    raise ModelError(f"{spec}: no such model file or built-in model (built-ins: {known})")


def load_network(
    spec: str | os.PathLike, kind: str, build: Callable[[dict], nn.Module]
) -> tuple[nn.Module, dict]:
    """A model file (a training checkpoint will do) or built-in name -> (network in eval
    mode with frozen weights, metadata). `build` makes the network from the metadata's
    "architecture"; a file of another kind, or with weights that do not fit, is refused."""
    path = resolve_model(spec)
    state, meta = load_model(path, kind=kind)
    net = build(meta["architecture"])
    fit_weights(net, state, str(path))
    return net.eval().requires_grad_(False), meta
