"""The web app's settings, declared once: `impasto serve` builds its flags from them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import OptionError
from ..options import opt

METHODS = ("fast", "arbitrary", "optimize")
VIDEO_METHODS = ("fast", "arbitrary")  # one pass a frame; optimization paints photos
VIDEO_OPTIONS = ("consistency", "consistency_strength")  # Media's, that a video job takes
OPTIMIZE_OPTIONS = ("iterations",)  # OptimizeOptions' own, that an optimize job takes


def store_url(text: str) -> str:
    """A shared store's address: postgresql://user:password@host:port/database."""
    if not text.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"a postgresql:// URL, not {text!r}")
    return text


def store_from(given: str | None) -> str | None:
    """The shared store asked for: the flag, else $IMPASTO_STORE (which keeps a password
    out of the process list), checked."""
    url = given if given is not None else os.environ.get("IMPASTO_STORE") or None
    try:
        return None if url is None else store_url(url)
    except ValueError as e:
        raise OptionError(f"$IMPASTO_STORE must be {e}") from None


def method_list(text: str) -> tuple[str, ...]:
    """`fast,arbitrary` -> ("fast", "arbitrary"), each one of METHODS."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ValueError(f"methods are {', '.join(METHODS)}, not {text!r}")
    return names


@dataclass
class Limits:
    """What one upload and one job may ask for."""

    upload_mb: float = opt(
        20.0, "largest upload, MB", above=0.0, high=16384.0, flag="--max-upload-mb"
    )
    pixels: int = opt(
        40_000_000, "most pixels of an uploaded image", low=4096, high=10**9, flag="--max-pixels"
    )
    side: int = opt(1024, "longest side of a result, px", low=64, high=16384, flag="--max-size")
    video_seconds: float = opt(
        30.0,
        "longest uploaded video, seconds (videos are painted by fast and arbitrary jobs)",
        above=0.0,
        high=86400.0,
        flag="--max-video-seconds",
    )
    iterations: int = opt(
        300, "most optimization iterations per scale", low=1, high=100_000, flag="--max-iterations"
    )
    queue: int = opt(
        32, "jobs waiting; more are refused (503)", low=1, high=100_000, flag="--max-queue"
    )
    job_seconds: float = opt(
        600.0,
        "a running job is stopped after this long, seconds",
        above=0.0,
        high=7 * 86400,
        flag="--job-timeout",
    )

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 2**20)


@dataclass
class Server:
    """Where the server listens, who may use it, where it keeps its jobs."""

    host: str = opt("127.0.0.1", "address to listen on (0.0.0.0: every interface)")
    port: int = opt(8000, "port", low=1, high=65535)
    workers: int = opt(1, "jobs run at once", low=0, high=256)
    data_dir: str = opt("impasto-data", "job records and results", metavar="DIR")
    token: str | None = opt(None, "require this bearer token (default: $IMPASTO_TOKEN)")
    fresh: bool = opt(False, "if the job store cannot be read, keep it aside and start anew")
    store: str | None = opt(
        None,
        "a job store shared by servers and `impasto worker`s on many machines: "
        "postgresql://user@host/database (default: $IMPASTO_STORE, else SQLite in "
        "--data-dir, run by --workers threads)",
        metavar="URL",
        parse=store_url,
    )


@dataclass
class Worker:
    """`impasto worker`: runs the jobs of a shared store, wherever it is started."""

    store: str | None = opt(
        None,
        "the shared job store, postgresql://… (default: $IMPASTO_STORE)",
        metavar="URL",
        parse=store_url,
    )
    methods: tuple = opt(
        METHODS, "the methods this worker runs, comma-separated", parse=method_list, metavar="LIST"
    )
    concurrency: int = opt(1, "jobs run at once (each keeps its own models)", low=1, high=64)
    lease: float = opt(
        30.0,
        "seconds without a heartbeat after which a worker's job goes to another",
        low=4.0,
        high=3600.0,
    )
