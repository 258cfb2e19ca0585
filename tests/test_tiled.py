"""Print resolution: optimization in tiles pulled toward the whole style's statistics."""

import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.io.images import to_tensor
from impasto.losses import Moments
from impasto.methods.tiled import tiled_moments
from impasto.methods.tiles import optimization_tile


def gradient(width: int, height: int) -> Image.Image:
    """A smooth two-way colour gradient: any seam would show as a step in it."""
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    rgb = np.concatenate([0.2 + 0.6 * x + 0 * y, 0.3 + 0.5 * y + 0 * x, 0.8 - 0.5 * x * y], -1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8))


def test_tiled_result_has_no_seams_and_matches_untiled(stylizer, style):
    photo = gradient(384, 256)
    common = dict(size=384, scales=[384], iterations=8, progress=False, seed=0)
    whole = to_tensor(stylizer.run(photo, style, **common).image)
    tiled = to_tensor(stylizer.run(photo, style, tile=256, **common).image)
    # Tiles start at x = 0 and 128 and end at 256 and 384: their edges are columns 128, 256.
    steps = (tiled[..., 1:] - tiled[..., :-1]).abs().mean(dim=(0, 1, 2))  # per column
    interior = steps.median()
    for edge in (127, 255):
        assert steps[edge] < 2.0 * interior, (edge, float(steps[edge]), float(interior))
    assert (tiled - whole).abs().mean() < 0.08


def test_tiled_moments_equal_the_whole_images(stylizer, style):
    image = to_tensor(Image.open(style).convert("RGB").resize((320, 256)))
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    tiled = tiled_moments(image, layers, 128, partial(stylizer.features, precision="fp32"))
    with torch.no_grad():
        whole = stylizer.vgg(image, layers)
    for name in layers:
        expected = Moments.of(whole[name])
        for got, want in ((tiled[name].mean, expected.mean), (tiled[name].square, expected.square)):
            error = (got - want).norm() / want.norm()
            assert error < 0.05, (name, float(error))


def test_tile_size_follows_the_budget():
    assert optimization_tile(512, 384, None) is None
    assert optimization_tile(512, 384, 8 * 2**30) is None  # fits whole
    small, smaller = optimization_tile(3072, 4096, 3 * 2**30), optimization_tile(3072, 4096, 2**30)
    assert small > smaller >= 256 and small % 32 == 0


def test_memory_stays_under_the_budget(tmp_path, content, style):
    """1024 px in one scale, whole it would need ~2.4 GB; with a 1200 MB budget it is
    tiled and the process's peak RSS stays under the budget (25% margin)."""
    out = tmp_path / "big.png"
    cmd = [
        sys.executable,
        "-m",
        "impasto.cli",
        "stylize",
        str(content),
        "--style",
        str(style),
        "-o",
        str(out),
        "--size",
        "1024",
        "--scales",
        "1024",
        "--iterations",
        "2",
        "--max-memory",
        "1200",
        "--device",
        "cpu",
        "--quiet",
    ]
    # A fresh process runs it: RUSAGE_CHILDREN is a maximum over every child a process
    # ever had, and this test process has had others (torchrun, the CLI tests).
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], check=True, timeout=600, capture_output=True, text=True
    )
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 1200 * 1.25, peak_mb
    assert max(Image.open(out).size) == 1024


def test_bad_tile_options(stylizer, content, style):
    from impasto.errors import OptionError

    with pytest.raises(OptionError, match="tile must be at least"):
        stylizer.run(content, style, tile=100, progress=False)
    with pytest.raises(OptionError, match="max_memory"):
        stylizer.run(content, style, max_memory=10, progress=False)
