"""Built-in models: each loads, its recorded hash matches its weights, and it stylizes."""

import pytest

from impasto.cli import main
from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.io.modelfile import load_model, weights_sha256
from impasto.models import builtin_models, resolve_model

BUILTINS = builtin_models()
TOTAL_MB_LIMIT = 40


def test_builtins_are_shipped_and_small():
    assert {"styles", "decoders", "compact", "painter"} <= set(BUILTINS)
    total = sum(p.stat().st_size for p in BUILTINS.values()) / 2**20
    assert total <= TOTAL_MB_LIMIT


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_loads_with_a_matching_hash(name):
    state, meta = load_model(BUILTINS[name])
    assert meta["sha256"] == weights_sha256(state)
    assert resolve_model(name) == BUILTINS[name]
    assert meta["training"]["steps"] > 0 and meta["training"]["seconds"] > 0


def test_styles_builtin_stylizes_every_style(content):
    from impasto.methods.feedforward import FastStylizer

    fast = FastStylizer("styles", "cpu")
    assert len(fast.styles) >= 12
    for style in fast.styles:
        assert fast.run(content, style, size=64).image.size == (64, 48)


def test_decoders_builtin_stylizes(content, style, stylizer):
    from impasto.methods.arbitrary import ArbitraryStylizer, load_decoders

    arbitrary = ArbitraryStylizer.__new__(ArbitraryStylizer)
    arbitrary.device, arbitrary.encoder = stylizer.device, stylizer.vgg
    arbitrary.decoders, _ = load_decoders("decoders")
    assert arbitrary.run(content, style, size=64).image.size == (64, 48)


def test_compact_builtin_stylizes_with_its_own_encoder(content, style):
    from impasto.methods.arbitrary import ArbitraryStylizer

    compact = ArbitraryStylizer("compact", device="cpu")
    assert compact.encoder is compact.decoders.encoder
    assert compact.decoders.arch.encoder_width == 0.5 and compact.decoders.arch.unpool
    assert compact.run(content, style, size=64).image.size == (64, 48)


@pytest.mark.parametrize(
    "photo, painting",
    [
        ("tubingen", "starry_night"),
        ("golden_gate", "the_scream"),
        ("brad_pitt", "picasso_selfport1907"),
    ],
)
def test_painter_builtin_strength_moves_away_from_the_photo(data, stylizer, photo, painting):
    """The default one-pass network: 0 is the photo, and the content distance rises with
    every step of strength."""
    from impasto.losses import content_distance
    from impasto.methods.arbitrary import ArbitraryStylizer

    painter = ArbitraryStylizer(device="cpu")  # the default: painter
    assert painter.decoders.arch.paints and painter.decoders.arch.method == "wct"
    content = next((data / "content").glob(f"{photo}.*"))
    style = next((data / "styles").glob(f"{painting}.*"))
    x = to_tensor(resize_longest(load_image(content), 128))
    distances = []
    for strength in (0, 0.25, 0.5, 0.75, 1):
        picture = painter.run(content, style, size=128, strength=strength).pixels
        distances.append(content_distance(stylizer.vgg, picture, x))
    assert distances[0] == 0
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def test_cli_models_and_sheet(content, tmp_path, capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "styles" in listing and "decoders" in listing
    assert "own encoder (VGG-19 at width 0.5)" in listing
    assert "painter" in listing and "trained to paint (WCT)" in listing
    out = tmp_path / "sheet.png"
    assert main(["sheet", str(content), "-o", str(out), "--size", "64"]) == 0
    assert out.exists()


def test_model_files_with_impossible_metadata_or_weights_are_refused(model_file, tmp_path):
    """Metadata that is not an object, an architecture that is not one or that asks for
    a huge network, weights that are not finite: a ModelError, before anything is built."""
    import json

    import torch
    from safetensors.torch import save

    from impasto.errors import ModelError
    from impasto.io.modelfile import METADATA_KEY, save_model
    from impasto.methods.feedforward import load_transformer

    state, meta = load_model(model_file)

    def write(name, metadata, tensors=state):
        path = tmp_path / name
        path.write_bytes(save(tensors, metadata={METADATA_KEY: json.dumps(metadata)}))
        return path

    with pytest.raises(ModelError, match="not a JSON object"):
        load_model(write("list.safetensors", [1, 2]))
    with pytest.raises(ModelError, match="not a JSON object"):
        load_model(write("string.safetensors", {**meta, "architecture": "transformer"}))
    huge = {**meta["architecture"], "width": 10**7, "blocks": 10**7}
    path = tmp_path / "huge.safetensors"
    save_model(path, state, {"architecture": huge})
    with pytest.raises(ModelError, match="impossible architecture"):
        load_transformer(path)
    broken = {k: v.clone() for k, v in state.items()}
    next(iter(broken.values())).fill_(float("nan"))
    save_model(tmp_path / "nan.safetensors", broken, {"architecture": meta["architecture"]})
    with pytest.raises(ModelError, match="not finite"):
        load_model(tmp_path / "nan.safetensors")
    assert torch.isfinite(next(iter(state.values()))).all()
