"""`impasto train-arbitrary`: a one-pass network trained with style losses, and how the
arbitrary method uses the file it writes."""

import shutil
from dataclasses import replace

import pytest
import torch

from impasto.cli import main
from impasto.errors import ImpastoError, ModelError
from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.io.modelfile import load_model
from impasto.methods.arbitrary import ArbitraryStylizer
from impasto.models import resolve_model
from impasto.nets.decoders import DecoderArchitecture, prune_decoders
from impasto.training.arbitrary import (
    ArbitraryTrainOptions,
    paint,
    painter_network,
    split_paintings,
    train_arbitrary,
    transfer,
)
from impasto.training.data import find_images, held_out


def options(data, out, **more) -> ArbitraryTrainOptions:
    return ArbitraryTrainOptions(
        **{
            "data": str(data / "train"),
            "paintings": str(data / "paintings"),
            "output": str(out),
            "steps": 12,
            "batch_size": 2,
            "image_size": 64,
            "workers": 0,
            "sample_every": 0,
            "checkpoint_every": 100,
            **more,
        }
    )


@pytest.fixture(scope="module")
def painter_file(data, tmp_path_factory):
    """A network after the few steps a test can afford, and the losses of each step."""
    out = tmp_path_factory.mktemp("painter") / "painter.safetensors"
    seen: list[dict] = []
    meta = train_arbitrary(
        options(data, out, lr=1e-3, holdout=str(data / "holdout")),
        progress=False,
        callback=lambda _, losses: seen.append(losses),
    )
    return out, meta, seen


def test_a_tenth_of_the_paintings_is_held_out(data):
    train, kept = split_paintings(str(data / "paintings"))
    total = len(train) + len(kept)
    assert 0.06 * total < len(kept) < 0.14 * total  # a tenth, by a hash of the name
    assert not set(train) & set(kept)
    assert all(held_out(p) for p in kept) and not any(held_out(p) for p in train)
    assert held_out(kept[0].name) and held_out(f"/elsewhere/{kept[0].name}")  # the name decides


def test_each_picture_takes_its_own_paintings_statistics():
    content, style = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 7, 4) * 3 + 2
    style[:, 1] += style[:, 0]  # correlated channels, which only wct carries over

    def covariance(x):
        return torch.cov(x.flatten(1), correction=0)

    for method in ("adain", "wct"):
        moved = transfer(content, style, method)
        assert torch.allclose(moved.mean((2, 3)), style.mean((2, 3)), atol=1e-4)
        spread = moved.var((2, 3), correction=0)
        assert torch.allclose(spread, style.var((2, 3), correction=0), rtol=1e-3)
        # each picture takes its own painting's, not the batch's
        assert torch.allclose(transfer(content[1:], style[1:], method), moved[1:], atol=1e-5)
    for c, s in zip(moved, style, strict=True):  # wct: the whole covariance
        assert torch.allclose(covariance(c), covariance(s), atol=1e-2, rtol=1e-3)
    adain = transfer(content, style, "adain")
    assert not torch.allclose(covariance(adain[0]), covariance(style[0]), atol=0.5)


def test_training_paints_and_the_file_is_a_one_pass_network(painter_file, content, style):
    out, meta, seen = painter_file
    assert meta["architecture"] == {**meta["architecture"], "levels": [4], "method": "wct"}
    assert meta["architecture"]["paints"] and not meta["architecture"]["unpool"]
    training = meta["training"]
    assert training["paintings"] > 5 * training["held_out_paintings"] > 0
    scores = training["holdout_scores"]
    assert scores["content_distance"] > 0 and 0 < scores["style_distance"] < 5
    # the style loss falls from the reconstruction decoder it started as
    style_losses = [s["style"] for s in seen]
    assert sum(style_losses[-4:]) < sum(style_losses[:4]), style_losses
    # the encoder stayed the compact one, frozen
    state, _ = load_model(out)
    compact, _ = load_model(resolve_model("compact"))
    for name in ("encoder.convs.conv1_1.weight", "encoder.convs.conv4_1.weight"):
        assert torch.equal(state[name], compact[name])
    assert (out.parent / "painter_samples").is_dir() and out.with_name("painter_loss.png").exists()

    painter = ArbitraryStylizer(out, device="cpu")
    result = painter.run(content, style, size=64)
    assert result.image.size == (64, 48)
    assert result.options["method"] is None  # the file's own: WCT
    adain = painter.run(content, style, size=64, method="adain")  # still possible, and differs
    assert not torch.equal(adain.pixels, result.pixels)


def test_a_network_trained_on_adain_features_paints_with_adain(data, tmp_path, content, style):
    out = tmp_path / "adain.safetensors"
    meta = train_arbitrary(options(data, out, steps=2, method="adain"), progress=False)
    assert meta["architecture"]["method"] == meta["training"]["options"]["method"] == "adain"
    painter = ArbitraryStylizer(out, device="cpu")
    mine = painter.run(content, style, size=64)
    assert torch.equal(mine.pixels, painter.run(content, style, size=64, method="adain").pixels)
    assert not torch.equal(mine.pixels, painter.run(content, style, size=64, method="wct").pixels)


def test_strength_moves_the_picture_away_from_the_photo(painter_file, content, style):
    """0 is the photo itself, and each step up moves the picture further from it."""
    painter = ArbitraryStylizer(painter_file[0], device="cpu")
    photo = to_tensor(resize_longest(load_image(content), 64))
    away = []
    for strength in (0, 0.25, 0.5, 0.75, 1):
        picture = painter.run(content, style, size=64, strength=strength).pixels
        away.append(float((picture - photo).abs().mean()))
    assert away[0] < 1e-6
    assert all(a < b for a, b in zip(away, away[1:], strict=False)), away


def test_training_resumes_exactly(data, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    straight: list[dict] = []
    train_arbitrary(
        options(data, tmp_path / "a" / "p.safetensors", steps=5),
        progress=False,
        callback=lambda _, losses: straight.append(losses),
    )

    def stop_at_2(step, _):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_arbitrary(
            options(data, tmp_path / "b" / "p.safetensors", steps=5),
            progress=False,
            callback=stop_at_2,
        )
    resumed: list[dict] = []
    train_arbitrary(
        options(data, tmp_path / "b" / "p.safetensors", steps=5, resume=True),
        progress=False,
        callback=lambda _, losses: resumed.append(losses),
    )
    assert resumed == straight[2:]


def test_temporal_training_steadies_the_network(data, painter_file, tmp_path):
    """Fine-tuned with --temporal-weight, a one-pass network paints a photo moved a little
    (and noised) much closer to its picture of the photo moved the same way than its twin
    fine-tuned as long without it."""
    import numpy as np

    from impasto.methods.arbitrary import load_decoders
    from impasto.training.data import find_images, move, random_motion

    photos = [
        to_tensor(resize_longest(load_image(p), 64)) for p in find_images(data / "holdout")[0][:4]
    ]
    painting = to_tensor(
        resize_longest(load_image(split_paintings(str(data / "paintings"))[1][0]), 64)
    )

    def gap(path) -> float:
        net = load_decoders(path)[0].eval()
        rng, gaps = np.random.default_rng(1), []  # the same motions for each network
        for photo in photos:
            theta = random_motion(rng, 64)[None]
            carried = move(paint(net, photo, painting), theta)
            seen = move(torch.ones_like(photo[:, :1]), theta, padding="zeros") > 0.999
            moved = paint(net, move(photo, theta), painting)
            gaps.append(((moved - carried).abs() * seen).sum() / seen.sum() / 3)
        return float(sum(gaps) / len(gaps))

    def finetune(name, **more) -> str:
        out = tmp_path / f"{name}.safetensors"
        history: list[dict] = []
        train_arbitrary(
            options(data, out, encoder=str(painter_file[0]), lr=1e-3, image_size=160, **more),
            progress=False,
            callback=lambda _, losses: history.append(losses),
        )
        assert ("temporal" in history[0]) == bool(more)
        return str(out)

    steady, twin = finetune("steady", temporal_weight=1e-2), finetune("twin")
    assert gap(steady) < 0.7 * gap(twin)


def test_modulated_blocks_start_at_nothing_then_take_the_paintings_statistics(content, style):
    """A decoder given the painting's statistics at relu1_1 ... relu3_1 paints exactly as
    the one it starts from until it has learnt to use them; then the same relu4_1
    features with other statistics there make another picture."""
    photo = to_tensor(resize_longest(load_image(content), 64))
    painting = to_tensor(resize_longest(load_image(style), 64))
    plain, modulated = painter_network("painter"), painter_network("painter", modulated=(1, 2, 3))
    assert modulated.arch.modulated == (1, 2, 3)
    before = paint(plain, photo, painting)
    assert torch.equal(paint(modulated, photo, painting), before)

    decoder = modulated.decoders["4"]
    features = torch.rand(1, 256, 6, 8) * 2000
    codes = lambda v: {  # noqa: E731
        b: torch.full((1, m.scale.in_features), v)
        for b, m in ((int(k), m) for k, m in decoder.modulations.items())
    }
    with torch.no_grad():
        assert torch.equal(
            decoder(features, (48, 64), None, codes(0.5)),
            decoder(features, (48, 64), None, codes(2.0)),
        )
        decoder.modulations["1"].shift.weight.fill_(0.05)  # as if trained
        decoder.modulations["3"].scale.weight.fill_(0.05)
        a, b = (
            decoder(features, (48, 64), None, codes(0.5)),
            decoder(features, (48, 64), None, codes(2.0)),
        )
    assert (a - b).abs().mean() > 0.01
    assert (paint(modulated, photo, painting) - before).abs().mean() > 0.01


def test_a_modulated_network_trains_and_paints(data, tmp_path, content, style):
    out = tmp_path / "modulated.safetensors"
    meta = train_arbitrary(options(data, out, steps=4, lr=1e-3, modulate=[1, 3]), progress=False)
    assert meta["architecture"]["modulated"] == [1, 3]
    state, _ = load_model(out)
    learnt = [v for k, v in state.items() if ".modulations." in k and k.endswith("weight")]
    assert len(learnt) == 4 and all(w.abs().sum() > 0 for w in learnt)  # from zero

    painter = ArbitraryStylizer(out, device="cpu")
    photo = to_tensor(resize_longest(load_image(content), 64))
    assert torch.equal(painter.run(content, style, size=64, strength=0).pixels, photo)
    full = painter.run(content, style, size=64).pixels
    assert full.shape == photo.shape and (full - photo).abs().mean() > 0.01
    # the paintings' statistics kept include the modulated blocks' layers
    (kept,) = painter._kept.values()
    assert set(kept[0]) == {"relu1_1", "relu3_1", "relu4_1"}
    # in tiles each block takes the same statistics (the whole picture's): the same picture
    whole = painter.run(content, style, size=256, strength=0.7).pixels
    painter.tile = 192
    tiled = painter.run(content, style, size=256, strength=0.7).pixels
    assert tiled.shape == whole.shape and (tiled - whole).abs().mean() < 0.03
    assert painter.reconstruct(content, 4, size=64).size == (64, 48)
    with pytest.raises(ModelError, match="statistics at relu1_1, relu3_1"):
        painter.decoders[4](torch.zeros(1, 256, 4, 4), (32, 32))
    with pytest.raises(ModelError, match="impossible decoders"):
        DecoderArchitecture.from_dict({**meta["architecture"], "modulated": [4]})
    with pytest.raises(ImpastoError, match="also modulates blocks 1,3"):
        train_arbitrary(options(data, tmp_path / "again.safetensors", encoder=str(out)))


def test_a_narrower_decoder_starts_from_the_strongest_filters(content, style):
    photo = to_tensor(resize_longest(load_image(content), 64))
    painting = to_tensor(resize_longest(load_image(style), 64))
    net = painter_network("painter", modulated=(1, 3))
    for modulation in net.decoders["4"].modulations.values():  # as if trained
        for linear in (modulation.scale, modulation.shift):
            torch.nn.init.normal_(linear.weight, std=0.01)
    same = prune_decoders(net, net.arch.width)  # every filter kept, in order: the same net
    assert torch.equal(paint(same, photo, painting), paint(net, photo, painting))

    narrow = prune_decoders(net, 0.25)
    assert narrow.arch == replace(net.arch, width=0.25)
    big, small = net.decoders["4"], narrow.decoders["4"]
    first = big.stages[0][0][0][1].weight  # relu4_1 -> block 3: 128 filters, 64 kept
    kept = first.abs().sum((1, 2, 3)).topk(64).indices.sort().values
    assert torch.equal(small.stages[0][0][0][1].weight, first[kept])
    assert torch.equal(small.modulations["3"].scale.weight, big.modulations["3"].scale.weight[kept])
    second = big.stages[0][1][0][1].weight[:, kept]  # the next conv reads what was kept
    strongest = second.abs().sum((1, 2, 3)).topk(64).indices.sort().values
    assert torch.equal(small.stages[0][1][0][1].weight, second[strongest])
    assert small.modulations["1"].shift.out_features == 16
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < 0.4 * count(big)
    assert paint(narrow, photo, painting).shape == photo.shape
    frozen = painter_network("painter", width=0.25)  # as training starts it
    assert frozen.arch.width == 0.25 and not any(
        p.requires_grad for p in frozen.encoder.parameters()
    )


def test_a_narrower_network_learns_to_paint_its_teachers_pictures(data, tmp_path):
    """Distillation, on two photos and two paintings that the test's few steps can learn:
    the pruned network's pictures of them come closer to the teacher's, and the file it
    writes is a one-pass network of its width."""
    photos = find_images(str(data / "train"))[0][:2]
    paintings = split_paintings(str(data / "paintings"))[0][:2]
    for folder, files in (("train", photos), ("paintings", paintings)):
        (tmp_path / folder).mkdir()
        for f in files:
            shutil.copy(f, tmp_path / folder)
    out = tmp_path / "narrow.safetensors"
    seen: list[dict] = []
    distil = {"encoder": "painter", "teacher": "painter", "width": 0.25, "style_weight": 0.0}
    meta = train_arbitrary(
        options(tmp_path, out, steps=20, lr=1e-3, **distil),
        progress=False,
        callback=lambda _, losses: seen.append(losses),
    )
    assert meta["architecture"]["width"] == 0.25
    assert meta["training"]["options"]["teacher"] == "painter"
    assert "style" not in seen[0] and {"pixel", "feature"} <= set(seen[0])  # no VGG-19
    pixel = [s["pixel"] for s in seen]
    assert sum(pixel[-5:]) < 0.8 * sum(pixel[:5]), pixel

    def distance(net) -> float:  # to the teacher's pictures of the four pairs
        pictures = [to_tensor(resize_longest(load_image(p), 64)) for p in photos + paintings]
        pairs = [(a, b) for a in pictures[:2] for b in pictures[2:]]
        return sum((paint(net, a, b) - paint(teacher, a, b)).pow(2).mean() for a, b in pairs)

    teacher = painter_network("painter")
    learnt = painter_network(str(out))  # the file's own decoder
    assert distance(learnt) < 0.7 * distance(painter_network("painter", width=0.25))
    result = ArbitraryStylizer(out, device="cpu").run(
        data / "content/tubingen.jpg", paintings[0], size=64
    )
    assert result.image.size == (64, 48)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"teacher": "compact"}, "compact: not a network trained to paint"),
        ({"teacher": "painter", "method": "adain"}, "give --method wct"),
        ({"teacher": "painter", "encoder": "decoders"}, "compact encoder"),
        ({"width": 0.0}, "width must be above 0"),
        ({"modulate": [4]}, "the decoder's blocks are 1 ... 3"),
        ({"style_weight": -1.0}, "style_weight must be at least 0"),
        ({"style_layers": {"relu9_1": 1.0}}, "relu9_1"),
        ({"style_loss": "l1"}, "style_loss must be one of"),
        ({"method": "svd"}, "method must be one of"),
        ({"encoder": "styles"}, "decoders"),
        ({"encoder": "decoders"}, "compact encoder"),
    ],
)
def test_bad_options(data, tmp_path, change, message):
    with pytest.raises(ImpastoError, match=message):
        train_arbitrary(options(data, tmp_path / "p.safetensors", **change), progress=False)


def test_cli_train_arbitrary(data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train-arbitrary", "--data", str(data / "train"), "-o", str(tmp_path / "p.safetensors")]
    assert main([*args, "--paintings", str(empty)]) == 2
    assert "no readable images" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # --paintings is required
        main(args)
    assert info.value.code == 2 and "--paintings" in capsys.readouterr().err
