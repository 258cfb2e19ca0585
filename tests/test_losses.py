import pytest
import torch

from impasto.errors import ImageError
from impasto.losses import (
    STYLE_LOSSES,
    Moments,
    chroma_detail,
    fine_chroma,
    gram_matrix,
    grid_detail,
    self_product,
    style_target,
)

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


def test_chroma_detail_sees_fine_colour_not_brightness_or_coarse_colour():
    """Chromatic stripes 2 px apart are what it measures; the same stripes in brightness
    (strokes, edges) and colour changing over 16 px are not."""
    y, x = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    fine, coarse = ((x + y) % 2).float(), torch.sin(x * torch.pi / 8)  # 2-px, 16-px periods
    grey = torch.full((3, 64, 64), 0.5)
    fringes = grey + 0.1 * fine * torch.tensor([1.0, -1.0, 0.0])[:, None, None]
    strokes = grey + 0.1 * fine  # the same in R, G and B: brightness
    patches = grey + 0.1 * coarse * torch.tensor([1.0, -1.0, 0.0])[:, None, None]
    scores = chroma_detail(torch.stack([fringes, strokes, patches, grey]))
    assert scores[0] > 100 and scores[1] < 1e-3 and scores[2] < 1e-6 and scores[3] < 1e-6
    assert fine_chroma(fringes[None]) == pytest.approx(float(scores[0]), rel=1e-5)
    # as a loss: its gradient takes the fringes away
    image = fringes[None].clone().requires_grad_(True)
    chroma_detail(image).sum().backward()
    assert chroma_detail((image - 0.05 * image.grad).detach()) < 0.5 * scores[0]


def test_grid_detail_sees_a_pattern_repeating_on_the_upsampling_grid():
    """A faint pattern repeating every 8 px (or 4), whatever its sign in each patch, is
    what it measures; at the same contrast a smooth ramp, a hard edge and a wave of
    another period hardly count."""
    y, x = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    cell = torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) - 0.5
    sign = torch.where((x // 32 + y // 32) % 2 == 0, 1.0, -1.0)  # flips from patch to patch
    contrast = 0.04
    grid = sign * cell.repeat(12, 12)
    lines = ((x % 4 == 0) | (y % 4 == 0)).float()
    ramp, edge, wave = x / 96, (x > 45).float(), torch.sin(x * 2 * torch.pi / 13)
    images = torch.stack(
        [(0.5 + contrast * t).expand(3, -1, -1) for t in (grid, lines, ramp, edge, wave)]
    )
    scores = grid_detail(images)
    assert scores[0] > 3 and scores[1] > 3
    assert scores[2] < 0.01 * scores[0] and scores[3] < 0.1 * scores[0]
    assert scores[4] < 0.2 * scores[0]
    with pytest.raises(ImageError, match="too small"):
        grid_detail(torch.rand(1, 3, 24, 64))
