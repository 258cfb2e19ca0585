"""Pick the torch device a run uses."""

from __future__ import annotations

import torch

from .errors import OptionError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto` is CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if isinstance(name, torch.device):
        return name
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise OptionError(f"unknown device {name!r} (use one of: {', '.join(DEVICES)})")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: no CUDA GPU is available to this torch build")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError("--device mps: Apple's MPS backend is not available here")
    return torch.device(name)
