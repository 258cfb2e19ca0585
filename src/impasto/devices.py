"""Pick the torch device a run uses, and the precision it can run fast."""

from __future__ import annotations

import logging

import torch

from .errors import OptionError

DEVICES = ("auto", "cpu", "cuda", "mps")
log = logging.getLogger(__name__)


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
        raise OptionError("device cuda: no CUDA GPU is available to this torch build")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device mps: Apple's MPS backend is not available here")
    return torch.device(name)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 convolutions run natively on `device`: on GPUs, and on CPUs whose
    oneDNN has bf16 kernels (AVX-512 or AMX on x86, bf16 on Arm). Elsewhere (an AVX2-only
    CPU) torch falls back to a reference convolution far slower than fp32."""
    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check: trust the request
        return True


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The context a network runs in at `precision` (one `usable_precision` returned):
    bf16 autocast, or none."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")


def usable_precision(precision: str, device: torch.device) -> str:
    """`precision`, unless it is bf16 on a CPU without bf16 kernels: then fp32, with a
    warning, since such a run would be slower rather than faster. "auto" (for methods
    whose pictures bf16 leaves as they are) is bf16 on CPUs with bf16 kernels and on CUDA
    GPUs that support it, else fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if device.type == "cpu" and bf16_is_fast(device) else "fp32"
    if precision == "bf16" and not bf16_is_fast(device):
        log.warning(
            "impasto: this CPU has no bfloat16 kernels (it needs AVX-512 or AMX), so bf16 "
            "would be far slower than fp32 here: running in fp32"
        )
        return "fp32"
    return precision
