"""The process a command runs in: memory tuning, and its place among torchrun's processes.
The library leaves the process to its host; the command line and benchmarks set it."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def retain_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse rather than hand it back to the
    system. A run frees and allocates the same tens-of-MB activations every iteration;
    by default glibc maps blocks over its (moving) threshold anew and trims the top of its
    heap, so they come back page-faulted every time (docs/benchmarks.md). Here blocks up
    to 32 MB (the most glibc allows) come from the heap, which gives memory back only past
    1 GB free. Process-wide, so the CLI applies it and the library leaves it to its host.
    Returns whether it applied (glibc only)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError, TypeError):  # no mallopt there (macOS), or Windows
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and mallopt(_M_TRIM_THRESHOLD, 2**30))


def rank() -> int:
    """This process's number among torchrun's (0 alone)."""
    return int(os.environ.get("RANK", "0"))


def world() -> int:
    """How many processes torchrun started (1 alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def shard(items: Sequence) -> list:
    """This process's share of `items` under torchrun: every world()-th from rank()."""
    return list(items)[rank() :: world()]


def cache_dir() -> Path:
    """Where impasto keeps what it can build again (compiled graphs): $IMPASTO_CACHE, or
    impasto/ under $XDG_CACHE_HOME or ~/.cache."""
    if os.environ.get("IMPASTO_CACHE"):
        return Path(os.environ["IMPASTO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "impasto"


def cuda_device_present() -> bool:
    """Whether an NVIDIA GPU is there, told without importing torch (its driver's
    device nodes)."""
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/dxg"))


def local_device(device: str) -> str:
    """Under torchrun, "auto" or "cuda" is this process's own GPU (LOCAL_RANK)."""
    if world() > 1 and device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device
