"""Every option of every command, driven with hostile values: the answer is a picture or
one line and exit code 2, never a traceback, a black picture or a changed input.

Each case starts from a small command that works and replaces one to three of its
options (or its input) with a value a careless or hostile user might give: not a
number, not finite, negative, zero, huge, empty, a folder, a file that is not what it
should be, a path that cannot be written. A run that takes longer than a few seconds (a
huge but valid number of steps) is interrupted, as a user would, and must then end as
Ctrl-C does. `IMPASTO_HOSTILE_EXAMPLES` sets how many cases run (default 2000).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from impasto import api
from impasto.cli import build_parser, main

EXAMPLES = int(os.environ.get("IMPASTO_HOSTILE_EXAMPLES", "2000"))
SECONDS = 3.0  # a case still running after this is interrupted, as Ctrl-C would
NEVER = {"-h", "--help", "--debug", "--version"}


def baselines(data: Path, model: Path, tmp: Path) -> dict[str, list[str]]:
    """Each command at a size and length that run in a fraction of a second, on copies of
    the test pictures: a hostile output path may name any file the case can see."""
    inputs = tmp / "inputs"
    inputs.mkdir(exist_ok=True)
    photo, painting = str(inputs / "photo.jpg"), str(inputs / "painting.jpg")
    shutil.copy(data / "content/tubingen.jpg", photo)
    shutil.copy(data / "styles/udnie.jpg", painting)
    photos = tmp / "photos"
    photos.mkdir(exist_ok=True)
    Image.open(photo).convert("RGB").resize((48, 36)).save(photos / "a.png")
    small = ["--size", "32"]
    train = [
        "--data",
        str(photos),
        "--steps",
        "1",
        "--batch-size",
        "1",
        "--image-size",
        "32",
        "--workers",
        "0",
        "--sample-every",
        "0",
        "--device",
        "cpu",
    ]
    return {
        "stylize": [photo, "--style", painting, *small, "--iterations", "1", "--min-scale", "32"],
        "fast": [photo, "--model", str(model), *small],
        "arbitrary": [photo, "--style", painting, *small],
        "dream": [photo, *small, "--octaves", "1", "--iterations", "1"],
        "features": [photo, *small, "--top", "2"],
        "evaluate": [photo, "--content", photo, "--style", painting, *small],
        "sheet": [photo, "--model", str(model), *small],
        "export": [str(model), "-o", str(tmp / "m.onnx")],
        "train": [
            "--style",
            painting,
            "-o",
            str(tmp / "t.safetensors"),
            "--width",
            "4",
            "--blocks",
            "1",
            "--style-size",
            "32",
            *train,
        ],
        "train-decoders": [
            "-o",
            str(tmp / "d.safetensors"),
            "--levels",
            "1",
            "--width",
            "0.25",
            *train,
        ],
        "info": [],
        "models": [],
    }


def flags(command: str) -> list[argparse.Action]:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        a
        for a in sub.choices[command]._actions
        if a.option_strings and not NEVER & set(a.option_strings)
    ]


def hostile(tmp: Path, data: Path) -> list[str]:
    folder = tmp / "fixtures" / "a folder"
    folder.mkdir(parents=True, exist_ok=True)
    notes = tmp / "fixtures" / "notes.png"
    notes.write_text("not a picture")
    picture = tmp / "fixtures" / "picture.jpg"
    shutil.copy(data / "styles/starry_night.jpg", picture)
    return [
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e12",
        "100000",
        "",
        "abc",
        "1,2,3",
        "0.5",
        "relu9_9",
        "relu1_1:nan",
        "udnie:nan",
        "x:1",
        "/proc/x.png",
        "/sys/x.png",
        "/nonexistent/x.png",
        str(folder),
        str(notes),
        str(picture),
        "-",
    ]


@pytest.fixture(scope="module")
def world(data, model_file, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    return tmp, baselines(data, model_file, tmp), hostile(tmp, data)


def test_hostile_values_get_a_picture_or_one_line(world, data, capsysbinary, monkeypatch):
    tmp, base, values = world
    shared = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp)
    monkeypatch.setattr(api, "load", api.Loader(keep=4))  # the methods stay loaded
    # An input of "-" reads standard input: an empty one, as in CI (no terminal).
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    inputs = {p: p.read_bytes() for p in (tmp / "inputs").iterdir()}
    commands = sorted(base)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def case(draw):
        command = draw.draw(st.sampled_from(commands), label="command")
        args = list(base[command])
        for action in draw.draw(
            st.lists(st.sampled_from(flags(command)), min_size=1, max_size=3, unique_by=id),
            label="flags",
        ):
            flag = action.option_strings[-1]
            if action.nargs == 0:
                args.append(flag)
                continue
            args += [flag, draw.draw(st.sampled_from(values), label=flag)]
        if args and not args[0].startswith("-") and draw.draw(st.booleans(), label="input"):
            args[0] = draw.draw(st.sampled_from(values), label="input value")
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, SECONDS)
        try:
            code = main([command, *args])
        except SystemExit as e:  # argparse: the command's usage and one error line
            code = e.code
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        err = capsysbinary.readouterr().err.decode(errors="replace")  # stdout: maybe a PNG
        assert "Traceback" not in err, (command, args, err)
        assert code in (0, 2, 130), (command, args, code, err)
        if code == 2:
            assert "error:" in err.strip().splitlines()[-1], (command, args, err)
        for picture in tmp.glob("*.png"):  # what a case wrote: never black, then cleared
            with Image.open(picture) as image:
                assert np.asarray(image.convert("L")).max() > 0, (command, args)
            picture.unlink()

    case()
    assert {p: p.read_bytes() for p in inputs} == inputs  # inputs never overwritten
    assert {p: p.stat().st_mtime_ns for p in shared} == shared  # nor the test data
