"""Model files: safetensors weights with impasto's JSON metadata in the header.

One file holds both, so a model cannot lose its description. The metadata records
what rebuilds the network (`architecture`), how it was made (`training`), and the
SHA-256 of the weights, checked on every load. Nothing here unpickles: a model file
from a stranger can at worst be refused.

    save_model("starry.safetensors", net.state_dict(), {"architecture": {...}})
    state, meta = load_model("starry.safetensors")
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors import SafetensorError

from .._version import __version__
from ..errors import ModelError
from .atomic import atomic_write

if TYPE_CHECKING:
    import torch

METADATA_KEY = "impasto"


def weights_sha256(state: Mapping[str, torch.Tensor | np.ndarray]) -> str:
    """A digest of names, dtypes, shapes and bytes, independent of file layout (and of
    whether the weights are torch tensors or numpy arrays: dtypes are named as torch's)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        if isinstance(value, np.ndarray):
            array, dtype = np.ascontiguousarray(value), f"torch.{value.dtype}"
        else:
            array, dtype = value.detach().cpu().contiguous().numpy(), str(value.dtype)
        digest.update(f"{name}|{dtype}|{tuple(array.shape)}|".encode())
        digest.update(array.reshape(-1).view(np.uint8).tobytes())
    return digest.hexdigest()


def save_model(path: str | os.PathLike, state: Mapping[str, torch.Tensor], metadata: dict) -> dict:
    """Write weights and metadata atomically; returns the metadata as written."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {
        **metadata,
        "impasto_version": __version__,
        "created": metadata.get("created")
        or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sha256": weights_sha256(tensors),
    }
    with atomic_write(path) as f:
        f.write(save(tensors, metadata={METADATA_KEY: json.dumps(meta)}))
    return meta


# What each kind of model file is, in the words of the commands that use it
KINDS = {
    "transformer": "a feed-forward network: impasto fast",
    "decoders": "a one-pass network: impasto arbitrary",
}


def load_model(
    source: str | os.PathLike | bytes, kind: str | None = None, arrays: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a model file -> (state dict, metadata), checking format, kind and hash; the
    weights as torch tensors, or with `arrays` as numpy arrays (no torch needed)."""
    if arrays:
        from safetensors.numpy import load
    else:
        from safetensors.torch import load
    label = "model" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"{label}: no such model file")
        data = path.read_bytes()
    try:
        state = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {})[METADATA_KEY])
    except (SafetensorError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{label}: not an impasto model file (safetensors with metadata)") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("architecture", {}), dict):
        raise ModelError(f"{label}: its metadata is not an impasto model's (not a JSON object)")
    if kind is not None and meta.get("architecture", {}).get("kind") != kind:
        found = meta.get("architecture", {}).get("kind", "unknown")
        both = found in KINDS and kind in KINDS  # then say which is which
        is_, wanted = (f"{k} model ({KINDS[k]})" if both else f"{k} model" for k in (found, kind))
        raise ModelError(f"{label}: is a {is_}, not a {wanted}")
    if meta.get("sha256") != weights_sha256(state):
        raise ModelError(f"{label}: weights do not match their recorded SHA-256 (corrupt file?)")
    for name, value in state.items():
        values = value if isinstance(value, np.ndarray) else value.detach().float().cpu().numpy()
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ModelError(f"{label}: {name} holds numbers that are not finite")
    return state, meta


TRAINING_ONLY = ("optim.", "embed.")  # checkpoint tensors that are not the network's


def fit_weights(net: torch.nn.Module, state: Mapping[str, torch.Tensor], label: str) -> None:
    """Load `state` into `net` as float32, ignoring a checkpoint's training-only tensors
    (the optimizer's; a distilled encoder's embedding maps); a file whose weights do not
    match the network it describes gets a clear error."""
    state = {k: v.float() for k, v in state.items() if not k.startswith(TRAINING_ONLY)}
    expected = net.state_dict()
    wrong = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
    extra = [k for k in state if k not in expected]
    if wrong or extra:
        raise ModelError(
            f"{label}: weights do not fit the recorded architecture "
            f"({len(wrong)} missing or misshapen, {len(extra)} unexpected, such as "
            f"{(wrong + extra)[0]})"
        )
    net.load_state_dict(state)
