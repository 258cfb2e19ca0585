"""One-pass arbitrary style: transforms, decoders, their training and the CLI."""

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.errors import ModelError, OptionError
from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.io.modelfile import load_model
from impasto.methods.arbitrary import KEPT_STATISTICS, ArbitraryStylizer, load_decoders
from impasto.methods.transforms import RunningMoments, adain, apply_map, moments, wct
from impasto.nets.decoders import Decoders
from impasto.training.decoders import DecoderOptions, train_decoders


@pytest.fixture(scope="module")
def decoders_file(data, tmp_path_factory):
    """Decoders for relu1_1 and relu2_1 after the short training a test can afford."""
    out = tmp_path_factory.mktemp("decoders") / "dec.safetensors"
    opts = DecoderOptions(
        data=str(data / "train"),
        output=str(out),
        levels=(1, 2),
        steps=30,
        batch_size=4,
        image_size=64,
        workers=0,
        sample_every=0,
        lr=3e-3,
        holdout=str(data / "holdout"),
    )
    train_decoders(opts, progress=False)
    return out


@pytest.fixture(scope="module")
def arbitrary(decoders_file, stylizer):
    a = ArbitraryStylizer.__new__(ArbitraryStylizer)  # reuse the session's VGG-19
    a.device, a.encoder = stylizer.device, stylizer.vgg
    a.decoders, a.metadata = load_decoders(decoders_file)
    return a


def features(stylizer, path, layer="relu2_1", size=64):
    x = to_tensor(resize_longest(load_image(path), size))
    with torch.no_grad():
        return stylizer.vgg(x, [layer])[layer]


def covariance(f):
    flat = f[0].double().flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    return flat @ flat.T / (flat.shape[1] - 1)


def test_wct_gives_the_style_covariance(stylizer, content, style):
    c, s = features(stylizer, content), features(stylizer, style)
    out = wct(c, s, eps=1e-8)
    target = covariance(s)
    assert out.shape == c.shape
    assert (covariance(out) - target).norm() / target.norm() < 0.02
    torch.testing.assert_close(out.mean((2, 3)), s.mean((2, 3)), rtol=1e-3, atol=1e-2)
    assert torch.equal(wct(c, s, alpha=0.0), c)


def test_moments_from_parts_match_float64():
    """Float32 scatter about a rough mean, parts combined in float64: the whole's mean and
    covariance to ~1e-6 even with a large offset, from float32 or bfloat16 parts."""
    torch.manual_seed(0)
    x = torch.randn(48, 30000, dtype=torch.float64) * 3 + 100
    centred = x - x.mean(1, keepdim=True)
    truth = centred @ centred.T / x.shape[1]
    running = RunningMoments()
    for part in x.float().split(7000, 1):  # uneven parts, as tiles are
        running.add(part)
    found = running.result()  # the style losses' statistics: mean and second moment
    mean, cov = found.mean, found.covariance()
    assert (mean - x.mean(1)).abs().max() < 1e-4
    assert (cov - truth).norm() / truth.norm() < 1e-6
    rounded = x.to(torch.bfloat16)
    exact = rounded.double() - rounded.double().mean(1, keepdim=True)
    cov = moments([rounded]).covariance()
    assert (cov - exact @ exact.T / x.shape[1]).norm() / truth.norm() < 1e-5


def test_apply_map_keeps_dtype_and_layout():
    """The map runs as a 1×1 convolution on the features as they are (bf16,
    channels-last: what a decoder takes next); the identity gives them back exactly."""
    f = torch.rand(1, 16, 12, 10).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    eye, zero = torch.eye(16, dtype=torch.float64), torch.zeros(16, 1, dtype=torch.float64)
    same = apply_map(f, (eye, zero))
    assert torch.equal(same, f) and same.is_contiguous(memory_format=torch.channels_last)
    mixing, shift = torch.randn(16, 16, dtype=torch.float64), torch.randn(16, 1).double()
    want = (mixing @ f[0].double().flatten(1) + shift).reshape(f.shape)
    assert (apply_map(f.float(), (mixing, shift)).double() - want).abs().max() < 1e-4


def test_wct_survives_flat_images(stylizer, style):
    flat = torch.full((1, 3, 64, 64), 0.5)
    with torch.no_grad():
        c = stylizer.vgg(flat, ["relu2_1"])["relu2_1"]
    s = features(stylizer, style)
    assert torch.isfinite(wct(c, s)).all() and torch.isfinite(wct(s, c)).all()
    assert torch.isfinite(adain(c, s)).all()


def test_adain_matches_mean_and_std(stylizer, content, style):
    c, s = features(stylizer, content), features(stylizer, style)
    out = adain(c, s)
    torch.testing.assert_close(out.mean((2, 3)), s.mean((2, 3)), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(out.std((2, 3)), s.std((2, 3)), rtol=1e-2, atol=1e-2)


def test_decoders_learn_to_reconstruct(arbitrary, decoders_file, data):
    _, meta = load_model(decoders_file)
    assert meta["training"]["holdout_psnr"]["relu1_1"] > 14.0  # a grey picture scores ~11
    photo = sorted((data / "holdout").iterdir())[10]
    truth = np.asarray(resize_longest(load_image(photo), 96), np.float64) / 255

    def psnr() -> float:
        back = np.asarray(arbitrary.reconstruct(photo, 1, size=96), np.float64) / 255
        assert back.shape == truth.shape
        return 10 * math.log10(1 / ((back - truth) ** 2).mean())

    trained = psnr()
    untrained = Decoders(arbitrary.decoders.arch).eval()
    arbitrary.decoders, kept = untrained, arbitrary.decoders
    try:
        assert trained > 12.0 and trained > psnr() + 3.0
    finally:
        arbitrary.decoders = kept


def test_alpha_zero_is_the_reconstruction(arbitrary, content, style):
    out = arbitrary.run(content, style, alpha=0.0, levels=[1], size=80, precision="fp32").image
    assert np.array_equal(np.asarray(out), np.asarray(arbitrary.reconstruct(content, 1, 80)))


def test_run_options(arbitrary, content, style, data):
    two = [style, data / "styles/udnie.jpg"]
    for method in ("wct", "adain"):
        out = arbitrary.run(content, two, style_weights=[3, 1], method=method, size=64).image
        assert out.size == (64, 48)
    grey = arbitrary.run(content, style, size=64, preserve_color="luminance").image
    assert grey.size == (64, 48)
    with pytest.raises(ModelError, match="no decoder for relu5_1"):
        arbitrary.run(content, style, levels=[5])
    with pytest.raises(OptionError, match="strength must be at most 1"):
        arbitrary.run(content, style, alpha=2)
    with pytest.raises(OptionError, match="method"):
        arbitrary.run(content, style, method="magic")
    with pytest.raises(OptionError, match="size must be at least 16"):
        arbitrary.run(content, style, size=3)


def test_a_painting_is_encoded_once_for_many_photos(arbitrary, content, style, data, monkeypatch):
    """The next photo painted like the same painting (by its pixels) at the same size
    reuses the painting's statistics, whatever the strength; another painting, or the
    painting at another scale, does not."""
    found = []
    monkeypatch.setitem(arbitrary.__dict__, "_kept", {})  # none from earlier tests
    statistics = ArbitraryStylizer.statistics
    monkeypatch.setattr(
        ArbitraryStylizer, "statistics", lambda *a: found.append(1) or statistics(*a)
    )
    first = np.asarray(arbitrary.run(content, style, size=64).image)
    arbitrary.run(data / "content/golden_gate.jpg", style, size=64)
    again = np.asarray(arbitrary.run(content, load_image(style), size=64).image)
    assert len(found) == 1
    assert np.array_equal(first, again)
    weaker = np.asarray(arbitrary.run(content, style, size=64, strength=0.5).image)
    assert len(found) == 1 and not np.array_equal(first, weaker)
    arbitrary.run(content, style, size=64, style_scale=0.5)
    assert len(found) == 2
    changed = load_image(style)
    changed.putpixel((0, 0), (0, 0, 0))
    arbitrary.run(content, changed, size=64)
    assert len(found) == 3
    for i in range(KEPT_STATISTICS):  # as many newer entries push the first painting out
        arbitrary.run(content, changed, size=64, style_scale=0.75 - 0.1 * i)
    arbitrary.run(content, style, size=64)
    assert len(found) == 4 + KEPT_STATISTICS


def test_a_transformer_file_is_not_decoders(model_file):
    with pytest.raises(ModelError, match="not a decoders model"):
        load_decoders(model_file)


def test_the_built_ins_mixed_up_say_which_is_which():
    from impasto.methods.feedforward import load_transformer

    with pytest.raises(ModelError, match=r"decoders model \(a one-pass network: impasto arb"):
        load_transformer("painter")
    with pytest.raises(ModelError, match=r"not a decoders model \(a one-pass network"):
        load_decoders("styles")


def test_cli_arbitrary_and_train_decoders(decoders_file, content, style, tmp_path, capsys):
    out = tmp_path / "a.png"
    code = main(
        [
            "arbitrary",
            str(content),
            "--style",
            str(style),
            "-o",
            str(out),
            "--decoders",
            str(decoders_file),
            "--size",
            "64",
            "--levels",
            "relu2_1,1",
            "--alpha",
            "0.7",
        ]
    )
    assert code == 0 and out.exists()
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage error
        main(
            [
                "arbitrary",
                str(content),
                "--style",
                str(style),
                "-o",
                str(out),
                "--decoders",
                str(decoders_file),
                "--levels",
                "relu7_1",
            ]
        )
    assert exit_.value.code == 2 and "levels are relu1_1" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    code = main(
        ["train-decoders", "--data", str(tmp_path / "empty"), "-o", str(tmp_path / "d.safetensors")]
    )
    assert code == 2 and "no readable images" in capsys.readouterr().err


def test_big_pictures_go_in_tiles_with_the_whole_pictures_statistics(stylizer, content, style):
    """Tiled (192-px tiles) and whole give the same picture, without steps at tile edges
    (the built-in decoders, levels relu4_1 to relu1_1)."""
    arbitrary = ArbitraryStylizer.__new__(ArbitraryStylizer)
    arbitrary.device, arbitrary.encoder = stylizer.device, stylizer.vgg
    arbitrary.decoders, arbitrary.metadata = load_decoders("decoders")
    common = dict(size=320, alpha=0.8)
    whole = to_tensor(arbitrary.run(content, style, **common).image)
    arbitrary.tile = 192
    tiled = to_tensor(arbitrary.run(content, style, **common).image)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() < 0.03
    steps = (tiled[..., 1:] - tiled[..., :-1]).abs().mean(dim=(0, 1, 2))
    for edge in (63, 127, 191, 255):  # tile starts at 0, 64, 128 and ends at 192, 256, 320
        assert steps[edge] < 2.5 * steps.median(), edge


@pytest.fixture(scope="module")
def unpooling_file(data, tmp_path_factory):
    """Decoders that unpool at VGG's switches, for relu1_1 and relu2_1, briefly trained."""
    out = tmp_path_factory.mktemp("unpooling") / "dec.safetensors"
    opts = DecoderOptions(
        data=str(data / "train"),
        output=str(out),
        levels=(1, 2),
        steps=10,
        batch_size=2,
        image_size=64,
        workers=0,
        sample_every=0,
        lr=3e-3,
        unpool=True,
    )
    train_decoders(opts, progress=False)
    return out


def test_unpooling_decoders(unpooling_file, stylizer, content, style):
    """The file says it unpools; the photo's switches put the decoded values back where
    its maxima were; tiles give the whole picture; no switches, a clear error."""
    arbitrary = ArbitraryStylizer.__new__(ArbitraryStylizer)
    arbitrary.device, arbitrary.encoder = stylizer.device, stylizer.vgg
    arbitrary.decoders, arbitrary.metadata = load_decoders(unpooling_file)
    assert arbitrary.decoders.arch.unpool and arbitrary.metadata["architecture"]["unpool"]
    back = arbitrary.reconstruct(content, 2, size=64)
    assert back.size == (64, 48)
    common = dict(size=320, alpha=0.8, levels=[2, 1])
    whole = to_tensor(arbitrary.run(content, style, **common).image)
    arbitrary.tile = 192
    tiled = to_tensor(arbitrary.run(content, style, **common).image)
    assert tiled.shape == whole.shape and (tiled - whole).abs().mean() < 0.03
    plain = stylizer.vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])["relu2_1"]
    with pytest.raises(ModelError, match="pass the encoder's pooling switches"):
        arbitrary.decoders[2](plain, (32, 32))
    switches = []
    features = stylizer.vgg(torch.rand(1, 3, 32, 32), ["relu2_1"], switches)["relu2_1"]
    assert arbitrary.decoders[2](features, (32, 32), switches).shape == (1, 3, 32, 32)


def test_decoders_with_a_compact_encoder(data, content, style, tmp_path, monkeypatch):
    """`encoder_width` < 1: a narrow VGG, pruned from VGG-19, trains with the decoders,
    learns to map onto VGG-19's features, and travels in the file: a stylizer from that
    file needs no VGG-19 weights at all."""
    out = tmp_path / "compact.safetensors"
    seen: dict[str, list[float]] = {}
    opts = DecoderOptions(
        data=str(data / "train"),
        output=str(out),
        levels=(1, 2),
        steps=24,
        batch_size=2,
        image_size=64,
        workers=0,
        sample_every=0,
        lr=3e-3,
        unpool=True,
        encoder_width=0.5,
        checkpoint_every=12,
    )
    meta = train_decoders(
        opts,
        progress=False,
        callback=lambda _, losses: [seen.setdefault(k, []).append(v) for k, v in losses.items()],
    )
    assert meta["architecture"]["encoder_width"] == 0.5
    for level in (1, 2):  # the distillation loss falls
        embed = seen[f"embed{level}"]
        assert sum(embed[-6:]) < 0.7 * sum(embed[:6]), (level, embed)
    state, _ = load_model(out)
    assert state["encoder.convs.conv2_1.weight"].shape == (64, 32, 3, 3)
    assert not any(k.startswith("embed.") for k in state)  # training-only maps stay out
    with pytest.raises(OptionError, match="bring their own encoder"):
        ArbitraryStylizer(out, weights=tmp_path / "vgg.pth", device="cpu")
    monkeypatch.setattr("impasto.methods.arbitrary.load_vgg", None)  # not called
    compact = ArbitraryStylizer(out, device="cpu")
    assert compact.encoder is compact.decoders.encoder
    picture = compact.run(content, style, size=64, alpha=0.8).image
    assert picture.size == (64, 48)
    with torch.no_grad():  # the encoder's features are what its decoders invert
        x = to_tensor(resize_longest(load_image(content), 64))
        switches = []
        feats = compact.encoder(x, ["relu2_1"], switches)["relu2_1"]
        assert feats.shape == (1, 64, 24, 32)
        assert compact.decoders[2](feats, x.shape[-2:], switches).shape == x.shape
    # the checkpoint, with its embedding maps and Adam's state, loads as decoders too
    assert load_decoders(out.with_name("compact.ckpt.safetensors"))[0].encoder is not None


def test_compact_training_resumes_exactly(data, tmp_path):
    """Encoder, decoders, embedding maps and Adam's moments all come back from the
    checkpoint: an interrupted run resumed gives the straight run's losses."""

    def opts(folder, **more):
        return DecoderOptions(
            data=str(data / "train"),
            output=str(folder / "c.safetensors"),
            levels=(1, 2),
            steps=6,
            batch_size=2,
            image_size=64,
            workers=0,
            sample_every=0,
            unpool=True,
            encoder_width=0.25,
            checkpoint_every=100,
            **more,
        )

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    straight: list[dict] = []
    train_decoders(
        opts(tmp_path / "a"), progress=False, callback=lambda _, losses: straight.append(losses)
    )

    def stop_at_3(step, _):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_decoders(opts(tmp_path / "b"), progress=False, callback=stop_at_3)
    resumed: list[dict] = []
    train_decoders(
        opts(tmp_path / "b", resume=True),
        progress=False,
        callback=lambda _, losses: resumed.append(losses),
    )
    assert resumed == straight[3:]


def test_tiles_must_be_larger_than_their_overlap(arbitrary, content, style):
    arbitrary.tile = 96
    try:
        with pytest.raises(OptionError, match="tile must be more than 128 px"):
            arbitrary.run(content, style, size=200, levels=[1])
    finally:
        del arbitrary.tile  # back to the class's default


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lr": -1.0}, "lr must be above 0"),
        ({"pixel_weight": -1.0}, "pixel_weight must be at least 0"),
        ({"levels": (6,)}, "levels must be among"),
        ({"encoder_width": 1.5}, "encoder_width must be at most 1"),
        ({"embed_weight": -1.0}, "embed_weight must be at least 0"),
    ],
)
def test_bad_decoder_training_options(data, tmp_path, change, message):
    opts = DecoderOptions(
        data=str(data / "train"), output=str(tmp_path / "d.safetensors"), **change
    )
    with pytest.raises(OptionError, match=message):
        train_decoders(opts, progress=False)


def _painted_by_onnx(session, photo, painting, strength=1.0) -> np.ndarray:
    inputs = {"image": photo, "painting": painting, "strength": np.float32(strength)}
    return session.run(None, {k: np.asarray(v, np.float32) for k, v in inputs.items()})[0]


def _sized(path, side: int) -> torch.Tensor:
    return to_tensor(resize_longest(load_image(path), side))


def test_the_painter_exports_to_onnx_and_paints_as_impasto_does(content, style, tmp_path, capsys):
    """`impasto export painter`: one graph, photo and painting in, picture out. ONNX has
    no eigendecomposition, so WCT's matrix roots come from Newton–Schulz iterations: the
    picture must still be impasto's own, at any size and strength, photo by photo."""
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "painter.onnx"
    assert main(["export", "painter", "-o", str(out)]) == 0
    assert "painting (1 or N,3,h,w)" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    painter = ArbitraryStylizer("painter", device="cpu")
    for size, strength in [(64, 1.0), (71, 0.4)]:  # odd sizes pool and come back alike
        photo = _sized(content, size)
        painting = _sized(style, max(photo.shape[-2:]))
        mine = painter.run(content, style, size=size, precision="fp32", strength=strength)
        theirs = _painted_by_onnx(session, photo, painting, strength)
        assert theirs.shape == mine.pixels.shape
        assert np.abs(theirs - mine.pixels.numpy()).mean() < 1e-4  # of 1
    assert np.array_equal(_painted_by_onnx(session, photo, painting, 0.0), photo.numpy())
    # a batch of photos, one painting: each photo takes its own statistics
    both = torch.cat([photo, photo.flip(-1)])
    batch = _painted_by_onnx(session, both, painting, 0.4)
    alone = [_painted_by_onnx(session, p[None], painting, 0.4) for p in both]
    assert np.abs(batch - np.concatenate(alone)).max() < 1e-5
    assert not np.allclose(batch[0], batch[1][..., ::-1], atol=1e-3)  # not one picture

    # examples/onnx_painter.py: onnxruntime, numpy and Pillow alone
    example = Path(__file__).parents[1] / "examples" / "onnx_painter.py"
    picture = tmp_path / "out.png"
    command = [example, out, content, style, picture, "--size", "64", "--strength", "0.7"]
    subprocess.run([sys.executable, *map(str, command)], check=True, timeout=120)
    mine = painter.run(content, style, size=64, precision="fp32", strength=0.7).image
    assert np.abs(np.asarray(Image.open(picture), float) - np.asarray(mine, float)).mean() < 0.1

    assert main(["export", "painter", "--format", "torchscript", "-o", str(tmp_path / "p.pt")]) == 2
    assert "exports to ONNX only" in capsys.readouterr().err
    assert main(["export", "compact", "-o", str(tmp_path / "c.onnx")]) == 2
    assert "trained to paint" in capsys.readouterr().err
    assert not (tmp_path / "c.onnx").exists()


def test_a_modulated_adain_network_exports_too(content, style, tmp_path):
    """AdaIN instead of WCT, and decoder blocks that take the painting's statistics
    (`--modulate`), mixed with the photo's by the strength: the same picture in ONNX."""
    ort = pytest.importorskip("onnxruntime")
    from impasto.io.modelfile import save_model
    from impasto.nets.export import export_painter_onnx
    from impasto.training.arbitrary import painter_network

    net = painter_network("painter", modulated=(1, 3), method="adain")
    meta = {"architecture": net.arch.to_dict()}
    save_model(tmp_path / "plain.safetensors", net.state_dict(), meta)
    generator = torch.Generator().manual_seed(0)
    for name, value in net.named_parameters():
        if ".modulations." in name:  # as if trained: they start at nothing
            value.data = torch.randn(value.shape, generator=generator) * 0.05
    path = tmp_path / "modulated.safetensors"
    save_model(path, net.state_dict(), meta)
    painter = ArbitraryStylizer(path, device="cpu")
    buffer = io.BytesIO()
    export_painter_onnx(painter.encoder, painter.decoders, buffer)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    photo = _sized(content, 64)
    painting = _sized(style, 64)
    for strength in (1.0, 0.6):
        mine = painter.run(content, style, size=64, precision="fp32", strength=strength).pixels
        theirs = _painted_by_onnx(session, photo, painting, strength)
        assert np.abs(theirs - mine.numpy()).mean() < 1e-4
    plain = ArbitraryStylizer(tmp_path / "plain.safetensors", device="cpu")
    plain = plain.run(content, style, size=64, precision="fp32", strength=0.6).pixels
    assert np.abs(theirs - plain.numpy()).mean() > 1e-3  # the blocks did modulate


def test_one_picture_paints_on_onnxruntime_without_torch(content, style, tmp_path, fresh_cli):
    """`impasto arbitrary` with one photo paints it on onnxruntime where it can: the
    graph is built once (with torch) and cached by the weights' hash, and the next run
    imports no torch at all. The picture is torch's."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "o.png"
    args = ["arbitrary", content, "--style", style, "--size", "64", "-o", out, "--quiet"]
    first, second = fresh_cli(args), fresh_cli(args)
    assert first[0] == 10, first[1]  # built the graph with torch
    assert second[0] == 0, second[1]
    assert len(list((tmp_path / "cache").glob("painter-*.onnx"))) == 1
    mine = ArbitraryStylizer("painter", device="cpu").run(content, style, size=64, precision="fp32")
    assert np.abs(np.asarray(Image.open(out), float) - np.asarray(mine.image, float)).mean() < 0.1


def test_the_onnx_painter_hands_what_its_graph_does_not_paint_to_torch(content, style, data):
    pytest.importorskip("onnxruntime")
    from impasto import api
    from impasto.methods.onnx_painter import OnnxPainter

    onnx, torch_ = OnnxPainter("painter"), ArbitraryStylizer("painter", device="cpu")
    other = data / "styles" / "candy.jpg"
    for changes in [
        {"preserve_color": "luminance", "strength": 0.7},  # the graph, then numpy
        {"style": [style, other], "style_weights": [0.3, 0.7]},  # torch: several paintings
        {"method": "adain"},  # torch: another transform
        {"preserve_color": "histogram"},  # torch: the paintings recoloured
    ]:
        paintings = changes.pop("style", style)
        ours = onnx.run(content, paintings, size=64, precision="fp32", **changes)
        theirs = torch_.run(content, paintings, size=64, precision="fp32", **changes)
        on_graph = isinstance(ours.pixels, np.ndarray)
        assert on_graph == (changes.get("preserve_color") == "luminance")
        difference = np.asarray(ours.image, float) - np.asarray(theirs.image, float)
        assert np.abs(difference).mean() < 0.1
    from impasto.methods.onnx_painter import TILE
    from impasto.options import ArbitraryOptions

    assert ArbitraryStylizer.tile == TILE  # past it torch paints in tiles
    assert not onnx.paints(ArbitraryOptions(), 1, (TILE + 1, 700))
    assert api.one_picture_backend({"decoders": "painter", "device": "cpu"}) == "onnx"
    assert api.one_picture_backend({"decoders": "compact"}) == "torch"  # decoders that rebuild
    assert api.one_picture_backend({"decoders": "painter", "device": "cuda"}) == "torch"
    with pytest.raises(OptionError, match="trained to paint"):
        OnnxPainter("compact")
