"""The shared job store: API servers and `impasto worker` processes on one real PostgreSQL,
with workers killed and stopped mid-job."""

import io
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from PIL import Image

pytest.importorskip("procrastinate")
from fastapi.testclient import TestClient  # noqa: E402
from postgres import Cluster, require  # noqa: E402
from test_serve import submit, wait  # noqa: E402

from impasto.cli import main  # noqa: E402
from impasto.io.video import probe  # noqa: E402
from impasto.serve.app import create_app  # noqa: E402
from impasto.serve.shared import SharedQueue, _finish, _take  # noqa: E402


@pytest.fixture(scope="module")
def store():
    """The URL of a fresh database on a throwaway PostgreSQL server. CI installs
    PostgreSQL (.ci/run), so there a missing server fails the tests rather than skip them."""
    require()
    with Cluster() as url:
        yield url


@pytest.fixture(scope="module")
def photo(content) -> bytes:
    return content.read_bytes()


@contextmanager
def worker(store: str, *flags: str):
    """`impasto worker` in its own process, killed at the end if it still runs."""
    cmd = [sys.executable, "-m", "impasto.cli", "worker", "--store", store, "--device", "cpu"]
    process = subprocess.Popen([*cmd, *flags], stdout=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def record(store: str, job_id: str) -> dict:
    queue = SharedQueue(store)
    try:
        return queue.job(job_id)
    finally:
        queue.stop()


def until(condition, seconds: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_any_server_answers_for_a_job_a_worker_elsewhere_ran(store, photo, pan, tmp_path):
    with (
        TestClient(create_app("unused", store=store)) as one,
        TestClient(create_app("unused", store=store)) as two,
        worker(store, "--methods", "fast"),
    ):
        job = submit(one, photo, method="fast", style="candy", size="96").json()
        assert job["state"] == "queued"
        done = wait(two, job["id"])
        assert done["state"] == "done", done
        result = two.get(done["result"])
        assert result.headers["content-type"] == "image/png"
        assert max(Image.open(io.BytesIO(result.content)).size) == 96
        until(lambda: two.get("/healthz").json()["workers"] == 1, what="the worker's heartbeat")
        assert record(store, job["id"])["results_written"] == 1
        movie = submit(one, pan.read_bytes(), method="fast", style="candy", size="64").json()
        done = wait(two, movie["id"])
        assert done["state"] == "done", done
        result = two.get(done["result"])
        assert result.headers["content-type"] == "video/mp4"
        (tmp_path / "out.mp4").write_bytes(result.content)
        assert probe(tmp_path / "out.mp4")["frames"] == 24


def test_a_worker_killed_mid_job_has_its_job_finished_once_by_another(store, photo, style):
    fields = dict(method="optimize", size="96", iterations="150", style_image=style.read_bytes())
    with TestClient(create_app("unused", store=store)) as client:
        job_id = submit(client, photo, **fields).json()["id"]
        with worker(store, "--lease", "4") as first:
            until(lambda: client.get(f"/api/jobs/{job_id}").json()["progress"] > 0, what="a start")
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert client.get(f"/api/jobs/{job_id}").json()["state"] == "running"  # its lease
        with worker(store, "--lease", "4"):
            done = wait(client, job_id, seconds=240)
        assert done["state"] == "done", done
        taken = record(store, job_id)
        assert taken["attempt"] == 2 and taken["results_written"] == 1


def test_a_stopped_worker_puts_its_job_back_and_a_cancel_stops_a_running_job(store, photo, style):
    fields = dict(method="optimize", size="96", iterations="300", style_image=style.read_bytes())
    with TestClient(create_app("unused", store=store)) as client:
        job_id = submit(client, photo, **fields).json()["id"]
        with worker(store) as first:
            until(lambda: client.get(f"/api/jobs/{job_id}").json()["progress"] > 0, what="a start")
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=60) == 0
        assert client.get(f"/api/jobs/{job_id}").json()["state"] == "queued"
        with worker(store):
            until(lambda: client.get(f"/api/jobs/{job_id}").json()["progress"] > 0, what="again")
            assert client.delete(f"/api/jobs/{job_id}").json()["state"] == "cancelled"
            assert wait(client, job_id)["state"] == "cancelled"
        assert record(store, job_id)["results_written"] == 0


def test_only_the_attempt_holding_a_job_writes_its_result(store, photo):
    """Two workers on one job (the first one's heartbeat stalled, not dead): the later
    attempt holds it, and the earlier one's result is dropped."""
    queue = SharedQueue(store)
    try:
        job_id = queue.submit("fast", {"style": "candy", "size": 96}, photo, None)
        early = queue.store.call(lambda db: _take(db, job_id))
        late = queue.store.call(lambda db: _take(db, job_id))
        assert (early["attempt"], late["attempt"]) == (1, 2)
        done = {"state": "done", "progress": 1.0}
        queue.store.call(lambda db: _finish(db, queue.store, early, done, b"early"))
        assert queue.job(job_id)["state"] == "running"
        queue.store.call(lambda db: _finish(db, queue.store, late, done, b"late"))
        assert queue.result(job_id) == b"late" and queue.job(job_id)["results_written"] == 1
    finally:
        queue.stop()


def test_a_full_shared_queue_refuses_with_503(store, photo):
    from impasto.serve.options import Limits

    with TestClient(create_app("unused", store=store, limits=Limits(queue=1))) as client:
        waiting = client.get("/healthz").json()["queued"]
        codes = [
            submit(client, photo, method="fast", style="candy", size="64").status_code
            for _ in range(waiting + 2)
        ]
        assert codes[-1] == 503 and codes.count(202) <= 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "--store", "mysql://x/y"], "postgresql://"),
        (["worker", "--store", "postgresql://nobody@/none?host=/nonexistent"], "cannot reach"),
        (["worker"], "--store"),
        (["worker", "--store", "postgresql://x/y", "--methods", "fast,paint"], "methods are"),
        (["serve", "--store", "postgresql://x/y", "--workers", "2"], "impasto worker"),
    ],
)
def test_bad_shared_store_settings_are_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
