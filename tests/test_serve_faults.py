"""The web app survives its faults: a locked database, a dead worker, a lost result file, a
broken job store, uploads too big to say so, bursts of big pictures, a full queue under
concurrent requests, and pages of other sites."""

import io
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from test_serve import wait as finished  # noqa: E402 (the same helper)

from impasto.errors import OutputError  # noqa: E402
from impasto.serve.app import create_app  # noqa: E402
from impasto.serve.guards import PixelBudget, _decoded_bytes  # noqa: E402
from impasto.serve.jobs import Limits  # noqa: E402


def jpeg(size=(96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def submit(client, **fields):
    return client.post(
        "/api/jobs",
        files={"content": ("p.jpg", jpeg())},
        data={"style": "udnie", "size": "64", **fields},
    )


def test_a_locked_database_delays_jobs_and_loses_none(tmp_path):
    with TestClient(create_app(tmp_path, workers=1)) as client:
        first = submit(client).json()["id"]
        lock = sqlite3.connect(
            tmp_path / "jobs.sqlite3", isolation_level=None, check_same_thread=False
        )
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        release = threading.Timer(3.0, lock.rollback)
        release.start()
        started = time.monotonic()
        ids = [submit(client).json()["id"] for _ in range(3)]  # wait for the lock, then go
        assert time.monotonic() - started > 2.0
        release.join()
        for job_id in [first, *ids]:
            assert finished(client, job_id)["state"] == "done"
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["workers"] == 1


def test_a_dead_worker_is_started_again(tmp_path):
    app = create_app(tmp_path, workers=1)
    with TestClient(app) as client:
        jobs = app.state.jobs
        jobs._pending.put(None)  # the worker ends, as it would on an unforeseen fault
        jobs._threads[0].join(timeout=10)
        assert not jobs._threads[0].is_alive()
        health = client.get("/healthz")  # finds it dead and starts it again
        assert health.status_code == 200 and health.json()["workers"] == 1
        assert finished(client, submit(client).json()["id"])["state"] == "done"


def test_a_lost_result_file_is_gone_not_an_error(tmp_path):
    app = create_app(tmp_path, workers=1)
    with TestClient(app) as client:
        job = finished(client, submit(client).json()["id"])
        (app.state.jobs.job_folder(job["id"]) / "result.png").unlink()
        response = client.get(job["result"])
        assert response.status_code == 410 and "gone" in response.json()["detail"]


def test_a_broken_job_store_is_one_line_or_kept_aside(tmp_path):
    (tmp_path / "jobs.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(OutputError, match="not a readable job store.*--fresh"):
        create_app(tmp_path)
    app = create_app(tmp_path, fresh=True)
    assert len(list(tmp_path.glob("jobs.sqlite3.broken-*"))) == 1
    with TestClient(app) as client:
        assert client.get("/healthz").json()["status"] == "ok"


def test_a_chunked_upload_is_stopped_at_the_limit(tmp_path):
    limits = Limits(upload_mb=0.01)
    sent = 0

    def chunks():  # a file part of 50 MB with no Content-Length, in 64-KB chunks
        nonlocal sent
        yield (
            b'--b\r\nContent-Disposition: form-data; name="content"; filename="p.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        for _ in range(800):
            sent += 65536
            yield b"x" * 65536

    with TestClient(create_app(tmp_path, workers=0, limits=limits)) as client:
        response = client.post(
            "/api/jobs",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert response.status_code == 413 and sent > 2**20  # no Content-Length to go by


def test_the_queue_limit_holds_under_concurrent_requests(tmp_path):
    app = create_app(tmp_path, workers=0, limits=Limits(queue=3))
    with TestClient(app) as client, ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda _: submit(client).status_code, range(12)))
    assert codes.count(202) == 3 and codes.count(503) == 9


def test_pages_of_other_sites_are_refused_without_a_token(tmp_path):
    app = create_app(tmp_path, workers=0, hosts=["testserver"])
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"host": "evil.example:80"}).status_code == 421
        refused = client.post(
            "/api/jobs",
            files={"content": ("p.jpg", jpeg())},
            data={"style": "udnie"},
            headers={"origin": "http://evil.example"},
        )
        assert refused.status_code == 403
        same = client.post(
            "/api/jobs",
            files={"content": ("p.jpg", jpeg())},
            data={"style": "udnie"},
            headers={"origin": "http://testserver"},
        )
        assert same.status_code == 202


def test_big_pictures_are_decoded_a_few_at_a_time():
    """The budget weighs an upload by its header (16-bit grey: 2 bytes a pixel, twice, and
    the 8-bit and RGB copies) and makes the next wait until there is room."""
    grey16 = io.BytesIO()
    Image.fromarray(np.zeros((100, 200), np.uint16)).save(grey16, format="PNG")
    assert _decoded_bytes(grey16.getvalue()) == 200 * 100 * (2 * 2 + 6)
    budget = PixelBudget(pixels=1000)  # room for a 1000-pixel picture in 32-bit: 15 KB
    big = jpeg((50, 40))  # 2000 pixels of RGB and its copy: 12 KB, so one at a time
    order = []

    def decode(name):
        with budget.hold(big, name):
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

    first = threading.Thread(target=decode, args=("a",))
    first.start()
    time.sleep(0.05)
    decode("b")
    first.join()
    assert order == ["a in", "a out", "b in", "b out"] and budget.used == 0
