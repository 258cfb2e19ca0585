"""The web app under load: fast jobs at 512 px through `impasto serve`, 1 and 2 workers.

    python benchmarks/serve.py [--jobs 40] [--clients 4] [--markdown FILE]

Starts `impasto serve` in its own process on loopback for each worker count; --clients
threads each upload a photo from ../shared/data/content, follow the job's event stream to
its end and fetch the result, until --jobs jobs are done. Reports jobs/s, and p50 / p95
of a job's latency (upload to result downloaded), beside the baseline: the same network
called in this process with no server at all (FastStylizer.run, median).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
SIZE = 512


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_job(client: httpx.Client, photo: bytes) -> float:
    start = time.perf_counter()
    while True:
        r = client.post(
            "/api/jobs",
            files={"content": ("p.jpg", photo)},
            data={"style": "udnie", "size": str(SIZE)},
        )
        if r.status_code != 503:
            break
        time.sleep(float(r.headers.get("Retry-After", 1)))
    r.raise_for_status()
    job_id = r.json()["id"]
    with client.stream("GET", f"/api/jobs/{job_id}/events") as events:
        last = [line for line in events.iter_lines() if line.startswith("event: ")][-1]
    assert last == "event: done", last
    client.get(f"/api/jobs/{job_id}/result").raise_for_status()
    return time.perf_counter() - start


def start_server(data: str, workers: int) -> tuple[subprocess.Popen, str]:
    """`impasto serve` in its own process on a free loopback port, once it answers
    /healthz: (the process, its base URL)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "impasto.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--data-dir",
        data,
        "--device",
        "cpu",
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{base}/healthz").raise_for_status()
            return server, base
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the server did not start")


def serve(workers: int, jobs: int, clients: int, photos: list[bytes]) -> dict:
    with tempfile.TemporaryDirectory() as data:
        server, base = start_server(data, workers)
        try:
            with httpx.Client(base_url=base, timeout=120) as warm:
                one_job(warm, photos[0])  # loads the model in a worker

            def client_loop(n: int) -> list[float]:
                with httpx.Client(base_url=base, timeout=120) as client:
                    count = jobs // clients + (n < jobs % clients)
                    return [one_job(client, photos[(n + i) % len(photos)]) for i in range(count)]

            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                latencies = sorted(t for ts in pool.map(client_loop, range(clients)) for t in ts)
            wall = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(30)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    return {
        "workers": workers,
        "jobs": len(latencies),
        "jobs/s": len(latencies) / wall,
        "p50 ms": statistics.median(latencies) * 1000,
        "p95 ms": p95 * 1000,
    }


def baseline(photos: list[bytes]) -> float:
    from impasto.methods.feedforward import FastStylizer

    fast = FastStylizer("styles", "cpu")
    fast.run(photos[0], "udnie", size=SIZE)
    times = []
    for i in range(10):
        start = time.perf_counter()
        fast.run(photos[i % len(photos)], "udnie", size=SIZE)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    photos = [p.read_bytes() for p in sorted((DATA / "content").iterdir())]
    direct = baseline(photos)
    print(f"no server (FastStylizer.run in process): {direct:.0f} ms per {SIZE}-px photo")
    rows = []
    for workers in (1, 2):
        row = serve(workers, args.jobs, args.clients, photos)
        rows.append(row)
        print(row, flush=True)
    lines = [
        f"Fast jobs (`styles`, udnie) at {SIZE} px on {os.cpu_count()} CPU cores, "
        f"{args.clients} concurrent clients, {args.jobs} jobs; latency is upload to "
        f"result downloaded. In-process baseline with no server: {direct:.0f} ms "
        "per photo (decode, resize, network; no PNG encoding, no HTTP).",
        "",
        "Latency includes waiting behind the other clients' jobs; time per job "
        "(1 / jobs/s) compares with the in-process figure.",
        "",
        "| workers | jobs/s | p50 latency | p95 latency | time per job | vs in-process |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['jobs/s']:.1f} | {r['p50 ms']:.0f} ms | "
            f"{r['p95 ms']:.0f} ms | {1000 / r['jobs/s']:.0f} ms | "
            f"{1000 / r['jobs/s'] / direct:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
