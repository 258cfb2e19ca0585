import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from impasto.methods.optimize import Stylizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Built graphs go to a cache of the test run's own, not the user's.
os.environ["IMPASTO_CACHE"] = tempfile.mkdtemp(prefix="impasto-test-cache-")


@pytest.fixture(scope="session")
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"test images not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def content(data) -> Path:
    return data / "content" / "tubingen.jpg"


@pytest.fixture(scope="session")
def style(data) -> Path:
    return data / "styles" / "starry_night.jpg"


@pytest.fixture(scope="session")
def stylizer() -> Stylizer:
    return Stylizer(device="cpu")  # VGG-19 loaded once for the whole session


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    """A small untrained three-style network saved as a model file."""
    import torch

    from impasto.io.modelfile import save_model
    from impasto.nets.transformer import Architecture, TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(
        Architecture(styles=("starry_night", "udnie", "the_scream"), width=8, blocks=2)
    )
    with torch.no_grad():  # distinct per-style parameters, as after training
        for p in net.parameters():
            if p.dim() == 2:
                p.add_(torch.randn_like(p) * 0.3)
    path = tmp_path_factory.mktemp("models") / "three.safetensors"
    save_model(path, net.state_dict(), {"architecture": net.arch.to_dict()})
    return path


@pytest.fixture
def native_bf16(monkeypatch):
    """Run bf16 as asked even on a CPU without bf16 kernels (slowly), so that the tests of
    bf16's numbers test bf16 everywhere; impasto itself would fall back to fp32 there."""
    from impasto import devices

    monkeypatch.setattr(devices, "bf16_is_fast", lambda device: True)


@pytest.fixture(scope="session")
def pan(content, tmp_path_factory) -> Path:
    """Two seconds of a slow pan over a photo: 24 frames of 96x64 at 12 frames/s."""
    pytest.importorskip("av")
    from clips import panning_clip

    return panning_clip(content, tmp_path_factory.mktemp("clip") / "pan.mp4", 24, (96, 64), 2)


@pytest.fixture
def fresh_cli(tmp_path):
    """Runs impasto's command line in a new Python process, with a graph cache of its own
    (tmp_path / "cache"): its exit code, plus 10 if it imported torch, and its stderr."""

    def run(args: list) -> tuple[int, str]:
        code = (
            "import sys; from impasto.cli import main; "
            f"code = main({[str(a) for a in args]!r}); "
            "sys.exit(10 + code if 'torch' in sys.modules else code)"
        )
        env = {**os.environ, "IMPASTO_CACHE": str(tmp_path / "cache")}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        return done.returncode, done.stderr.decode()

    return run
