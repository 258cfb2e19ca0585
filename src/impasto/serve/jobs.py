"""Jobs of the web app: records in SQLite, files on disk, a bounded pool of worker threads.

A job paints a photo (its result a PNG) or, with the one-pass methods, a short video (an
MP4, its progress counted in frames, its snapshots the frames as they come).

A job's life: queued -> running -> done | failed | cancelled. Its inputs are written to
its own folder before it is queued, so a job survives a restart: on start-up every job
the last process left queued or running is queued again (in the order it came), and
finished results stay where they are. Workers keep their models loaded between jobs.
"""

from __future__ import annotations

import io
import json
import queue
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from ..errors import ImpastoError, OutputError
from ..io.atomic import atomic_write, make_folder
from ..io.images import load_image
from .options import METHODS, VIDEO_OPTIONS, Limits

FINISHED = ("done", "failed", "cancelled")
SHUTDOWN = "the server shut down while the job ran"
SNAPSHOT_SECONDS = 1.0  # optimize: at most one snapshot image a second


STORE_PATIENCE = 300.0  # s a store call keeps retrying a locked database before it gives up
WORKER_PAUSE = 1.0  # s a worker waits after an error outside any job before going on


class QueueFull(Exception):
    """No room in the queue: the client should retry later."""


class StoreBusy(Exception):
    """The job store stayed locked past its patience: the client should retry later."""


class JobStopped(Exception):
    """Raised inside a job's progress callback to stop it (cancelled or out of time)."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    method TEXT NOT NULL,
    options TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    losses TEXT,
    error TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL
)
"""


class JobStore:
    """Job records in one SQLite file; safe to call from any thread. A database another
    process holds locked delays a call (retried with backoff for up to `patience` s)
    rather than failing it."""

    def __init__(self, path: Path, patience: float = STORE_PATIENCE, fresh: bool = False):
        self.patience = patience
        try:
            self._open(path)
        except sqlite3.DatabaseError as e:
            if not fresh:
                raise OutputError(
                    f"{path}: not a readable job store ({e}); move it aside, or "
                    "start with --fresh to keep it aside and begin anew"
                ) from None
            aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            path.rename(aside)
            self._open(path)

    def _open(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=1.0)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._call(lambda db: (db.execute("PRAGMA journal_mode=WAL"), db.execute(SCHEMA)))

    def _call(self, work: Callable[[sqlite3.Connection], object]):
        """Run `work` on the connection, retrying while the database is locked or busy."""
        give_up, wait = time.monotonic() + self.patience, 0.05
        while True:
            try:
                with self._lock:
                    return work(self._db)
            except sqlite3.OperationalError as e:
                transient = "locked" in str(e) or "busy" in str(e)
                if not transient or time.monotonic() > give_up:
                    raise StoreBusy(f"the job store is unavailable ({e})") from e
                time.sleep(wait)
                wait = min(2 * wait, 2.0)

    def add(self, job_id: str, method: str, options: dict) -> None:
        self._call(
            lambda db: db.execute(
                "INSERT INTO jobs (id, state, method, options, created) "
                "VALUES (?, 'queued', ?, ?, ?)",
                (job_id, method, json.dumps(options), time.time()),
            )
        )

    def update(self, job_id: str, **fields) -> None:
        if "losses" in fields:
            fields["losses"] = json.dumps(fields["losses"])
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._call(
            lambda db: db.execute(
                f"UPDATE jobs SET {columns} WHERE id = ?", (*fields.values(), job_id)
            )
        )

    def get(self, job_id: str) -> dict | None:
        row = self._call(
            lambda db: db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        if row is None:
            return None
        job = dict(row)
        job["options"] = json.loads(job["options"])
        job["losses"] = json.loads(job["losses"]) if job["losses"] else None
        return job

    def unfinished(self) -> list[str]:
        rows = self._call(
            lambda db: db.execute(
                "SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY created"
            ).fetchall()
        )
        return [row["id"] for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Runner:
    """One worker's methods, loaded on first use and kept (api.Loader): the built-in
    `styles` network, the built-in one-pass `painter` (VGG-19's decoders, given other VGG
    weights), VGG-19 for optimization."""

    def __init__(self, device: str = "auto", weights: str | None = None):
        from ..api import Loader  # torch loads with the first worker, not with the module

        self.loader = Loader(keep=len(METHODS))
        # painter brings its own encoder; other VGG weights need VGG-19's decoders.
        decoders = {} if weights is None else {"decoders": "decoders", "weights": weights}
        self.setup = {
            "fast": {"device": device},
            "arbitrary": {"device": device, **decoders},
            "optimize": {"device": device, "weights": weights},
        }

    def run(
        self,
        method: str,
        options: dict,
        content: Image.Image | Path | bytes,
        style: Image.Image | None,
        report: Callable[[float, dict | None, Image.Image | None], None],
    ) -> Image.Image | bytes:
        """Paint one job, a picture or (options["video"]) a video's file or bytes into
        MP4 bytes; `report(progress, losses, snapshot)` is called as it goes and may raise
        JobStopped."""
        from ..api import run
        from ..io.images import to_image
        from ..methods.schedule import scale_ladder
        from ..options import OptimizeOptions

        shared = ("size", "strength", "preserve_color", "precision")
        keywords = {name: options[name] for name in shared if name in options}
        if method == "fast":
            style = options["style"]
        if options.get("video"):
            return self._video(method, options, content, style, report, keywords)
        if method == "optimize":
            keywords["iterations"] = options["iterations"]
            scales = len(scale_ladder(OptimizeOptions(size=options["size"])))
            last_snapshot, shown = 0.0, 0.0

            def callback(p) -> None:
                nonlocal last_snapshot, shown
                snapshot = None
                if time.monotonic() - last_snapshot >= SNAPSHOT_SECONDS:
                    snapshot, last_snapshot = to_image(p.image), time.monotonic()
                # Never backwards: the balance may paint the coarsest scale again.
                shown = max(shown, (p.scale + p.iteration / p.iterations) / scales)
                report(shown, p.losses, snapshot)

            keywords["callback"] = callback
        return run(
            method, content, style, loader=self.loader, **self.setup[method], **keywords
        ).image

    def _video(self, method, options, content, style, report, keywords) -> bytes:
        """A video job: every frame painted (flow consistency on), as MP4 bytes; each
        frame is reported, with a snapshot of it at most once a second."""
        from ..api import video

        frames, last_snapshot = options["video"]["frames"], 0.0
        steady = {k: options[k] for k in VIDEO_OPTIONS if k in options}

        def on_frame(done: int, total: int | None, frame) -> None:
            nonlocal last_snapshot
            snapshot = None
            if time.monotonic() - last_snapshot >= SNAPSHOT_SECONDS:
                snapshot, last_snapshot = Image.fromarray(frame), time.monotonic()
            report(min(done / frames, 1.0), None, snapshot)

        with tempfile.TemporaryDirectory(prefix="impasto-video-") as folder:
            out = Path(folder) / "result.mp4"
            video(
                content,
                out,
                style,
                method=method,
                on_frame=on_frame,
                loader=self.loader,
                **self.setup[method],
                **keywords,
                **steady,
            )
            return out.read_bytes()


def prepare_folder(folder: str | Path) -> Path:
    """Make the data folder (and its jobs/ folder), or say in one line why not."""
    make_folder(Path(folder) / "jobs", "data folder")
    return Path(folder)


class JobQueue:
    """Accepts jobs, runs them on `workers` threads, and remembers them in `folder`."""

    def __init__(
        self,
        folder: str | Path,
        workers: int = 1,
        limits: Limits | None = None,
        device: str = "auto",
        weights: str | None = None,
        fresh: bool = False,
        decoding=None,
    ):
        self.folder = prepare_folder(folder)
        self.limits = limits or Limits()
        self.store = JobStore(self.folder / "jobs.sqlite3", fresh=fresh)
        self._admit = threading.Lock()  # the queue's room is checked and taken in one step
        self.decoding = decoding  # a guards.PixelBudget the uploads share, or None
        self.workers, self.device, self.weights = workers, device, weights
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._live: dict[str, dict] = {}  # running jobs: progress, snapshot count, stop flag
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle
    def start(self) -> None:
        for job_id in self.store.unfinished():  # left behind by a process that stopped
            self.store.update(job_id, state="queued", progress=0.0, started=None)
            self._pending.put(job_id)
        self._threads = [self._spawn(n) for n in range(self.workers)]

    def _spawn(self, n: int) -> threading.Thread:
        thread = threading.Thread(target=self._work, name=f"impasto-worker-{n}", daemon=True)
        thread.start()
        return thread

    def alive(self) -> int:
        """How many workers are running; any that died are started again first."""
        if not self._stopping.is_set():
            self._threads = [
                t if t.is_alive() else self._spawn(n) for n, t in enumerate(self._threads)
            ]
        return sum(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop the running jobs at their next step (they go back to the queue) and take no
        new ones: jobs still queued stay queued in the store for the next start."""
        self._stopping.set()
        for live in list(self._live.values()):
            live["stop"] = SHUTDOWN
        for _ in self._threads:
            self._pending.put(None)  # wakes the idle workers
        for thread in self._threads:
            thread.join(timeout=30)
        if not any(thread.is_alive() for thread in self._threads):
            self.store.close()  # else a job that cannot stop midway still holds it

    # -- requests
    def submit(self, method: str, options: dict, content: bytes, style: bytes | None) -> str:
        job_id = secrets.token_urlsafe(12)
        folder = self.job_folder(job_id)
        folder.mkdir()
        for name, data in (("content", content), ("style", style)):
            if data is not None:
                with atomic_write(folder / name) as f:
                    f.write(data)
        with self._admit:
            if self._pending.qsize() >= self.limits.queue:
                shutil.rmtree(folder, ignore_errors=True)
                raise QueueFull(f"{self._pending.qsize()} jobs are waiting")
            self.store.add(job_id, method, options)
            self._pending.put(job_id)
        return job_id

    def cancel(self, job_id: str) -> dict | None:
        job = self.store.get(job_id)
        if job is None or job["state"] in FINISHED:
            return job
        if job_id in self._live:
            self._live[job_id]["stop"] = "cancelled"  # the worker stops at its next report
        self.store.update(job_id, state="cancelled", finished=time.time())
        return self.store.get(job_id)

    def job(self, job_id: str) -> dict | None:
        job = self.store.get(job_id)
        if job is not None and job_id in self._live:
            live = self._live[job_id]
            job.update(snapshots=live["snapshots"], progress=live["progress"])
            job["losses"] = live["losses"] or job["losses"]
        return job

    def job_folder(self, job_id: str) -> Path:
        return self.folder / "jobs" / job_id

    def result(self, job_id: str) -> Path | None:
        """The finished picture's (or video's) file, or None if it is gone."""
        for name in ("result.png", "result.mp4"):
            path = self.job_folder(job_id) / name
            if path.is_file():
                return path
        return None

    def snapshot(self, job_id: str) -> Path | None:
        """The latest picture of the forming image (optimize), or None."""
        path = self.job_folder(job_id) / "snapshot.jpg"
        return path if path.is_file() else None

    def waiting(self) -> int:
        return self._pending.qsize()

    # -- workers
    def _work(self) -> None:
        """Take jobs until the queue stops. A fault outside any job (the store unavailable
        past its patience) puts the job back and pauses; it never ends the worker."""
        runner = Runner(self.device, self.weights)
        while (job_id := self._pending.get()) is not None and not self._stopping.is_set():
            try:
                job = self.store.get(job_id)
                if job is None or job["state"] != "queued":
                    continue  # cancelled while it waited
                self._run(runner, job)
            except Exception:  # noqa: BLE001 (the store, not the job: try it again later)
                self._live.pop(job_id, None)
                self._pending.put(job_id)
                self._stopping.wait(WORKER_PAUSE)

    def _decode(self, path: Path) -> Image.Image | None:
        """A job's input, decoded within the pixel budget; None if it has none."""
        if not path.exists():
            return None
        if self.decoding is None:
            return load_image(path, max_pixels=self.limits.pixels)
        with self.decoding.hold(str(path), path.name):
            return load_image(path, max_pixels=self.limits.pixels)

    def _run(self, runner: Runner, job: dict) -> None:
        job_id, folder = job["id"], self.job_folder(job["id"])
        live = self._live[job_id] = {"progress": 0.0, "losses": None, "snapshots": 0, "stop": None}
        self.store.update(job_id, state="running", started=time.time())

        def report(progress: float, losses: dict | None, snapshot: Image.Image | None) -> None:
            if live["stop"]:
                raise JobStopped(live["stop"])
            live["progress"] = progress
            live["losses"] = losses or live["losses"]  # stored once, when the job ends
            if snapshot is not None:
                with atomic_write(folder / "snapshot.jpg") as f:
                    f.write(encode_jpeg(snapshot))
                live["snapshots"] += 1

        def inputs() -> tuple[Image.Image | Path | None, Image.Image | None]:
            video = folder / "content" if job["options"].get("video") else None
            return video or self._decode(folder / "content"), self._decode(folder / "style")

        final, result = paint_job(runner, job, inputs, self.limits.job_seconds, report)
        if result is not None:
            name = "result.mp4" if job["options"].get("video") else "result.png"
            with atomic_write(folder / name) as f:
                f.write(encode_result(result))
        if self.store.get(job_id)["state"] == "cancelled":
            final = {"state": "cancelled"}  # cancelled while its last step ran
        if final["state"] != "queued":
            final["finished"] = time.time()
        if live["losses"] is not None:
            final["losses"] = live["losses"]
        self.store.update(job_id, **final)
        del self._live[job_id]


Report = Callable[[float, "dict | None", "Image.Image | None"], None]
Content = Image.Image | Path | bytes  # a photo, or a video's file or bytes


def paint_job(
    runner: Runner,
    job: dict,
    inputs: Callable[[], tuple[Content | None, Image.Image | None]],
    seconds: float,
    report: Report,
) -> tuple[dict, Image.Image | bytes | None]:
    """Run one job within its time limit, whichever store holds it: the fields its record
    ends with (state, error), and the picture (or the video's MP4 bytes) if it is done.
    `report(progress, losses, snapshot)` is called as it goes and may raise JobStopped; a
    stop for SHUTDOWN puts the job back in the queue."""
    deadline = time.monotonic() + seconds
    timeout = f"stopped after the {seconds:g} s time limit"

    def checked(progress: float, losses: dict | None, snapshot: Image.Image | None) -> None:
        if time.monotonic() > deadline:
            raise JobStopped(timeout)
        report(progress, losses, snapshot)

    try:
        content, style = inputs()
        image = runner.run(job["method"], job["options"], content, style, checked)
        if time.monotonic() > deadline:
            raise JobStopped(timeout)
        return {"state": "done", "progress": 1.0}, image
    except JobStopped as e:
        reason = str(e)
        if reason == SHUTDOWN:  # not the job's fault: it runs again after the restart
            return {"state": "queued", "progress": 0.0, "started": None}, None
        return {"state": "cancelled" if reason == "cancelled" else "failed", "error": reason}, None
    except ImpastoError as e:
        return {"state": "failed", "error": str(e)}, None
    except Exception as e:  # a bug: the job fails, the worker lives on
        return {"state": "failed", "error": f"internal error: {type(e).__name__}: {e}"}, None


def encode_result(result: Image.Image | bytes) -> bytes:
    """A job's result as stored: a picture as PNG, a video as the MP4 it already is."""
    return result if isinstance(result, bytes) else encode_png(result)


def encode_png(image: Image.Image) -> bytes:
    """A result as PNG; compression level 1, as level 6 costs as much as the network."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_jpeg(image: Image.Image) -> bytes:
    """A snapshot of the forming picture: small and quick, as it is sent about once a second."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


__all__ = [
    "FINISHED",
    "METHODS",
    "JobQueue",
    "JobStopped",
    "JobStore",
    "Limits",
    "QueueFull",
    "StoreBusy",
    "Runner",
    "encode_jpeg",
    "encode_png",
    "encode_result",
    "paint_job",
    "prepare_folder",
]
