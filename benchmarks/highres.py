"""Print resolution: peak memory and wall time of big pictures, tiled and whole.

    python benchmarks/highres.py [--iterations 5] [--markdown FILE]

Each row is one command in its own process (its peak RSS is its own, read from
getrusage after it ends): `impasto stylize` with a fixed schedule (the default ladder,
--iterations per scale, per tile at tiled scales, bf16) whole where it fits this
machine and tiled under --max-memory; `impasto arbitrary` (tiles above 1024 px) and
`impasto fast` (tiles above 1536 px); pastiche's CLI (2 iterations) at the sizes it
completes here.
The pair is ../shared/data's tubingen x starry_night, the photo scaled up to each size.
Targets (issue #7): 4096x3072 optimization with peak RSS <= 8 GB, the fast network at
6000 px with <= 4 GB, and memory that grows with the tile, not the picture.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from impasto.devices import bf16_is_fast
from impasto.options import Setup

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
CONTENT, STYLE = DATA / "content" / "tubingen.jpg", DATA / "styles" / "starry_night.jpg"
BIN = Path(sys.executable).parent


def measure(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one command run in a fresh child process."""
    # Each measurement in its own grandchild: RUSAGE_CHILDREN is a maximum over all children.
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def sizes(spec: str) -> list[int]:
    return [int(s) for s in spec.split(",") if s]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5, help="per scale (per tile)")
    parser.add_argument("--sizes", default="1024,2048,4096")
    parser.add_argument("--fast-sizes", default="1024,2048,4096,6000")
    parser.add_argument("--arbitrary-sizes", default="1024,2048,4096")
    parser.add_argument("--budget", type=int, default=8000, help="--max-memory MB, tiled rows")
    parser.add_argument("--whole-up-to", type=int, default=2048, help="largest untiled size")
    parser.add_argument("--pastiche-up-to", type=int, default=2048)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    impasto, pastiche = str(BIN / "impasto"), BIN / "pastiche"
    precision = "bf16" if bf16_is_fast(torch.device("cpu")) else "fp32"  # fp32 without bf16 kernels
    rows, defaults = [], Setup()  # the networks `impasto arbitrary` and `fast` default to
    with tempfile.TemporaryDirectory() as tmp:
        stylize = [
            impasto,
            "stylize",
            str(CONTENT),
            "--style",
            str(STYLE),
            "-o",
            f"{tmp}/o.png",
            "--iterations",
            str(args.iterations),
            "--precision",
            precision,
            "--quiet",
            "--device",
            "cpu",
        ]
        for size in sizes(args.sizes):
            runs = []
            if size <= args.whole_up_to:
                runs.append(("optimize, whole", ["--max-memory", str(10**6)]))
            # A budget of a third of the whole run's need at the sizes where both run.
            budget = args.budget if size > args.whole_up_to else max(1024, size * size // 1000)
            runs.append((f"optimize, tiled (--max-memory {budget})", ["--max-memory", str(budget)]))
            if size <= args.pastiche_up_to and pastiche.exists():
                runs.append(("pastiche (2 iterations)", None))
            for name, extra in runs:
                if extra is None:
                    cmd = [
                        str(pastiche),
                        "--content",
                        str(CONTENT),
                        "--styles",
                        str(STYLE),
                        "--size",
                        str(size),
                        "--num-steps",
                        "2",
                        "--no-verbose",
                        "--output",
                        f"{tmp}/p.png",
                    ]
                else:
                    cmd = [*stylize, "--size", str(size), *extra]
                seconds, peak = measure(cmd)
                rows.append((size, name, seconds, peak))
                print(rows[-1], flush=True)
        for size in sizes(args.arbitrary_sizes):
            cmd = [
                impasto,
                "arbitrary",
                str(CONTENT),
                "--style",
                str(STYLE),
                "--size",
                str(size),
                "-o",
                f"{tmp}/a.png",
                "--device",
                "cpu",
                "--precision",
                precision,
            ]
            seconds, peak = measure(cmd)
            what = f"arbitrary (built-in {defaults.decoders}, tiles above 1024 px)"
            rows.append((size, what, seconds, peak))
            print(rows[-1], flush=True)
        for size in sizes(args.fast_sizes):
            cmd = [
                impasto,
                "fast",
                str(CONTENT),
                "--model",
                "styles",
                "--style",
                "udnie",
                "--size",
                str(size),
                "-o",
                f"{tmp}/f.png",
                "--device",
                "cpu",
                "--quiet",
            ]
            seconds, peak = measure(cmd)
            rows.append((size, f"fast network (built-in {defaults.model})", seconds, peak))
            print(rows[-1], flush=True)
    lines = [
        f"impasto stylize: default ladder, {args.iterations} iterations per scale (per "
        f"tile at tiled scales), {precision}, on {os.cpu_count()} CPU cores. Pair: "
        f"{CONTENT.name} x {STYLE.name}.",
        "",
        "| longest side | what | wall s | peak RSS MB |",
        "|---|---|---|---|",
    ]
    lines += [f"| {size} | {name} | {s:.0f} | {peak:.0f} |" for size, name, s, peak in rows]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
