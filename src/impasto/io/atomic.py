"""Atomic writes: a file appears whole, or not at all, even if the process dies."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError


def make_folder(path: str | os.PathLike, what: str = "folder") -> Path:
    """Make folder `path` (and its parents), or say in one line why it cannot be."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot make the {what} ({e.strerror})") from None
    return folder


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file beside `path` for writing; rename it over `path` on success."""
    out = Path(path)
    if not out.parent.is_dir():
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        raise OutputError(f"{out}: cannot write in {out.parent} ({e.strerror})") from None
    try:
        os.close(fd)
        with open(tmp, "wb") as f:  # by name: f.name is the path (FFmpeg reopens it)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as e:  # a full disk, a folder that went away: the user's to fix
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot write ({e.strerror or e})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
