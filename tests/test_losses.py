import pytest
import torch

from impasto.losses import STYLE_LOSSES, Moments, gram_matrix, self_product, style_target

torch.manual_seed(0)
FEATURES = torch.rand(1, 8, 6, 5) * 3
OTHER = torch.rand(1, 8, 6, 5) * 2 + 0.5


def loss(kind: str, features: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    return STYLE_LOSSES[kind](features, style_target(kind, Moments.of(style)))


@pytest.mark.parametrize("kind", STYLE_LOSSES)
def test_zero_for_identical_statistics_positive_otherwise(kind):
    # The same statistics from other pixels: the positions shuffled.
    shuffled = FEATURES.flatten(2)[..., torch.randperm(30)].view_as(FEATURES)
    assert abs(float(loss(kind, shuffled, FEATURES))) < 1e-5
    assert loss(kind, OTHER, FEATURES) > 1e-3
    assert loss(kind, FEATURES * 1.2, FEATURES) > 1e-3


@pytest.mark.parametrize("kind", STYLE_LOSSES)
def test_gradient_matches_finite_differences(kind):
    x = OTHER.clone().double().requires_grad_(True)
    loss(kind, x, FEATURES).backward()
    for seed in range(3):
        d = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
        eps = 1e-2
        numeric = loss(kind, OTHER + eps * d, FEATURES) - loss(kind, OTHER - eps * d, FEATURES)
        numeric = float(numeric) / (2 * eps)
        analytic = float((x.grad * d).sum())
        assert analytic == pytest.approx(numeric, rel=2e-2, abs=1e-6), (seed, analytic, numeric)


@pytest.mark.parametrize("kind", STYLE_LOSSES)
def test_the_same_at_every_size(kind):
    # A picture twice as wide and three times as tall with the same statistics.
    bigger = FEATURES.repeat(1, 1, 2, 3)
    style = OTHER.repeat(1, 1, 3, 1)
    assert float(loss(kind, bigger, style)) == pytest.approx(
        float(loss(kind, FEATURES, OTHER)), rel=1e-4
    )


@pytest.mark.parametrize("kind", ["moments", "w2"])
def test_relative_to_the_style(kind):
    """The same weights work at every layer: scaling activations changes nothing."""
    assert float(loss(kind, OTHER * 30, FEATURES * 30)) == pytest.approx(
        float(loss(kind, OTHER, FEATURES)), rel=1e-3
    )


def test_w2_of_one_channel_is_the_closed_form():
    """Between 1-D Gaussians W2² = (μ − μs)² + (σ − σs)²."""
    a, b = torch.randn(1, 1, 40, 40) * 2 + 1, torch.randn(1, 1, 40, 40) * 0.5 - 1
    ma, mb = Moments.of(a), Moments.of(b)
    sa, sb = ma.covariance().sqrt(), mb.covariance().sqrt()
    expected = (ma.mean - mb.mean).pow(2) + (sa - sb).pow(2)
    got = loss("w2", a, b) * mb.power()  # the loss is relative to the style's power
    assert float(got) == pytest.approx(float(expected), rel=1e-3)


def test_moments_blend_and_sum_like_the_features():
    halves = FEATURES[..., :3, :], FEATURES[..., 3:, :]
    whole = Moments.of(FEATURES)
    a, b = (Moments.of(h) for h in halves)
    assert torch.allclose((a.mean + b.mean) / 2, whole.mean, atol=1e-6)
    assert torch.allclose((a.square + b.square) / 2, whole.square, atol=1e-5)
    assert torch.linalg.eigvalsh(whole.covariance().double()).min() > -1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns-contiguous"])
def test_self_product_gradient_is_autograds(dtype, columns):
    a = torch.randn(2, 5, 40, dtype=dtype, generator=torch.Generator().manual_seed(1))
    if columns:  # as channels-last features flatten: each position's channels together
        a = a.mT.contiguous().mT
    weights = torch.randn(2, 5, 5, dtype=dtype)  # not symmetric: both halves must count
    ours, plain = a.clone().requires_grad_(True), a.clone().requires_grad_(True)
    (self_product(ours) * weights).sum().backward()
    (plain @ plain.mT * weights).sum().backward()
    assert self_product(a).dtype == dtype
    torch.testing.assert_close(self_product(a), a @ a.mT)
    torch.testing.assert_close(ours.grad, plain.grad)
    assert ours.grad.stride() == a.stride()  # laid out as the features are


def test_gram_of_channels_last_features_keeps_their_layout():
    features = torch.rand(1, 8, 6, 5).contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)
    gram_matrix(features).square().sum().backward()
    assert features.grad.is_contiguous(memory_format=torch.channels_last)
    dense = features.detach().contiguous().requires_grad_(True)
    gram_matrix(dense).square().sum().backward()
    torch.testing.assert_close(features.grad, dense.grad)


@pytest.mark.parametrize("wide", [True, False], ids=["wide", "rounded"])
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns-contiguous"])
def test_self_product_of_bf16_is_float32_with_a_bf16_gradient(columns, wide):
    a = torch.rand(2, 8, 4096, generator=torch.Generator().manual_seed(2)).bfloat16()
    if columns:
        a = a.mT.contiguous().mT
    exact = a.float().requires_grad_(True)
    (self_product(exact) * OTHER.flatten()[:64].view(8, 8)).sum().backward()
    half = a.clone().requires_grad_(True)  # clone keeps the layout
    product = self_product(half, wide=wide)
    (product * OTHER.flatten()[:64].view(8, 8)).sum().backward()
    assert product.dtype == torch.float32 and half.grad.dtype == torch.bfloat16
    # The products of the bf16 values, summed in float32, then rounded to bf16 or not.
    if wide:
        torch.testing.assert_close(product, exact @ exact.mT, rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(product, exact @ exact.mT, rtol=2**-8, atol=0)
        assert torch.equal(product, product.bfloat16().float())
    torch.testing.assert_close(half.grad.float(), exact.grad, rtol=1e-2, atol=1e-3)
