"""The web app under two faults, all processes real: a burst of big uploads, and a database
another process holds locked.

    python benchmarks/serve_faults.py [--lock-seconds 30] [--markdown FILE]

1. Memory: four concurrent uploads of a 6300x6300 16-bit greyscale PNG (~0.4 MB each, 40
   M pixels decoded) to `impasto serve`; the server's peak resident memory (VmHWM) against
   its resident memory when idle.
2. A locked database: another process takes SQLite's write lock on the job store for
   --lock-seconds while 8 fast jobs are posted; how long the posts waited, whether every
   job finished, and whether the worker lived (/healthz).
"""

import argparse
import io
import sqlite3
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from serve import start_server  # benchmarks/serve.py


def status(pid: int, key: str) -> int:
    """A /proc/PID/status memory figure, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(key)


def start(folder: str) -> tuple[subprocess.Popen, httpx.Client]:
    server, base = start_server(folder, workers=1)
    return server, httpx.Client(base_url=base, timeout=600)


def big_png() -> bytes:
    y, x = np.mgrid[0:6300, 0:6300]
    buffer = io.BytesIO()
    Image.fromarray(((x * 7 + y * 3) % 65535).astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (180, 120, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


def memory(upload: bytes) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server, client = start(folder)
        try:
            time.sleep(2)
            idle = status(server.pid, "VmRSS")

            def post(_) -> int:
                files = {"content": ("big.png", upload)}
                return client.post("/api/jobs", files=files, data={"style": "udnie"}).status_code

            start_t = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(post, range(4)))
            seconds = time.perf_counter() - start_t
            peak = status(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait()
    return {
        "idle MB": idle,
        "peak MB": peak,
        "growth MB": peak - idle,
        "codes": codes,
        "seconds": round(seconds, 1),
    }


def locked(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server, client = start(folder)
        try:
            lock = sqlite3.connect(
                Path(folder) / "jobs.sqlite3", isolation_level=None, check_same_thread=False
            )
            lock.execute("BEGIN EXCLUSIVE")
            threading.Timer(seconds, lock.rollback).start()
            photo, start_t = jpeg(), time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                posted = list(
                    pool.map(
                        lambda _: client.post(
                            "/api/jobs",
                            files={"content": ("p.jpg", photo)},
                            data={"style": "udnie", "size": "128"},
                        ),
                        range(8),
                    )
                )
            waited = time.perf_counter() - start_t
            ids = [r.json()["id"] for r in posted if r.status_code == 202]
            states = []
            for job_id in ids:
                for _ in range(1200):
                    state = client.get(f"/api/jobs/{job_id}").json()["state"]
                    if state in ("done", "failed", "cancelled"):
                        break
                    time.sleep(0.1)
                states.append(state)
            health = client.get("/healthz")
        finally:
            server.terminate()
            server.wait()
    return {
        "accepted": len(ids),
        "posts waited s": round(waited, 1),
        "done": states.count("done"),
        "healthz": health.status_code,
        "workers": health.json()["workers"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lock-seconds", type=float, default=30.0)
    p.add_argument("--markdown")
    args = p.parse_args()
    upload = big_png()
    m = memory(upload)
    print(m, flush=True)
    lock = locked(args.lock_seconds)
    print(lock, flush=True)
    table = "\n".join(
        [
            "| fault | result |",
            "|---|---|",
            f"| 4 concurrent 6300x6300 16-bit uploads ({len(upload) / 2**20:.1f} MB each) | "
            f"answered {m['codes']} in {m['seconds']} s; resident memory {m['idle MB']} MB idle, "
            f"peak {m['peak MB']} MB: +{m['growth MB']} MB |",
            f"| job store locked {args.lock_seconds:g} s by another process, 8 posts | "
            f"{lock['accepted']} accepted after {lock['posts waited s']} s, {lock['done']} done; "
            f"/healthz {lock['healthz']}, {lock['workers']} worker alive |",
        ]
    )
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
