import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto.cli import main
from impasto.runtime import retain_freed_memory


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_stylize_end_to_end(content, style, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    code, stdout, _ = run(
        [
            "stylize",
            content,
            "--style",
            style,
            "-o",
            out,
            "--size",
            96,
            "--iterations",
            5,
            "--json",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    summary = json.loads(stdout)
    tries = summary["balance"]["tries"]  # the one scale, painted until the balance lands
    assert summary["iterations"] == 5 * len(tries) and summary["device"] == "cpu"
    assert summary["balance"]["content_weight"] == tries[-1]["content_weight"]
    assert set(summary["losses"]) == {"content", "style", "tv", "total"}
    assert Image.open(out).size == (96, 72)


def test_two_styles_scales_snapshots(content, style, data, tmp_path, capsys):
    out = tmp_path / "blend.png"
    code, _, _ = run(
        [
            "stylize",
            content,
            "--style",
            style,
            "--style",
            data / "styles/udnie.jpg",
            "--style-weights",
            "0.7,0.3",
            "--scales",
            "48,96",
            "--size",
            96,
            "--iterations",
            "3,2",
            "--style-layers",
            "relu1_1:2,relu3_1",
            "--preserve-color",
            "luminance",
            "--save-every",
            2,
            "--snapshots",
            tmp_path / "snaps",
            "-o",
            out,
            "--quiet",
        ],
        capsys,
    )
    assert code == 0 and out.exists()
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [
        "scale1_48px_00002.png",
        "scale2_96px_00002.png",
    ]


@pytest.mark.parametrize(
    "flags, sizes",
    [
        ([], [(136, 102), (192, 144)]),  # balanced: sqrt(2) steps down to 128
        (["--preset", "classic"], [(192, 144)]),  # octaves down to 256: one scale
        (
            ["--preset", "classic", "--scale-step", "1.5", "--min-scale", "96"],
            [(128, 96), (192, 144)],
        ),  # given flags override the preset
    ],
)
def test_presets_and_flags(content, style, tmp_path, capsys, flags, sizes):
    out = tmp_path / "out.png"
    code, stdout, _ = run(
        [
            "stylize",
            content,
            "--style",
            style,
            "-o",
            out,
            "--size",
            192,
            "--iterations",
            1,
            "--json",
            "--quiet",
            *flags,
        ],
        capsys,
    )
    assert code == 0
    assert [tuple(s) for s in json.loads(stdout)["sizes"]] == sizes


def bad_inputs(tmp_path, content):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes(content.read_bytes()[:3000])
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    return [
        ("missing.jpg", [], "no such file"),
        ("empty.jpg", [], "empty file"),
        ("notes.jpg", [], "not an image"),
        ("cut.jpg", [], "truncated"),
        ("tiny.png", [], "too small"),
        (content, ["--max-pixels", "1000"], "over the limit"),
        (content, ["-o", tmp_path / "x.bmpx"], "unknown image extension"),
        (content, ["-o", tmp_path / "no/dir/x.png"], "does not exist"),
        (content, ["-o", content], "never overwrites"),
        (content, ["--weights", tmp_path / "empty.jpg"], "not a readable weights file"),
        (content, ["--style-layers", "relu7_1"], "unknown style layer"),
        (content, ["--iterations", "1,2"], "2 numbers for 1 scales"),
        (content, ["--device", "tpu"], "unknown device"),
        (content, ["--save-every", "2"], "needs --snapshots"),
        (content, ["--average", "1"], "--average: must be at most 0.999"),
        (content, ["--scale-step", "1"], "--scale-step: must be above 1"),
        (content, ["--scale-step", "nan"], "--scale-step: must be a finite number"),
        (content, ["--style-scale", "inf"], "--style-scale: must be a finite number"),
        (content, ["--lr", "inf"], "--lr: must be a finite number"),
        (content, ["--history", "0"], "--history: must be at least 1"),
        (content, ["--seed", "-1"], "--seed: must be at least 0"),
        (content, ["--seed", str(2**64)], "must be at most 4294967295"),
        (content, ["--strength", "1.5"], "--strength/--alpha: must be at most 1"),
        (content, ["--stregth", "1"], "did you mean --strength?"),
    ]


def test_bad_inputs_exit_2_with_one_line(content, style, tmp_path, capsys):
    before = content.read_bytes()
    for source, extra, message in bad_inputs(tmp_path, content):
        path = source if source == content else tmp_path / source
        args = [
            "stylize",
            path,
            "--style",
            style,
            "--size",
            32,
            "--iterations",
            1,
            "--quiet",
            "-o",
            tmp_path / "o.png",
            *extra,
        ]
        try:
            code, _, err = run(args, capsys)
        except SystemExit as e:  # argparse's: the command's usage, then the error
            code, err = e.code, capsys.readouterr().err
            assert err.startswith("usage: impasto stylize"), err
        else:
            assert err.startswith("impasto: error: ") and err.count("\n") == 1, err
        assert code == 2, (source, extra)
        assert message in err, (message, err)
        assert "Traceback" not in err
    assert content.read_bytes() == before


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["stylize", "a.jpg"])  # no --style
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["stylize", "a.jpg", "--style", "b.jpg", "--size", "-5"])
    assert info.value.code == 2


def test_info(capsys):
    code, out, _ = run(["info", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["device"] == "cpu"
    assert report["bf16"] in (True, False) and report["cpu"].endswith("threads")
    assert report["weights"]["convention"] == "caffe" and len(report["weights"]["sha256"]) == 64


def test_console_script(content, style, tmp_path):
    beside = Path(sys.executable).with_name("impasto")  # the venv's script, activated or not
    exe = str(beside) if beside.exists() else shutil.which("impasto")
    if exe is None:
        pytest.skip("the impasto script is not installed")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("impasto ")
    bad = subprocess.run(
        [exe, "stylize", tmp_path / "none.jpg", "--style", style], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    args = ["stylize", tmp_path / "none.jpg", "--style", style, "--debug"]
    debug = subprocess.run(
        [sys.executable, "-m", "impasto.cli", *args], capture_output=True, text=True
    )
    assert "Traceback" in debug.stderr


def test_fast_writes_16_bit_png_and_refuses_16_bit_jpeg(tmp_path, content, model_file):
    from impasto.cli import main

    out = tmp_path / "deep.png"
    args = ["fast", str(content), "--model", str(model_file), "--size", "48", "--bit-depth", "16"]
    assert main([*args, "-o", str(out)]) == 0
    assert out.read_bytes()[24] == 16  # IHDR bit depth
    assert main([*args, "-o", str(tmp_path / "deep.jpg")]) == 2


def test_help_shows_real_defaults_only():
    """Flags without a default say nothing about one, rather than '(default: None)'."""
    from impasto.cli import COMMANDS, build_parser

    for name in COMMANDS:
        parser = build_parser([name])
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        text = commands.choices[name].format_help()
        assert "default: None" not in text, name
        assert len(text.splitlines()) > 5, name  # its flags, not only a line of help
    arbitrary = build_parser(["arbitrary"])._subparsers._group_actions[0].choices["arbitrary"]
    assert "(default: 1)" in arbitrary.format_help()  # --strength
    webcam = build_parser(["webcam"])._subparsers._group_actions[0].choices["webcam"]
    assert "q or Esc quits" in webcam.format_help()  # the window's keys, found nowhere else


def test_a_wrong_value_is_not_taken_for_a_mistyped_flag(capsys):
    """A guess is offered for a flag or command that is not there, not for the words of
    an error about a flag's value ("levels are ..." is no mistyped --levels)."""
    for argv, guess in [
        (["arbitrary", "p.jpg", "--style", "s.jpg", "--levels", "relu9_1"], None),
        (["arbitrary", "p.jpg", "--style", "s.jpg", "--levls", "relu4_1"], "--levels"),
        (["stylze", "p.jpg"], "stylize"),
    ]:
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2
        err = capsys.readouterr().err.splitlines()[-1]
        assert err.endswith(f"(did you mean {guess}?)") if guess else "did you mean" not in err


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_the_command_keeps_freed_memory_under_glibc():
    assert retain_freed_memory()  # both mallopt settings accepted


# Each painting command with what it needs besides the shared options (tiny and quick).
COMMANDS = {
    "stylize": ["--iterations", "3", "--scales", "48"],
    "fast": ["--style", "udnie"],
    "arbitrary": [],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_shared_options_mean_the_same_in_every_method(command, content, style, tmp_path, capsys):
    """One table of shared options, run through every painting command: each is
    accepted, under the same name, and does the same thing."""
    photo = np.asarray(Image.open(content).convert("RGB").resize((48, 36)), dtype=float)
    styled = [] if command == "fast" else ["--style", str(style)]

    def paint(*flags):
        out = tmp_path / f"{command}_{len(list(tmp_path.iterdir()))}.png"
        args = [command, content, *styled, *COMMANDS[command], "--size", 48, "-o", out, "--json"]
        code, stdout, err = run([*args, *flags], capsys)
        assert code == 0, err
        line = json.loads(stdout)
        assert (line["width"], line["height"]) == (48, 36) and line["output"] == str(out)
        return np.asarray(Image.open(out).convert("RGB"), dtype=float)

    full = paint("--strength", "1", "--precision", "fp32")
    none = paint("--strength", "0", "--precision", "fp32")
    # arbitrary's strength moves the features: 0 is the photo as its decoders rebuild it
    # (at 48 px, through four levels, not close); the others blend the pixels
    if command == "arbitrary":
        assert np.abs(none - photo).mean() < 0.7 * np.abs(full - photo).mean()
    else:  # the photo itself, but for resampling
        assert np.abs(none - photo).mean() < 2
    alias = paint("--alpha", "0", "--precision", "fp32")  # another name for --strength
    assert np.abs(alias - none).mean() < 0.01
    half = paint("--strength", "0.5", "--precision", "fp32")
    assert np.abs(none - photo).mean() < np.abs(half - photo).mean() < np.abs(full - photo).mean()

    def chroma(rgb):
        return rgb - rgb.mean(axis=2, keepdims=True)

    kept = paint("--preserve-color", "--precision", "auto")  # bare: luminance
    assert np.abs(chroma(kept) - chroma(photo)).mean() < np.abs(chroma(full) - chroma(photo)).mean()
    paint("--preserve-color", "histogram", "--precision", "bf16")


def test_every_command_reports_a_line_or_json_or_nothing(
    content, model_file, tmp_path, capsys, monkeypatch
):
    """--json gives a JSON line, --quiet nothing; features and sheet name their own
    outputs beside the rest."""
    monkeypatch.chdir(tmp_path)
    commands = [
        ["features", content, "--layer", "relu1_1", "--top", "2", "--size", "32"],
        ["sheet", content, "--model", model_file, "--size", "32"],
        ["export", model_file, "-o", tmp_path / "m.onnx"],
    ]
    for command in commands:
        code, out, _ = run([*command, "--json"], capsys)
        assert code == 0 and json.loads(out)["output"]
        code, out, _ = run([*command, "--quiet"], capsys)
        assert code == 0 and out == ""
    assert (tmp_path / "tubingen.relu1_1.png").exists() and (
        tmp_path / "tubingen.sheet.png"
    ).exists()


@pytest.mark.parametrize(
    "command",
    [
        ["fast", "--size", "100000"],
        ["arbitrary", "--style", "STYLE", "--size", "100000"],
        ["stylize", "--style", "STYLE", "--scales", "100000"],
        ["dream", "--size", "100000"],
    ],
)
def test_a_picture_that_cannot_fit_is_refused_at_once(command, content, style, tmp_path, capsys):
    args = [str(style) if a == "STYLE" else a for a in command]
    code, _, err = run([args[0], content, *args[1:], "-o", tmp_path / "o.png"], capsys)
    assert code == 2 and "100000x75000 picture needs about" in err and "GB free" in err
    assert not (tmp_path / "o.png").exists()


def test_outputs_that_cannot_be_written_are_refused_before_any_work(content, tmp_path, capsys):
    (tmp_path / "plain").write_text("a file")
    for output, message in [
        ("/proc/x.png", "is not writable"),
        (tmp_path / "plain", "unknown image extension"),
        (tmp_path / "plain/x.png", "does not exist"),
    ]:
        code, _, err = run(["fast", content, "-o", output], capsys)
        assert code == 2 and message in err, (output, err)
