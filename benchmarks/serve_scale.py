"""The shared job store under faults, all processes real: PostgreSQL, API servers and
workers, each in its own process on loopback.

    python benchmarks/serve_scale.py [--jobs 200] [--clients 20] [--size 256] [--markdown FILE]

1. Faults: 2 API servers (`impasto serve --store`) and 3 workers (`impasto worker`);
   --clients threads post --jobs fast jobs between them and poll each to its end. Once a
   third of the jobs are done one worker is killed with SIGKILL, and once half are done
   one API server is stopped and started again; a client whose server does not answer
   turns to the other. Then the database is read: every job done, each result written
   exactly once, none lost, and how many jobs ran a second time.
2. Scaling: the same jobs through one API server with 1 worker, then with 3 workers;
   jobs/s of each. Workers share the machine's cores, so this shows scaling only on a
   machine with cores (or GPUs) for each worker.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from serve import free_port  # benchmarks/serve.py

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
sys.path.insert(0, str(HERE.parent / "tests"))
from postgres import Cluster  # noqa: E402  (tests/postgres.py: a throwaway server)

LEASE = 8  # s: a killed worker's job goes to another after this


def impasto(*argv: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "impasto.cli", *argv]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Server:
    """An `impasto serve --store` process on a fixed port, which can be restarted."""

    def __init__(self, store: str):
        self.store, self.port = store, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.process = impasto("serve", "--store", self.store, "--port", str(self.port))
        for _ in range(300):
            try:
                httpx.get(f"{self.base}/healthz").raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def workers(store: str, n: int) -> list[subprocess.Popen]:
    started = [
        impasto("worker", "--store", store, "--device", "cpu", "--lease", str(LEASE))
        for _ in range(n)
    ]
    with psycopg.connect(store) as db:  # each has registered with the queue
        for _ in range(600):
            alive = db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0]
            if alive >= n:
                return started
            time.sleep(0.1)
    raise RuntimeError("the workers did not start")


def run_jobs(
    servers: list[Server], jobs: int, clients: int, photos: list[bytes], size: int, done: list
) -> float:
    """Post `jobs` jobs from `clients` threads and wait for each; the wall time in s."""

    def call(n: int, method: str, path: str, **kw) -> httpx.Response:
        for attempt in range(600):  # the server's turn, else the other's, till one answers
            server = servers[(n + attempt) % len(servers)]
            try:
                r = httpx.request(method, f"{server.base}{path}", timeout=60, **kw)
                if r.status_code != 503:
                    return r
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("no server answered")

    def client(n: int) -> None:
        for i in range(jobs // clients + (n < jobs % clients)):
            photo = photos[(n + i) % len(photos)]
            data = {"method": "fast", "style": "udnie", "size": str(size)}
            r = call(n, "POST", "/api/jobs", files={"content": ("p.jpg", photo)}, data=data)
            job_id = r.json()["id"]
            while (job := call(n, "GET", f"/api/jobs/{job_id}").json())["state"] not in (
                "done",
                "failed",
                "cancelled",
            ):
                time.sleep(0.05)
            assert job["state"] == "done", job
            assert call(n, "GET", f"/api/jobs/{job_id}/result").status_code == 200
            done.append(job_id)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return time.perf_counter() - start


def faults(store: str, jobs: int, clients: int, photos: list[bytes], size: int) -> dict:
    servers = [Server(store), Server(store)]
    crew = workers(store, 3)
    done: list[str] = []
    events = []

    def saboteur() -> None:
        while len(done) < jobs // 3:
            time.sleep(0.05)
        crew[0].send_signal(signal.SIGKILL)
        events.append(f"worker killed with SIGKILL after {len(done)} jobs")
        while len(done) < jobs // 2:
            time.sleep(0.05)
        servers[1].stop()
        events.append(f"API server stopped after {len(done)} jobs")
        servers[1].start()
        events.append(f"API server started again after {len(done)} jobs")

    sabotage = threading.Thread(target=saboteur)
    sabotage.start()
    try:
        wall = run_jobs(servers, jobs, clients, photos, size, done)
        sabotage.join()
    finally:
        for process in crew:
            process.terminate()
        for server in servers:
            server.stop()
    with psycopg.connect(store) as db:
        rows = db.execute("SELECT state, attempt, results_written FROM impasto_jobs").fetchall()
    return {
        "wall s": wall,
        "jobs/s": jobs / wall,
        "posted": len(rows),
        "done": sum(r[0] == "done" for r in rows),
        "written once": sum(r[2] == 1 for r in rows),
        "ran twice": sum(r[1] > 1 for r in rows),
        "events": events,
    }


def scaling(store: str, n: int, jobs: int, clients: int, photos: list[bytes], size: int) -> float:
    server = Server(store)
    crew = workers(store, n)
    try:
        run_jobs([server], clients, clients, photos, size, [])  # each worker loads its model
        return jobs / run_jobs([server], jobs, clients, photos, size, [])
    finally:
        for process in crew:
            process.terminate()
            process.wait(30)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    photos = [p.read_bytes() for p in sorted((DATA / "content").iterdir())]
    with Cluster(max_connections=200) as store:
        result = faults(store, args.jobs, args.clients, photos, args.size)
    print(result, flush=True)
    rates = {}
    for n in (1, 3):
        with Cluster(max_connections=200) as store:
            rates[n] = scaling(store, n, args.jobs // 2, args.clients, photos, args.size)
        print(f"{n} worker(s): {rates[n]:.1f} jobs/s", flush=True)
    report = "\n".join(
        [
            f"Fast jobs (`styles`, udnie) at {args.size} px, {args.clients} clients, on "
            f"{os.cpu_count()} CPU cores; PostgreSQL, API servers and workers each in its "
            "own process.",
            "",
            f"**Faults**: {args.jobs} jobs through 2 API servers and 3 workers; "
            + "; ".join(result["events"])
            + ".",
            "",
            "| jobs posted | done | result written once | ran a second time | jobs/s |",
            "|---|---|---|---|---|",
            f"| {result['posted']} | {result['done']} | {result['written once']} | "
            f"{result['ran twice']} | {result['jobs/s']:.1f} |",
            "",
            f"**Scaling**: {args.jobs // 2} jobs through one API server.",
            "",
            "| workers | jobs/s | vs 1 worker |",
            "|---|---|---|",
            *(f"| {n} | {rates[n]:.1f} | {rates[n] / rates[1]:.2f}x |" for n in rates),
        ]
    )
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report + "\n")


if __name__ == "__main__":
    main()
