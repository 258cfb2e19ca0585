"""The shared job store: PostgreSQL, for API servers and workers on many machines.

`impasto serve --store postgresql://…` runs an API server that paints nothing itself;
`impasto worker --store postgresql://…` runs the jobs, anywhere the database is reachable,
each worker keeping its models loaded. Everything a job is lives in the database: its
record, its uploads, its snapshots and its result, so any server can answer for any job
and no folder needs sharing.

The queue is procrastinate's (PostgreSQL only: no broker to run beside the database).
Its workers send a heartbeat; every worker sweeps the queue now and then, and gives the
job of a worker whose heartbeat stopped (killed, or its machine gone) to the next free
worker. A job's record carries an `attempt` number, bumped by each worker that takes the
job, and a worker writes progress and its result only while the attempt is still its
own: a job run twice has its result written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import procrastinate
import psycopg
from PIL import Image
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ..errors import OptionError
from ..io.images import load_image
from .jobs import (
    FINISHED,
    SHUTDOWN,
    STORE_PATIENCE,
    JobStopped,
    QueueFull,
    Runner,
    StoreBusy,
    encode_jpeg,
    encode_result,
    paint_job,
)
from .options import Limits, store_url

TASK = "impasto.paint"
PROGRESS_SECONDS = 0.5  # a worker writes a job's progress at most this often
LEASE_LOST = "another worker took over the job"
SCHEMA_LOCK = 0x1A9A5707  # an advisory lock: one process at a time creates the tables
ADMIT_LOCK = 0x1A9A5708  # ... and checks the queue's room and takes it

SCHEMA = """
CREATE TABLE IF NOT EXISTS impasto_jobs (
    id text PRIMARY KEY,
    state text NOT NULL,
    method text NOT NULL,
    options jsonb NOT NULL,
    progress real NOT NULL DEFAULT 0,
    losses jsonb,
    error text,
    created double precision NOT NULL,
    started double precision,
    finished double precision,
    seconds double precision NOT NULL,
    task bigint,
    attempt integer NOT NULL DEFAULT 0,
    results_written integer NOT NULL DEFAULT 0,
    snapshots integer NOT NULL DEFAULT 0,
    content bytea NOT NULL,
    style bytea,
    snapshot bytea,
    result bytea
);
CREATE INDEX IF NOT EXISTS impasto_jobs_unfinished ON impasto_jobs (state)
    WHERE state IN ('queued', 'running');
"""
# What a job's status shows: its record without the pictures.
RECORD = (
    "id, state, method, options, progress, losses, error, created, started, finished, "
    "snapshots, attempt, results_written"
)


def _where(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.partition("@")
    return f"{head.split(':')[0]}://…@{tail}" if at else url


def make_app(url: str) -> procrastinate.App:
    """The task queue on the database at `url`."""
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))


class SharedStore:
    """Job records, uploads and results in PostgreSQL; safe to call from any thread. A
    database that cannot be reached delays a call (retried for up to `patience` s) and
    then raises StoreBusy."""

    def __init__(self, url: str, patience: float = STORE_PATIENCE, connections: int = 8):
        try:
            self.url, self.patience = store_url(url), patience
        except ValueError as e:
            raise OptionError(f"the store must be {e}") from None
        try:  # one plain connection first: its failure is the reason, in one line
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[0]
            raise OptionError(f"cannot reach the job store at {_where(url)} ({reason})") from None
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=connections,
            kwargs={"row_factory": dict_row, "autocommit": False},
            open=False,
        )
        self.pool.open(wait=True, timeout=min(patience, 10.0))
        self.queue = make_app(url)
        self.call(self._create)

    def _create(self, db: psycopg.Connection) -> None:
        """impasto's table, and procrastinate's schema where the database has none yet."""
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        db.execute(SCHEMA)
        found = db.execute("SELECT to_regclass('procrastinate_jobs') AS found").fetchone()
        if found["found"] is None:
            db.execute(self.queue.schema_manager.get_schema())

    def call(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        """Run `work` in one transaction, retrying while the database cannot be reached."""
        give_up, wait = time.monotonic() + self.patience, 0.1
        while True:
            try:
                with self.pool.connection(timeout=self.patience) as db, db.transaction():
                    return work(db)
            except psycopg.OperationalError as e:
                if time.monotonic() > give_up:
                    raise StoreBusy(f"the job store is unavailable ({e})") from e
                time.sleep(wait)
                wait = min(2 * wait, 2.0)

    def defer(self, db: psycopg.Connection, job_id: str, method: str) -> None:
        """Queue `job_id` for a worker that runs `method`, in the caller's transaction."""
        deferrer = self.queue.configure_task(TASK, queue=method, connection=db)
        deferred = deferrer.defer(job_id=job_id)
        db.execute(
            "UPDATE impasto_jobs SET task = %s, state = 'queued', progress = 0, started = NULL "
            "WHERE id = %s",
            (deferred, job_id),
        )

    def get(self, job_id: str) -> dict | None:
        return self.call(
            lambda db: db.execute(
                f"SELECT {RECORD} FROM impasto_jobs WHERE id = %s", (job_id,)
            ).fetchone()
        )

    def picture(self, job_id: str, which: str) -> bytes | None:
        column = {"result": "result", "snapshot": "snapshot"}[which]
        row = self.call(
            lambda db: db.execute(
                f"SELECT {column} AS data FROM impasto_jobs WHERE id = %s", (job_id,)
            ).fetchone()
        )
        return None if row is None or row["data"] is None else bytes(row["data"])

    def close(self) -> None:
        self.pool.close()


class SharedQueue:
    """The API server's side: accepts jobs and answers for them; workers elsewhere run
    them. The same face as jobs.JobQueue, the embedded store."""

    def __init__(self, url: str, limits: Limits | None = None, lease: float = 30.0):
        self.limits, self.lease = limits or Limits(), lease
        self.store = SharedStore(url)

    def start(self) -> None:
        pass  # nothing runs here: the workers are `impasto worker` processes

    def stop(self) -> None:
        self.store.close()

    def alive(self) -> int:
        """Workers whose heartbeat is recent, on any machine."""
        row = self.store.call(
            lambda db: db.execute(
                "SELECT count(*) AS n FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - make_interval(secs => %s)",
                (self.lease,),
            ).fetchone()
        )
        return row["n"]

    def waiting(self) -> int:
        return self.store.call(_waiting)

    def submit(self, method: str, options: dict, content: bytes, style: bytes | None) -> str:
        job_id = secrets.token_urlsafe(12)

        def admit(db: psycopg.Connection) -> None:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (ADMIT_LOCK,))
            waiting = _waiting(db)
            if waiting >= self.limits.queue:
                raise QueueFull(f"{waiting} jobs are waiting")
            db.execute(
                "INSERT INTO impasto_jobs (id, state, method, options, created, seconds, "
                "content, style) VALUES (%s, 'queued', %s, %s, %s, %s, %s, %s)",
                (
                    job_id,
                    method,
                    json.dumps(options),
                    time.time(),
                    self.limits.job_seconds,
                    content,
                    style,
                ),
            )
            self.store.defer(db, job_id, method)

        self.store.call(admit)
        return job_id

    def cancel(self, job_id: str) -> dict | None:
        """Cancel a queued or running job; the worker running it stops at its next step."""
        self.store.call(
            lambda db: db.execute(
                "UPDATE impasto_jobs SET state = 'cancelled', finished = %s "
                "WHERE id = %s AND state IN ('queued', 'running')",
                (time.time(), job_id),
            )
        )
        return self.job(job_id)

    def job(self, job_id: str) -> dict | None:
        return self.store.get(job_id)

    def result(self, job_id: str) -> bytes | None:
        return self.store.picture(job_id, "result")

    def snapshot(self, job_id: str) -> bytes | None:
        return self.store.picture(job_id, "snapshot")


class Worker:
    """`impasto worker`: runs the jobs of `methods` from the shared store, `concurrency`
    at a time, until stopped (Ctrl-C or SIGTERM put its running jobs back in the queue)."""

    def __init__(
        self,
        url: str,
        methods: Iterable[str],
        concurrency: int = 1,
        lease: float = 30.0,
        device: str = "auto",
        weights: str | None = None,
    ):
        self.store = SharedStore(url, connections=concurrency + 2)
        self.methods, self.concurrency, self.lease = tuple(methods), concurrency, lease
        self.device, self.weights = device, weights
        self.runners: list[Runner] = []  # one per job slot, each keeping its models
        self._runners_lock = threading.Lock()
        self.queue = make_app(url)
        self.queue.task(name=TASK, pass_context=True)(self.paint)

    def run(self) -> None:
        """Work until SIGINT or SIGTERM; sweep the queue for abandoned jobs meanwhile."""
        asyncio.run(self._main())

    async def _main(self) -> None:
        async with self.queue.open_async():
            sweeper = asyncio.create_task(self._sweep_forever())
            try:
                await self.queue.run_worker_async(
                    queues=list(self.methods),
                    concurrency=self.concurrency,
                    name=f"impasto-{secrets.token_hex(3)}",
                    update_heartbeat_interval=self.lease / 4,
                    stalled_worker_timeout=self.lease,
                    shutdown_graceful_timeout=0,  # running jobs stop at their next step
                )
            finally:
                sweeper.cancel()
                self.store.close()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.sweep()
            except Exception as e:  # noqa: BLE001 (the next sweep tries again)
                logging.getLogger("impasto").warning("sweeping the queue failed: %s", e)

    async def sweep(self) -> None:
        """Give abandoned jobs to the next free worker: those of workers whose heartbeat
        stopped, and those whose queue entry ended while the job did not (a worker gone
        between the two writes)."""
        manager = self.queue.job_manager
        for stalled in await manager.get_stalled_jobs(seconds_since_heartbeat=self.lease):
            with contextlib.suppress(procrastinate.exceptions.ConnectorException):
                await manager.retry_job(stalled)  # unless another worker's sweep was first
        await asyncio.to_thread(self.store.call, self._requeue_orphans)

    def _requeue_orphans(self, db: psycopg.Connection) -> None:
        orphans = db.execute(
            "SELECT j.id, j.method FROM impasto_jobs j "
            "LEFT JOIN procrastinate_jobs p ON p.id = j.task "
            "WHERE j.state IN ('queued', 'running') "
            "AND (p.id IS NULL OR p.status NOT IN ('todo', 'doing')) "
            "FOR UPDATE OF j SKIP LOCKED"
        ).fetchall()
        for orphan in orphans:
            self.store.defer(db, orphan["id"], orphan["method"])

    def _runner(self) -> Runner:
        with self._runners_lock:
            if self.runners:
                return self.runners.pop()
        return Runner(self.device, self.weights)

    def paint(self, context, job_id: str) -> None:
        """The task: take the job (a new attempt), paint it, store what came of it."""
        job = self.store.call(lambda db: _take(db, job_id))
        if job is None:
            return  # cancelled while it waited, or finished by another worker
        attempt, runner = job["attempt"], self._runner()
        state = {"written": 0.0, "losses": None}

        def report(progress: float, losses: dict | None, snapshot: Image.Image | None) -> None:
            if context.should_abort():
                raise JobStopped(SHUTDOWN)
            state["losses"] = losses or state["losses"]
            if snapshot is None and time.monotonic() - state["written"] < PROGRESS_SECONDS:
                return
            state["written"] = time.monotonic()
            picture = encode_jpeg(snapshot) if snapshot is not None else None
            stopped = self.store.call(
                lambda db: _progress(db, job_id, attempt, progress, state["losses"], picture)
            )
            if stopped:
                raise JobStopped(stopped)

        def inputs() -> tuple[Image.Image | bytes, Image.Image | None]:
            # The API server that took the uploads checked them against its limits.
            content, style = bytes(job["content"]), job["style"]
            return (
                content if job["options"].get("video") else load_image(content, max_pixels=None),
                load_image(bytes(style), max_pixels=None) if style is not None else None,
            )

        try:
            final, image = paint_job(runner, job, inputs, job["seconds"], report)
        finally:
            with self._runners_lock:
                self.runners.append(runner)
        if final.get("error") == LEASE_LOST:
            return  # the job is another worker's now: nothing of this attempt is kept
        if state["losses"] is not None:
            final["losses"] = state["losses"]
        result = encode_result(image) if image is not None else None
        self.store.call(lambda db: _finish(db, self.store, job, final, result))


def _take(db: psycopg.Connection, job_id: str) -> dict | None:
    """A new attempt at the job, with its uploads, if it is still to be done."""
    return db.execute(
        "UPDATE impasto_jobs SET state = 'running', attempt = attempt + 1, started = %s, "
        "progress = 0 WHERE id = %s AND state IN ('queued', 'running') "
        "RETURNING id, method, options, seconds, attempt, content, style",
        (time.time(), job_id),
    ).fetchone()


def _waiting(db: psycopg.Connection) -> int:
    row = db.execute("SELECT count(*) AS n FROM impasto_jobs WHERE state = 'queued'").fetchone()
    return row["n"]


def _progress(
    db: psycopg.Connection,
    job_id: str,
    attempt: int,
    progress: float,
    losses: dict | None,
    picture: bytes | None,
) -> str | None:
    """Record how the job goes (and its latest snapshot, a JPEG); the reason to stop, if it
    should (cancelled, or taken over)."""
    row = db.execute(
        "UPDATE impasto_jobs SET progress = %s, losses = COALESCE(%s, losses), "
        "snapshot = COALESCE(%s, snapshot), snapshots = snapshots + %s "
        "WHERE id = %s AND attempt = %s AND state = 'running' RETURNING id",
        (
            progress,
            json.dumps(losses) if losses else None,
            picture,
            int(picture is not None),
            job_id,
            attempt,
        ),
    ).fetchone()
    if row is not None:
        return None
    now = db.execute("SELECT state, attempt FROM impasto_jobs WHERE id = %s", (job_id,)).fetchone()
    return "cancelled" if now["state"] == "cancelled" else LEASE_LOST


def _finish(
    db: psycopg.Connection, store: SharedStore, job: dict, final: dict, result: bytes | None
) -> None:
    """Store how the job ended, if this attempt still holds it."""
    if final["state"] == "queued":  # the worker shut down: the job goes back in the queue
        held = db.execute(
            "SELECT id FROM impasto_jobs WHERE id = %s AND attempt = %s AND state = 'running' "
            "FOR UPDATE",
            (job["id"], job["attempt"]),
        ).fetchone()
        if held:
            store.defer(db, job["id"], job["method"])
        return
    finished = time.time() if final["state"] in FINISHED else None
    db.execute(
        "UPDATE impasto_jobs SET state = %s, progress = %s, error = %s, finished = %s, "
        "losses = COALESCE(%s, losses), result = %s, "
        "results_written = results_written + %s "
        "WHERE id = %s AND attempt = %s AND state = 'running'",
        (
            final["state"],
            final.get("progress", 0.0),
            final.get("error"),
            finished,
            json.dumps(final["losses"]) if final.get("losses") else None,
            result,
            int(result is not None),
            job["id"],
            job["attempt"],
        ),
    )


__all__ = ["SharedQueue", "SharedStore", "Worker", "make_app"]
