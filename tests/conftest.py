from pathlib import Path

import pytest

from impasto.methods.optimize import Stylizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
