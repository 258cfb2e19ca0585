"""Feed-forward networks: the network, model files, style blends, inference, export."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.errors import ModelError, OptionError
from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.io.modelfile import load_model, save_model
from impasto.methods.feedforward import FastStylizer, load_transformer, parse_style
from impasto.methods.onnxrt import OnnxStylizer
from impasto.nets.export import export_onnx, export_torchscript
from impasto.nets.transformer import Architecture, TransformerNet

STYLES = ("starry_night", "udnie", "the_scream")


@pytest.fixture(scope="module")
def net(model_file) -> TransformerNet:
    return load_transformer(model_file)[0]


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 37, 53), (1, 3, 17, 90)])
def test_any_size_comes_back_in_range(net, shape):
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_upsampling_convs_are_the_three_steps(layout, monkeypatch):
    """Nearest upsampling to twice the size, reflection padding and a 3×3 conv (both
    kinds of network paint back up so) are one transposed conv: the same values and
    gradients; other sizes take the three steps."""
    from torch.nn import functional as F

    from impasto.nets import upsample

    conv = torch.nn.Conv2d(5, 4, 3)

    def three_steps(x, size):
        return conv(F.pad(F.interpolate(x, size=size, mode="nearest"), [1] * 4, mode="reflect"))

    def with_gradients(paint, x, size):
        x = x.detach().requires_grad_()
        conv.zero_grad()
        out = paint(x, size)
        out.square().sum().backward()
        return out, x.grad, conv.weight.grad.clone(), conv.bias.grad.clone()

    for shape, size in [((2, 5, 7, 6), (14, 12)), ((1, 5, 1, 2), (2, 4)), ((1, 5, 6, 9), (13, 18))]:
        x = torch.randn(shape).to(memory_format=layout)
        expected = with_gradients(three_steps, x, size)
        if size == (2 * shape[2], 2 * shape[3]):  # no upsampled copy made
            monkeypatch.setattr(upsample.F, "interpolate", None)
        got = with_gradients(lambda x, size: upsample.upsampled_conv(x, conv, size), x, size)
        monkeypatch.undo()
        torch.testing.assert_close(got[0], expected[0])
        for a, b in zip(got[1:], expected[1:], strict=True):  # summed in other orders
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    x = torch.randn(1, 5, 8, 8).to(memory_format=layout)
    wide = torch.nn.Conv2d(5, 4, 5)  # other kernels take the three steps, padded by half
    expected = wide(F.pad(F.interpolate(x, size=(16, 16)), [2] * 4, mode="reflect"))
    torch.testing.assert_close(upsample.upsampled_conv(x, wide, (16, 16)), expected)
    with torch.no_grad():
        full = three_steps(x, (16, 16))
        half = upsample.upsampled_conv(x.bfloat16(), conv.bfloat16(), (16, 16)).float()
    torch.testing.assert_close(half, full, atol=0.1, rtol=0.05)


def test_blend_weights_one_zero_equal_the_style_alone(net):
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        alone = net(x, torch.tensor([0.0, 1.0, 0.0]))
        blended = net(x, parse_style("udnie:1,starry_night:0", STYLES))
        other = net(x, torch.tensor([1.0, 0.0, 0.0]))
        half = net(x, torch.tensor([0.5, 0.5, 0.0]))
    assert torch.equal(alone, blended)
    assert not torch.allclose(alone, other, atol=1e-3)
    assert not torch.allclose(half, alone, atol=1e-3) and not torch.allclose(half, other, atol=1e-3)


def test_per_image_weights_in_a_batch(net):
    x = torch.rand(2, 3, 32, 32)
    w = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    with torch.no_grad():
        both = net(x, w)
        first = net(x[:1], w[0])
        second = net(x[1:], w[1])
    torch.testing.assert_close(both, torch.cat([first, second]))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, [1, 0, 0]),
        (2, [0, 0, 1]),
        ("udnie", [0, 1, 0]),
        ("the", [0, 0, 1]),  # a unique prefix
        ("0:3,2:1", [0.75, 0, 0.25]),
        ({"udnie": 1, "the_scream": 1}, [0, 0.5, 0.5]),
        ([1, 1, 2], [0.25, 0.25, 0.5]),
    ],
)
def test_parse_style(spec, expected):
    assert parse_style(spec, STYLES).tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("monet", "unknown style 'monet'"),
        ("paintings/monet.JPG", "monet.JPG'; this model has: .*impasto arbitrary"),
        ("paintings/udnie.jpg", "give the name alone: udnie$"),
        ("7", "out of range"),
        ("udnie:x", "bad style weight"),
        ("udnie:0", "not all zero"),
        ("udnie:nan", "finite"),
        ("udnie:inf,the_scream:1", "finite"),
        ([1, 2], "2 style weights for a model with 3 styles"),
    ],
)
def test_parse_style_errors(spec, message):
    with pytest.raises(OptionError, match=message):
        parse_style(spec, STYLES)


def test_model_file_round_trip_is_exact(net, model_file):
    loaded, meta = load_transformer(model_file)
    assert loaded.arch == net.arch and meta["architecture"]["kind"] == "transformer"
    for (name, a), b in zip(net.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


def test_corrupt_and_foreign_model_files_are_refused(model_file, tmp_path):
    data = bytearray(model_file.read_bytes())
    data[-100] ^= 0xFF  # flip bits in the last tensor
    (tmp_path / "flipped.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_transformer(tmp_path / "flipped.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not an impasto model file"):
        load_transformer(tmp_path / "junk.safetensors")
    torch.save({"w": torch.zeros(1)}, tmp_path / "pickle.safetensors")
    with pytest.raises(ModelError, match="not an impasto model file"):
        load_transformer(tmp_path / "pickle.safetensors")
    with pytest.raises(ModelError, match="no such model file"):
        load_transformer(tmp_path / "missing.safetensors")


def test_wrong_architecture_is_refused(net, tmp_path):
    wide = Architecture(styles=STYLES, width=16, blocks=2).to_dict()
    save_model(tmp_path / "lies.safetensors", net.state_dict(), {"architecture": wide})
    with pytest.raises(ModelError, match="do not fit the recorded architecture"):
        load_transformer(tmp_path / "lies.safetensors")
    save_model(
        tmp_path / "other.safetensors", net.state_dict(), {"architecture": {"kind": "decoder"}}
    )
    with pytest.raises(ModelError, match="is a decoder model, not a transformer model"):
        load_transformer(tmp_path / "other.safetensors")


def test_fast_stylizer_options(model_file, content):
    fast = FastStylizer(model_file, device="cpu")
    image = fast.run(content, "udnie", size=96).image
    assert image.size == (96, 72) and image.mode == "RGB"
    photo = np.asarray(resize_longest(load_image(content), 96), dtype=np.int16)
    untouched = np.asarray(fast.run(content, size=96, strength=0.0).image, dtype=np.int16)
    assert np.abs(untouched - photo).max() <= 1
    with pytest.raises(OptionError, match="strength"):
        fast.run(content, size=96, strength=1.5)


def test_bf16_is_close_to_fp32(model_file, content, native_bf16):
    fast = FastStylizer(model_file, "cpu")
    a = np.asarray(fast.run(content, size=64, precision="fp32").image, dtype=np.float32)
    b = np.asarray(fast.run(content, size=64, precision="bf16").image, dtype=np.float32)
    assert np.abs(a - b).mean() < 4  # of 255


def test_onnx_export_matches_torch(net):
    ort = pytest.importorskip("onnxruntime")
    buffer = io.BytesIO()
    export_onnx(net, buffer)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    weights = torch.tensor([0.2, 0.3, 0.5])
    for shape in [(1, 3, 64, 64), (2, 3, 45, 71)]:  # dynamic batch, height and width
        x = torch.rand(shape)
        with torch.no_grad():
            expected = net(x, weights).numpy()
        got = session.run(None, {"image": x.numpy(), "style_weights": weights.numpy()})[0]
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_onnx_backend_equals_torch_backend(model_file, content):
    pytest.importorskip("onnxruntime")
    a = np.asarray(
        FastStylizer(model_file, "cpu").run(content, "udnie", size=80, precision="fp32").image,
        np.int16,
    )
    onnx = OnnxStylizer(model_file)
    b = np.asarray(onnx.run(content, "udnie", size=80).image, np.int16)
    assert np.abs(a - b).max() <= 1
    for keep in ("luminance", "histogram"):  # the same last touches as torch's, in numpy
        ours = onnx.run(content, "udnie", size=80, preserve_color=keep, strength=0.7).image
        theirs = FastStylizer(model_file, "cpu").run(
            content, "udnie", size=80, preserve_color=keep, strength=0.7, precision="fp32"
        )
        assert np.abs(np.asarray(ours, np.int16) - np.asarray(theirs.image, np.int16)).max() <= 1


def test_the_onnx_backend_runs_without_torch(model_file, content, tmp_path, fresh_cli):
    """A fast command on the onnxruntime backend never imports torch; its graph is
    cached by the weights' hash, and a bigger picture than the tile goes to torch."""
    pytest.importorskip("onnxruntime")
    args = ["fast", content, "--model", model_file, "--size", "64", "-o", tmp_path / "o.png"]
    for _ in range(2):  # builds the graph, then finds it
        code, err = fresh_cli([*args, "--backend", "onnx", "--quiet"])
        assert code == 0, err
    assert len(list((tmp_path / "cache").glob("transformer-*.onnx"))) == 1
    big = OnnxStylizer(model_file).run(content, "udnie", size=300, tile=256)
    assert big.image.size == (300, 225) and not isinstance(big.pixels, np.ndarray)


def test_a_damaged_cached_graph_is_built_again(model_file, content, tmp_path, monkeypatch):
    """A graph in the cache that onnxruntime cannot load (cut short on disk, or not a
    graph) is built again and replaces it, instead of ending the command."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("IMPASTO_CACHE", str(tmp_path / "cache"))
    first = OnnxStylizer(model_file).run(content, "udnie", size=64).image
    (graph,) = (tmp_path / "cache").glob("transformer-*.onnx")
    whole = graph.read_bytes()
    graph.write_bytes(whole[: len(whole) // 2])
    again = OnnxStylizer(model_file).run(content, "udnie", size=64).image
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert graph.read_bytes() == whole


def test_the_onnx_backend_carries_a_videos_features_as_torch_does(model_file, content):
    """With flow consistency, a video's frames go through the onnxruntime graph in two
    halves, the features carried between them from frame to frame: the frames the torch
    backend paints, without loading it."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from impasto import api
    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((112, 80)))
    frames = [np.roll(photo, 2 * i, axis=1) for i in range(4)]  # a pan
    shown, networks = {}, {}
    for backend in ("onnx", "torch"):
        steady, loader = FlowConsistency(0.9), api.Loader()
        keywords = {"model": str(model_file), "size": 112, "precision": "fp32"}
        paint = api.painter(
            "fast", "udnie", loader=loader, steady=steady, backend=backend, **keywords
        )
        (networks[backend],) = loader.loaded.values()
        steadied = steady.steadied(lambda f, paint=paint: paint(Image.fromarray(f)))
        shown[backend] = [steadied(f) for f in frames]
    assert isinstance(networks["onnx"], OnnxStylizer) and networks["onnx"]._torch is None
    onnx = OnnxStylizer(model_file)
    alone = [np.asarray(onnx.run(Image.fromarray(f), "udnie", size=112).pixels) for f in frames]
    for i, (a, b) in enumerate(zip(shown["onnx"], shown["torch"], strict=True)):
        assert np.abs(a - b).max() < 1, i  # of 255
        if i:  # carried: not the frame painted alone
            assert np.abs(a - alone[i][0].transpose(1, 2, 0) * 255).mean() > 1, i


def test_moving_pictures_paint_on_torch_where_its_bf16_is_fast(model_file, content, monkeypatch):
    """For a video or the webcam (`api.painter`), the fast method's `auto` backend is
    torch on a CPU with bf16 kernels, whose bf16 copy paints frames faster than
    onnxruntime's graph; onnxruntime where the CPU has none or fp32 is asked for; a
    backend asked for by name stays."""
    pytest.importorskip("onnxruntime")
    from impasto import api, devices

    monkeypatch.setattr(api.runtime, "cuda_device_present", lambda: False)

    def loaded(fast: bool, **keywords):
        monkeypatch.setattr(devices, "bf16_is_fast", lambda device: fast)
        loader = api.Loader()
        paint = api.painter("fast", "udnie", loader=loader, model=str(model_file), **keywords)
        (network,) = loader.loaded.values()
        return network, paint

    network, paint = loaded(True, size=48)
    assert isinstance(network, FastStylizer)
    assert paint(Image.open(content)).shape == (36, 48, 3)
    assert isinstance(loaded(False, size=48)[0], OnnxStylizer)
    assert isinstance(loaded(True, size=48, precision="fp32")[0], OnnxStylizer)
    assert isinstance(loaded(True, size=48, backend="onnx")[0], OnnxStylizer)


def test_torchscript_export_matches_torch(net):
    buffer = io.BytesIO()
    export_torchscript(net, buffer)
    buffer.seek(0)
    scripted = torch.jit.load(buffer)
    x, w = torch.rand(1, 3, 50, 70), torch.tensor([0.0, 1.0, 0.0])
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, w), net(x, w))


def test_model_file_has_metadata(model_file):
    _, meta = load_model(model_file)
    assert meta["architecture"]["styles"] == list(STYLES)
    assert len(meta["sha256"]) == 64 and meta["impasto_version"] and meta["created"]


def cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_fast_folder_batches_and_keeps_names(model_file, data, tmp_path, capsys):
    code, out, _ = cli(
        [
            "fast",
            data / "content",
            "--model",
            model_file,
            "-o",
            tmp_path / "out",
            "--size",
            64,
            "--batch",
            3,
            "--style",
            "udnie:0.5,0:0.5",
        ],
        capsys,
    )
    photos = sorted(p.name for p in (data / "content").iterdir())  # however many there are
    assert code == 0 and len(
        [line for line in out.splitlines() if line.startswith("wrote ")]
    ) == len(photos)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == photos
    assert max(Image.open(tmp_path / "out" / "tubingen.jpg").size) == 64


def test_cli_fast_single_file_and_errors(model_file, content, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(
        ["fast", content, "--model", model_file, "--style", "udnie", "--size", 48], capsys
    )
    assert code == 0 and (tmp_path / "tubingen.udnie.png").exists()
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    code, _, err = cli(["fast", content, tmp_path / "bad.jpg", "--model", model_file], capsys)
    assert code == 2 and "1 of 2 inputs could not be read" in err
    assert (tmp_path / "tubingen.udnie.png").exists()  # each to PHOTO.STYLE.png here
    code, _, err = cli(
        [
            "fast",
            content,
            tmp_path / "bad.jpg",
            "--model",
            model_file,
            "-o",
            tmp_path / "o",
            "--size",
            48,
        ],
        capsys,
    )
    assert code == 2 and "1 of 2 inputs could not be read" in err
    assert (tmp_path / "o" / "tubingen.jpg").exists()  # the good one still got done
    code, _, err = cli(["fast", content, "--model", "no_such_model"], capsys)
    assert code == 2 and "no such model file or built-in model" in err
    with pytest.raises(SystemExit) as exit_:
        cli(["fast", content, "--model", model_file, "--strength", 2], capsys)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--strength/--alpha: must be at most 1" in err
    code, _, err = cli(["fast", content, "--model", model_file, "-o", content], capsys)
    assert code == 2 and "never overwrites its inputs" in err


def test_cli_export(model_file, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    code, out, _ = cli(["export", model_file, "-o", tmp_path / "m.onnx"], capsys)
    assert code == 0 and "starry_night, udnie, the_scream" in out
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    image = np.random.rand(1, 3, 30, 42).astype(np.float32)
    got = session.run(None, {"image": image, "style_weights": np.array([0, 1, 0], np.float32)})
    assert got[0].shape == image.shape
    code, _, _ = cli(
        ["export", model_file, "--format", "torchscript", "-o", tmp_path / "m.pt"], capsys
    )
    assert code == 0 and (tmp_path / "m.pt").stat().st_size > 0


def test_cli_train_errors(data, tmp_path, capsys):
    code, _, err = cli(
        [
            "train",
            "--style",
            data / "styles/udnie.jpg",
            "--data",
            tmp_path,
            "-o",
            tmp_path / "m.safetensors",
        ],
        capsys,
    )
    assert code == 2 and "no readable images" in err
    code, _, err = cli(
        [
            "train",
            "--style",
            tmp_path / "nope.jpg",
            "--data",
            data / "train",
            "-o",
            tmp_path / "m.safetensors",
        ],
        capsys,
    )
    assert code == 2 and "nope.jpg" in err


def test_tiles_match_the_whole_picture_without_seams(model_file, content):
    fast = FastStylizer(model_file, "cpu")
    x = to_tensor(resize_longest(load_image(content), 320))  # 320 x 240
    weights = parse_style("udnie", fast.styles)
    whole = fast.run_batch(x, weights)
    tiled = fast.run_batch(x, weights, tile=192)  # tiles start at x = 0, 64, 128; y = 0, 48
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() < 0.01
    steps = (tiled[..., :, 1:] - tiled[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    for border in (64, 128):  # where a tile begins, the picture must not jump
        assert steps[border - 1 : border + 1].mean() < 1.5 * steps.mean()
