"""Built-in models, found by name: every `*.safetensors` file shipped in this folder.

resolve_model("starry_night")      # a built-in's path
resolve_model("my/model.safetensors")  # a path passes through
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelError

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
