"""DeepDream, feature-map views and the evaluation metric."""

import json

import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.errors import OptionError
from impasto.evaluate import Evaluator
from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.methods.dream import Dreamer
from impasto.methods.features import feature_grid, gram_heatmap


@pytest.fixture(scope="module")
def dreamer(stylizer):
    dreamer = Dreamer.__new__(Dreamer)  # share the session's VGG-19 instead of loading another
    dreamer.device, dreamer.vgg = stylizer.device, stylizer.vgg
    return dreamer


def test_dream_raises_the_layers_activation(dreamer, content):
    layers = {"relu3_1": 1.0}
    before = to_tensor(resize_longest(load_image(content), 96))
    result = dreamer.run(
        content, layers=layers, size=96, octaves=2, iterations=4, seed=0, progress=False
    )
    after = to_tensor(result.image)
    assert after.shape == before.shape and result.iterations == 8
    with torch.no_grad():
        assert dreamer.objective(after, layers) > 1.2 * dreamer.objective(before, layers)


def test_guided_dream_moves_towards_the_guide(dreamer, content, style):
    layers = {"relu4_1": 1.0}
    guide = to_tensor(resize_longest(load_image(style), 224))
    with torch.no_grad():
        feats = dreamer.vgg(guide, layers)["relu4_1"].flatten(2)[0]
    before = to_tensor(resize_longest(load_image(content), 96))
    result = dreamer.run(
        content, layers=layers, size=96, octaves=1, iterations=5, guide=style, progress=False
    )
    with torch.no_grad():
        ob = dreamer.objective(before, layers, {"relu4_1": feats})
        oa = dreamer.objective(to_tensor(result.image), layers, {"relu4_1": feats})
    assert oa > ob


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"layers": {"relu9_9": 1}}, "unknown layer"),
        ({"octave_scale": 1.0}, "above 1"),
        ({"step_size": float("nan")}, "finite"),
        ({"octave_scale": float("nan")}, "finite"),
        ({"step_size": 0}, "step_size must be above 0"),
    ],
)
def test_dream_bad_options(dreamer, content, option, message):
    with pytest.raises(OptionError, match=message):
        dreamer.run(content, progress=False, **option)


def test_feature_grid_has_the_requested_tiles(stylizer, content):
    image = to_tensor(resize_longest(load_image(content), 64))
    grid = feature_grid(stylizer.vgg, image, "relu2_1", top=6, cell=64)
    assert grid.size == (3 * 64, 2 * (64 + 24))  # 3 columns, 2 labelled rows
    heat = gram_heatmap(stylizer.vgg, image, "relu1_1", size=64)
    assert heat.size == (72, 72 + 24)
    with pytest.raises(OptionError, match="unknown layer"):
        feature_grid(stylizer.vgg, image, "relu6_1")


def test_evaluate_distances(stylizer, content, style):
    judge = Evaluator.__new__(Evaluator)
    judge.device, judge.vgg = stylizer.device, stylizer.vgg
    itself = judge.score(content, content, style, size=96)
    painting = judge.score(style, content, style, size=96)
    assert itself["content_distance"] == 0 and itself["style_distance"] > 0.3
    assert itself["moment_distance"] > 0.3
    assert painting["style_distance"] == 0 and painting["moment_distance"] == 0
    assert painting["content_distance"] > 0.5
    assert set(painting["style_distance_by_layer"].values()) == {0}


def test_cli_dream_features_evaluate(content, style, tmp_path, capsys):
    out = tmp_path / "dream.png"
    assert (
        main(
            [
                "dream",
                str(content),
                "-o",
                str(out),
                "--size",
                "64",
                "--octaves",
                "2",
                "--iterations",
                "2",
                "--quiet",
                "--save-every",
                "2",
                "--snapshots",
                str(tmp_path / "snaps"),
            ]
        )
        == 0
    )
    assert Image.open(out).size == (64, 48) and len(list((tmp_path / "snaps").iterdir())) == 2
    grid = tmp_path / "grid.png"
    assert (
        main(
            [
                "features",
                str(content),
                "--layer",
                "relu1_1",
                "--top",
                "4",
                "--size",
                "64",
                "-o",
                str(grid),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--content",
                str(content),
                "--style",
                str(style),
                "--size",
                "64",
                "--json",
            ]
        )
        == 0
    )
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(scores) == {
        "style_distance",
        "moment_distance",
        "content_distance",
        "style_distance_by_layer",
    }
    by_layer = scores["style_distance_by_layer"]
    assert list(by_layer) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert sum(by_layer.values()) / 5 == pytest.approx(scores["style_distance"])
    assert main(["dream", str(content), "-o", str(tmp_path / "x.png"), "--layers", "relu0_0"]) == 2
    assert "unknown layer" in capsys.readouterr().err
