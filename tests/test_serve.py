"""The web app: HTTP API, jobs that survive restarts, limits, load, and a real browser."""

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from impasto.serve.app import create_app  # noqa: E402
from impasto.serve.jobs import JobStore, Limits  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def photo(content) -> bytes:
    return content.read_bytes()


@pytest.fixture(scope="module")
def painting(style) -> bytes:
    return style.read_bytes()


def png(size=(96, 64), color=(200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def wait(client, job_id: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def submit(client, content: bytes, **fields) -> httpx.Response:
    files = {"content": ("photo.jpg", content)}
    if "style_image" in fields:
        files["style_image"] = ("painting.jpg", fields.pop("style_image"))
    return client.post("/api/jobs", files=files, data=fields)


def test_fast_job_end_to_end(tmp_path, photo):
    with TestClient(create_app(tmp_path)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        styles = client.get("/api/styles").json()
        assert "udnie" in [s["name"] for s in styles]
        thumb = client.get(styles[0]["thumbnail"])
        assert thumb.headers["content-type"] == "image/png"
        response = submit(client, photo, style="udnie", size="128")
        assert response.status_code == 202, response.text
        job = wait(client, response.json()["id"])
        assert job["state"] == "done" and job["progress"] == 1.0 and job["run_seconds"] > 0
        result = client.get(job["result"])
        image = Image.open(io.BytesIO(result.content))
        assert result.headers["content-type"] == "image/png" and max(image.size) == 128
        page = client.get("/")
        assert page.status_code == 200 and "/app.js" in page.text
        for asset in ("/", "/app.js", "/app.css", "/favicon.svg"):  # nothing from elsewhere
            response = client.get(asset)
            assert response.status_code == 200 and "https://" not in response.text
        assert client.get("/docs").status_code == 404  # FastAPI's page would load a CDN


def test_arbitrary_and_optimize_jobs_stream_events(tmp_path, photo, painting):
    with TestClient(create_app(tmp_path)) as client:
        arbitrary = submit(client, photo, method="arbitrary", style_image=painting, size="96")
        assert wait(client, arbitrary.json()["id"])["state"] == "done"
        # a job records the options that apply to it: no iterations, no video consistency
        assert set(arbitrary.json()["options"]) == {
            "style",
            "size",
            "strength",
            "preserve_color",
            "precision",
        }
        job_id = submit(
            client, photo, method="optimize", style_image=painting, size="64", iterations="4"
        ).json()["id"]
        with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
            events = [
                line.split(": ", 1)[1] for line in stream.iter_lines() if line.startswith("event: ")
            ]
        assert events[-1] == "done" and "progress" in events and "snapshot" in events
        job = client.get(f"/api/jobs/{job_id}").json()
        assert set(job["losses"]) >= {"content", "style"} and job["options"]["iterations"] == 4
        snapshot = client.get(f"/api/jobs/{job_id}/snapshot")
        assert snapshot.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"content": b"not an image at all", "style": "udnie"}, 400, "not an image"),
        ({"content": b"", "style": "udnie"}, 400, "empty"),
        ({"style": "no_such_style"}, 400, "unknown style"),
        ({}, 400, "need a style"),
        ({"method": "arbitrary"}, 400, "style_image"),
        ({"style": "udnie", "size": "100000"}, 422, "less than or equal"),
        ({"style": "udnie", "strength": "2"}, 422, "less than or equal"),
        ({"style": "udnie", "strength": "nan"}, 422, "finite number"),
        ({"style": "udnie", "preserve_color": "sepia"}, 422, "luminance"),
        ({"style": "udnie", "method": "sketch"}, 422, "fast"),
        ({"content": png((40_000, 2)), "style": "udnie"}, 413, "over the limit"),
        ({"content": b"x" * 3000, "style": "udnie"}, 413, "upload limit"),
    ],
)
def test_bad_requests_get_a_clear_4xx(tmp_path, photo, fields, status, message):
    limits = Limits(upload_mb=2500 / 2**20, pixels=50_000)
    with TestClient(create_app(tmp_path, workers=0, limits=limits)) as client:
        content = fields.pop("content", png())
        response = submit(client, content, **fields)
        assert response.status_code == status, response.text
        assert message in str(response.json()["detail"])


def test_a_file_or_text_in_the_wrong_field_is_said_plainly(tmp_path):
    """A painting sent as `style` (the built-in's name) instead of `style_image`, or text
    sent as the photo: a 422 that names the field and says where files go, with the file's
    name, not FastAPI's dump of the upload's internals."""
    with TestClient(create_app(tmp_path, workers=0)) as client:
        files = {"content": ("photo.png", png()), "style": ("painting.jpg", png())}
        response = client.post("/api/jobs", files=files, data={"method": "arbitrary"})
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "style"] and error["input"] == "painting.jpg"
        assert (
            "style takes a value, not a file; files go in content and style_image" in error["msg"]
        )
        assert "_file" not in response.text and "Temporary" not in response.text
        response = client.post("/api/jobs", data={"content": "photo.jpg", "style": "udnie"})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["msg"] == "content takes a file, not text"


def test_missing_job_and_early_result(tmp_path):
    with TestClient(create_app(tmp_path, workers=0)) as client:
        assert client.get("/api/jobs/nope").status_code == 404
        assert client.get("/api/jobs/nope/result").status_code == 404
        job_id = submit(client, png(), style="udnie").json()["id"]
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 409


def test_token(tmp_path):
    with TestClient(create_app(tmp_path, workers=0, token="s3cret")) as client:
        assert client.get("/api/styles").status_code == 401
        for given, status in (("wrong", 401), ("s3cret", 200)):
            headers = {"Authorization": f"Bearer {given}"}
            assert client.get("/api/styles", headers=headers).status_code == status
        assert client.get("/api/styles?token=s3cret").status_code == 200
        assert client.get("/healthz").status_code == 200  # for load balancers


def test_queue_full_is_503_with_retry_after(tmp_path):
    with TestClient(create_app(tmp_path, workers=0, limits=Limits(queue=2))) as client:
        for _ in range(2):
            assert submit(client, png(), style="udnie").status_code == 202
        refused = submit(client, png(), style="udnie")
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0


def test_cancel_and_time_limit(tmp_path, photo, painting):
    with TestClient(create_app(tmp_path, workers=0)) as client:
        job_id = submit(client, png(), style="udnie").json()["id"]
        assert client.delete(f"/api/jobs/{job_id}").json()["state"] == "cancelled"
    limits = Limits(job_seconds=0.0)
    with TestClient(create_app(tmp_path / "b", limits=limits)) as client:
        job_id = submit(
            client, photo, method="optimize", style_image=painting, size="64", iterations="50"
        ).json()["id"]
        job = wait(client, job_id)
        assert job["state"] == "failed" and "time limit" in job["error"]


def test_jobs_survive_a_restart(tmp_path, photo):
    with TestClient(create_app(tmp_path)) as client:
        finished = submit(client, photo, style="candy", size="64").json()["id"]
        assert wait(client, finished)["state"] == "done"
    with TestClient(create_app(tmp_path, workers=0)) as client:  # no worker: stays queued
        waiting = submit(client, photo, style="udnie", size="64").json()["id"]
        interrupted = submit(client, photo, style="mosaic", size="64").json()["id"]
    JobStore(tmp_path / "jobs.sqlite3").update(interrupted, state="running", started=time.time())
    with TestClient(create_app(tmp_path)) as client:  # the process "died"; a new one starts
        assert client.get(f"/api/jobs/{finished}/result").status_code == 200
        assert wait(client, waiting)["state"] == "done"
        assert wait(client, interrupted)["state"] == "done"


def test_video_jobs_paint_every_frame(tmp_path, pan, painting):
    """A short video through the fast and the one-pass methods: progress counted in
    frames, the frames as snapshots, an MP4 with every frame; a long clip, or one for
    optimization, is refused at once."""
    from impasto.io.video import probe

    video = pan.read_bytes()
    with TestClient(create_app(tmp_path)) as client:
        fast = submit(client, video, style="candy", size="64")
        assert fast.status_code == 202, fast.text
        assert fast.json()["options"]["video"] == {"frames": 24, "seconds": 2.0}
        assert fast.json()["options"]["consistency"] == "flow"  # the default, as on the CLI
        with client.stream("GET", f"/api/jobs/{fast.json()['id']}/events") as stream:
            lines = list(stream.iter_lines())
        events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
        assert events[-1] == "done" and "snapshot" in events
        job = client.get(f"/api/jobs/{fast.json()['id']}").json()
        result = client.get(job["result"])
        assert result.headers["content-type"] == "video/mp4"
        assert result.headers["content-disposition"].endswith('.mp4"')
        out = tmp_path / "fast.mp4"
        out.write_bytes(result.content)
        assert probe(out)["frames"] == 24 and (probe(out)["width"], probe(out)["height"]) == (
            64,
            42,
        )
        arbitrary = submit(
            client, video, method="arbitrary", style_image=painting, size="64", consistency="off"
        )
        assert arbitrary.json()["options"]["consistency"] == "off"
        assert wait(client, arbitrary.json()["id"])["state"] == "done"
        shaky = submit(client, video, style="candy", consistency_strength="1.5")
        assert shaky.status_code == 422 and "less than or equal" in shaky.text
        refused = submit(client, video, method="optimize", style_image=painting)
        assert refused.status_code == 400 and "fast or arbitrary" in refused.json()["detail"]
    with TestClient(create_app(tmp_path, workers=0, limits=Limits(video_seconds=1.5))) as client:
        long = submit(client, video, style="candy")
        assert long.status_code == 413 and "lasts 2.0 s" in long.json()["detail"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A real uvicorn server on loopback, in a thread; yields its base URL."""
    import uvicorn

    servers = []

    def start(**options) -> str:
        port = free_port()
        config = uvicorn.Config(
            create_app(tmp_path / f"data{port}", **options),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
        srv = uvicorn.Server(config)
        threading.Thread(target=srv.run, daemon=True).start()
        while not srv.started:
            time.sleep(0.02)
        servers.append(srv)
        return f"http://127.0.0.1:{port}"

    yield start
    for srv in servers:
        srv.should_exit = True


def test_load_none_lost(server, photo):
    """50 jobs from 10 concurrent clients: each finishes, or is refused with 503."""
    base = server(workers=2, limits=Limits(queue=8))
    small = Image.open(io.BytesIO(photo))
    small.thumbnail((128, 128))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG")

    def client_run(n: int) -> list[tuple[int, str | None]]:
        outcomes = []
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(5):
                r = submit(client, buffer.getvalue(), style="udnie", size="64")
                outcomes.append((r.status_code, r.json().get("id")))
        return outcomes

    with ThreadPoolExecutor(10) as pool:
        outcomes = [o for batch in pool.map(client_run, range(10)) for o in batch]
    assert len(outcomes) == 50 and {status for status, _ in outcomes} <= {202, 503}
    accepted = [job_id for status, job_id in outcomes if status == 202]
    assert accepted
    with httpx.Client(base_url=base, timeout=60) as client:
        assert all(wait(client, job_id)["state"] == "done" for job_id in accepted)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_browser_paints_a_photo(server, content):
    """Headless Chromium: upload a photo, pick a style, paint, see the result."""
    sync_api = pytest.importorskip("playwright.sync_api")
    base = server(workers=1)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(base)
            page.wait_for_selector("#builtin button[aria-checked=true]")
            page.set_input_files("#content", str(content))
            page.click("#builtin button[data-name=candy]")
            page.select_option("#size", "256")
            page.click("#paint")
            page.wait_for_selector("#download:not([hidden])", timeout=60_000)
            assert "Done" in page.text_content("#status")
            # the link shows as the picture's address is set; the picture loads after it
            page.wait_for_function("document.querySelector('#after').complete", timeout=10_000)
            width = page.eval_on_selector("#after", "img => img.naturalWidth")
            assert width == 256
            assert page.get_attribute("#builtin button[data-name=candy]", "aria-checked") == "true"
        finally:
            browser.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_browser_paints_a_video(server, pan):
    """Headless Chromium: upload a video, optimization is off for it, the frames show as
    they come, and the result plays."""
    sync_api = pytest.importorskip("playwright.sync_api")
    base = server(workers=1)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            page = browser.new_page()
            page.goto(base)
            page.wait_for_selector("#builtin button[aria-checked=true]")
            page.set_input_files("#content", str(pan))
            assert page.is_disabled("input[name=method][value=optimize]")
            assert page.is_checked("#consistency")  # offered for a video, on by default
            page.select_option("#size", "256")
            page.click("#paint")
            page.wait_for_selector("#download:not([hidden])", timeout=60_000)
            assert "Done" in page.text_content("#status")
            assert page.text_content("#download") == "Download the video"
            page.wait_for_function("document.getElementById('video').readyState >= 1")
            width = page.eval_on_selector("#video", "v => v.videoWidth")
            assert width == 256
        finally:
            browser.close()


def test_cli_serve_refuses_bad_options(tmp_path):
    from impasto.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["serve", "--data-dir", str(blocker / "sub")]) == 2
    assert main(["serve", "--device", "tpu"]) == 2


def test_shutdown_leaves_waiting_jobs_queued(tmp_path, photo):
    """Stopping does not work through the queue first; what waits runs after a restart."""
    from impasto.serve.jobs import JobQueue

    jobs = JobQueue(tmp_path, workers=1)
    jobs.start()
    ids = [
        jobs.submit(
            "fast",
            {
                "style": "udnie",
                "size": 64,
                "strength": 1.0,
                "iterations": 1,
                "preserve_color": None,
            },
            photo,
            None,
        )
        for _ in range(6)
    ]
    jobs.stop()
    states = [JobStore(tmp_path / "jobs.sqlite3").get(i)["state"] for i in ids]
    assert "queued" in states and set(states) <= {"queued", "done"}
    with TestClient(create_app(tmp_path)) as client:
        assert all(wait(client, i)["state"] == "done" for i in ids)
