import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from impasto import color
from impasto.errors import DivergedError, OptionError
from impasto.evaluate import Evaluator
from impasto.io.images import load_image, resize_longest, to_tensor
from impasto.losses import content_loss, gram_matrix, style_loss, tv_loss
from impasto.methods.presets import preset
from impasto.methods.schedule import Optimizer, iterations_per_scale, scale_ladder
from impasto.options import DEFAULT_STYLE_WEIGHTS, OptimizeOptions

FAST = {"size": 64, "progress": False}


def losses_of(stylizer, content, style, **options):
    """A run's result and its total loss after each iteration, with α as given (a content
    target would paint the coarsest scale again with another α: another loss)."""
    options.setdefault("content_target", 0)
    seen = []
    result = stylizer.run(content, style, callback=lambda p: seen.append(p.losses), **options)
    return result, [s["total"] for s in seen]


def test_gram_properties():
    features = torch.rand(1, 8, 6, 5)
    gram = gram_matrix(features)
    assert gram.shape == (1, 8, 8)
    assert torch.allclose(gram, gram.transpose(1, 2))
    assert torch.linalg.eigvalsh(gram.double()).min() > -1e-9  # positive semi-definite
    # normalised by size: a tiled copy of the same features has the same Gram
    assert torch.allclose(gram_matrix(features.repeat(1, 1, 2, 3)), gram, atol=1e-6)
    assert style_loss(features, gram) == 0
    assert style_loss(features * 2, gram) > 0


def test_tv_loss():
    assert tv_loss(torch.full((1, 3, 8, 8), 0.3)) == 0
    assert tv_loss(torch.rand(1, 3, 8, 8)) > 0


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_losses_fall(stylizer, content, style, optimizer):
    result, totals = losses_of(
        stylizer, content, style, iterations=15, optimizer=optimizer, preset="classic", **FAST
    )
    assert len(totals) == 15 and result.iterations == 15
    assert totals[-1] < 0.5 * totals[0]
    assert result.image.size == (64, 48)  # tubingen is 4:3


def test_the_loss_built_layer_by_layer_is_the_textbook_loss(stylizer, content, style):
    # _loss builds each layer's term as VGG reaches it (to save memory in the backward
    # pass); value and gradient must be those of the loss written the plain way.
    opts = preset("classic", style_weight=DEFAULT_STYLE_WEIGHTS["gram"])
    photo = to_tensor(resize_longest(load_image(content), 64))
    painting = to_tensor(resize_longest(load_image(style), 64))
    targets = stylizer.targets(photo, [load_image(style)], [1.0], 64, opts)
    x = (photo + 0.1 * torch.rand_like(photo)).clamp(0, 1).requires_grad_(True)
    ours = stylizer.loss(x, targets, opts)["total"]
    (grad,) = torch.autograd.grad(ours, x)

    y = x.detach().clone().requires_grad_(True)
    f = stylizer.vgg(y, [*opts.content_layers, *opts.style_layers])
    want_c = stylizer.vgg(photo, opts.content_layers)
    want_s = {n: gram_matrix(v) for n, v in stylizer.vgg(painting, opts.style_layers).items()}
    plain = (
        opts.content_weight
        * sum(w * content_loss(f[n], want_c[n]) for n, w in opts.content_layers.items())
        + opts.style_weight
        * sum(w * style_loss(f[n], want_s[n]) for n, w in opts.style_layers.items())
        + opts.tv_weight * tv_loss(y)
    )
    plain.backward()
    assert torch.allclose(ours, plain, rtol=1e-5)
    assert torch.allclose(grad, y.grad, rtol=1e-4, atol=1e-6 * float(y.grad.abs().max()))


def test_texture_synthesis_without_content_layers(stylizer, content, style):
    # No content layers: the painting's texture alone, grown from noise.
    result, totals = losses_of(
        stylizer, content, style, iterations=10, content_layers={}, init="noise", seed=0, **FAST
    )
    assert result.losses["content"] == 0
    assert totals[-1] < totals[0]


def test_noise_init_is_deterministic_with_seed(stylizer, content, style):
    runs = [
        stylizer.run(content, style, iterations=5, init="noise", seed=s, **FAST).image
        for s in (7, 7, 8)
    ]
    a, b, c = (np.asarray(r) for r in runs)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_init_from_image(stylizer, content, style, data):
    other = data / "content" / "golden_gate.jpg"
    zero = stylizer.run(content, style, iterations=0, init=other, **FAST).image
    expected = Image.open(other).convert("RGB").resize(zero.size, Image.Resampling.LANCZOS)
    assert np.abs(np.asarray(zero, int) - np.asarray(expected, int)).mean() < 2


def test_blend_weights_one_zero_equal_the_first_style(stylizer, content, style, data):
    other = data / "styles" / "the_scream.jpg"
    alone = stylizer.run(content, style, iterations=5, **FAST).image
    blended = stylizer.run(
        content, [style, other], style_weights=[1, 0], iterations=5, **FAST
    ).image
    mixed = stylizer.run(content, [style, other], iterations=5, **FAST).image
    assert np.array_equal(np.asarray(alone), np.asarray(blended))
    assert not np.array_equal(np.asarray(alone), np.asarray(mixed))


def test_luminance_mode_keeps_the_content_chroma(stylizer, content, style):
    result = stylizer.run(content, style, iterations=10, preserve_color="luminance", **FAST)
    photo = to_tensor(
        Image.open(content).convert("RGB").resize(result.image.size, Image.Resampling.LANCZOS)
    )
    out = to_tensor(result.image)
    iq_out, iq_photo = color.rgb_to_yiq(out)[:, 1:], color.rgb_to_yiq(photo)[:, 1:]
    assert (iq_out - iq_photo).abs().mean() < 0.01  # only uint8 rounding and clipping
    y_out, y_photo = color.rgb_to_yiq(out)[:, 0], color.rgb_to_yiq(photo)[:, 0]
    assert (y_out - y_photo).abs().mean() > 0.02  # the luminance was repainted


def test_histogram_matching_moves_the_style_colours():
    rng = torch.Generator().manual_seed(0)
    source = torch.rand(1, 3, 16, 16, generator=rng) * 0.3
    target = 0.4 + torch.rand(1, 3, 16, 16, generator=rng) * 0.2
    target[:, 1] = target[:, 0] * 0.5 + 0.2  # correlated channels
    matched = color.match_color(source, target)
    flat_m, flat_t = matched[0].reshape(3, -1), target[0].reshape(3, -1)
    assert torch.allclose(flat_m.mean(1), flat_t.mean(1), atol=1e-3)
    assert torch.allclose(torch.cov(flat_m), torch.cov(flat_t), atol=1e-3)


def test_histogram_mode_runs(stylizer, content, style):
    plain = stylizer.run(content, style, iterations=5, **FAST).image
    kept = stylizer.run(content, style, iterations=5, preserve_color="histogram", **FAST).image
    assert not np.array_equal(np.asarray(plain), np.asarray(kept))


def test_multi_scale_ladder(stylizer, content, style):
    seen = []
    result = stylizer.run(
        content,
        style,
        size=96,
        scales=[48, 96],
        iterations=[4, 3],
        content_target=0,  # the balance as given: each scale painted once
        progress=False,
        callback=lambda p: seen.append((p.size, p.iteration)),
    )
    assert result.sizes == [(48, 36), (96, 72)]
    assert seen == [(48, 1), (48, 2), (48, 3), (48, 4), (96, 1), (96, 2), (96, 3)]
    assert result.image.size == (96, 72)


def test_snapshots(stylizer, content, style, tmp_path):
    stylizer.run(content, style, iterations=6, save_every=3, snapshots=tmp_path / "snaps", **FAST)
    names = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert names == ["scale1_64px_00003.png", "scale1_64px_00006.png"]


def test_interrupt_keeps_the_current_image(stylizer, content, style):
    def stop(progress):
        if progress.iteration == 3:
            raise KeyboardInterrupt

    result = stylizer.run(content, style, iterations=50, callback=stop, **FAST)
    assert result.interrupted and result.iterations == 3
    assert result.image.size == (64, 48)


def test_divergence_is_a_clear_error(stylizer, content, style):
    with pytest.raises(DivergedError, match="non-finite"):
        stylizer.run(
            content, style, iterations=3, style_weight=1e30, style_layers={"relu1_1": 1e30}, **FAST
        )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"optimizer": "sgd"}, "optimizer"),
        ({"style_layers": {"relu9_1": 1.0}}, "relu9_1"),
        ({"preserve_color": "sepia"}, "preserve_color"),
        ({"style_weights": [1, 2]}, "2 style weights for 1"),
        ({"content_weight": -1}, "content_weight must be at least 0"),
        ({"style_layers": {"relu1_1": -1.0}}, "style_layers must be at least 0"),
        ({"optimizer": "adam", "lr": -1}, "lr must be above 0"),
        ({"lr": float("inf")}, "lr must be a finite number"),
        ({"scale_step": float("nan")}, "scale_step must be a finite number"),
        ({"style_scale": 1000}, "style_scale must be at most 8"),
        ({"optimizer": "lbfgs", "history": 0}, "history"),
        ({"colour": 1}, "unknown option"),
    ],
)
def test_bad_options(stylizer, content, style, options, message):
    with pytest.raises(OptionError, match=message):
        stylizer.run(content, style, iterations=1, **{**FAST, **options})


def test_no_style_image(stylizer, content):
    with pytest.raises(OptionError, match="at least one style image"):
        stylizer.run(content, [], iterations=1, **FAST)


def test_public_api(content, style):
    import impasto

    image = impasto.stylize(content, style, size=48, iterations=2, device="cpu")
    assert isinstance(image, Image.Image) and image.size == (48, 36)
    # The other methods, by the same names as their commands, with the built-in decoders
    image = impasto.arbitrary(content, style, size=48, alpha=0.5, device="cpu")
    assert isinstance(image, Image.Image) and image.size == (48, 36)
    image = impasto.dream(content, size=48, octaves=1, iterations=2, seed=0, device="cpu")
    assert isinstance(image, Image.Image) and image.size == (48, 36)
    with pytest.raises(OptionError, match="strength must be at most 1"):
        impasto.arbitrary(content, style, alpha=2, device="cpu")  # alpha: strength's alias


def test_bf16_precision_paints_like_fp32(stylizer, content, style, native_bf16):
    # 25 iterations: the first few steps of L-BFGS from the photo are erratic (a step
    # can throw the loss up 100-fold before the next brings it down), and rounding
    # decides which one does.
    classic = {"preset": "classic", **FAST}
    fp32, fp32_totals = losses_of(
        stylizer, content, style, iterations=25, precision="fp32", **classic
    )
    bf16, bf16_totals = losses_of(
        stylizer, content, style, iterations=25, precision="bf16", **classic
    )
    assert bf16_totals[-1] < 0.5 * bf16_totals[0]
    assert abs(bf16_totals[-1] - fp32_totals[-1]) < 0.2 * fp32_totals[-1]
    difference = np.abs(np.asarray(fp32.image, int) - np.asarray(bf16.image, int)).mean()
    assert 0 < difference < 20  # differs, but is the same picture
    with pytest.raises(OptionError, match="precision"):
        stylizer.run(content, style, iterations=1, precision="fp8", **FAST)


def test_progress_shows_the_picture_and_the_pixels_behind_it(stylizer, content, style):
    seen = []

    def keep(progress):
        seen.append((progress.image.clone(), progress.pixels.clone()))

    stylizer.run(content, style, iterations=8, preset="classic", callback=keep, **FAST)
    image, pixels = seen[-1]
    assert torch.equal(image, pixels.clamp(0, 1))  # L-BFGS's pixels are not kept in range
    assert ((pixels < 0) | (pixels > 1)).any()
    assert not torch.equal(seen[-2][1], pixels)


def test_bf16_targets_come_from_the_bf16_network(stylizer, content, style, native_bf16):
    """A bf16 VGG is a slightly different network: its targets are its own, so a run that
    starts from the photo starts with no content loss at all (float32 targets: ~0.1%
    of the photo's features off everywhere, a pull the optimization then follows)."""
    seen = []
    stylizer.run(
        content,
        style,
        iterations=1,
        precision="bf16",
        init="content",
        preset="classic",
        callback=lambda p: seen.append(p.losses),
        **FAST,
    )
    assert seen[0]["content"] == 0.0 and seen[0]["style"] > 0


def test_bf16_falls_back_to_fp32_on_a_cpu_without_bf16_kernels(
    stylizer, content, style, model_file, monkeypatch, caplog
):
    from impasto import devices

    monkeypatch.setattr(devices, "bf16_is_fast", lambda device: device.type != "cpu")
    result = stylizer.run(content, style, iterations=1, precision="bf16", **FAST)
    assert result.options["precision"] == "fp32"
    assert "no bfloat16 kernels" in caplog.text and "running in fp32" in caplog.text
    assert devices.usable_precision("bf16", torch.device("cuda")) == "bf16"
    # "auto" (the one-pass default) picks fp32 here, quietly, and bf16 where it is fast
    caplog.clear()
    assert devices.usable_precision("auto", torch.device("cpu")) == "fp32"
    assert "bfloat16" not in caplog.text
    monkeypatch.setattr(devices, "bf16_is_fast", lambda device: True)
    assert devices.usable_precision("auto", torch.device("cpu")) == "bf16"
    assert devices.usable_precision("auto", torch.device("mps")) == "fp32"


@pytest.mark.parametrize("style_loss", ["moments", "w2"])
def test_each_style_loss_falls(stylizer, content, style, style_loss):
    result, totals = losses_of(
        stylizer,
        content,
        style,
        iterations=20,
        style_loss=style_loss,
        optimizer="lbfgs",
        average=0,
        **FAST,
    )
    assert totals[-1] < 0.7 * totals[0]
    assert result.options["style_weight"] == DEFAULT_STYLE_WEIGHTS[style_loss]


def test_the_average_of_the_iterates_is_saved_and_starts_the_next_scale(stylizer, content, style):
    """Averaging does not steer the optimization: the saved picture must be the
    bias-corrected moving average of the very iterates a run without it shows."""
    common = {
        "optimizer": "adam",
        "scales": [32, 64],
        "iterations": [6, 0],
        "size": 64,
        "content_target": 0,
        "progress": False,
    }
    raw = []
    plain = stylizer.run(
        content, style, average=0, callback=lambda p: raw.append(p.image), **common
    )
    averaged = stylizer.run(content, style, average=0.8, **common)
    total, weight = torch.zeros_like(raw[0]), 0.0
    for image in raw:
        total, weight = total * 0.8 + image * 0.2, weight * 0.8 + 0.2
    expected = F.interpolate(total / weight, size=(48, 64), mode="bicubic").clamp(0, 1)
    assert torch.allclose(averaged.pixels, expected, atol=1e-5)
    assert not torch.allclose(plain.pixels, averaged.pixels, atol=1e-3)


def test_adam_is_warm_started_at_the_next_scale():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    opts = OptimizeOptions(optimizer="adam")
    first = Optimizer(x, opts)
    for _ in range(3):
        first(lambda: {"total": (x**2).sum()})
    y = torch.rand(1, 3, 16, 16, requires_grad=True)
    state = Optimizer(y, opts, first).optim.state[y]
    assert int(state["step"]) == 3 and state["exp_avg"].shape == y.shape
    assert state["exp_avg_sq"].min() >= 0
    assert not Optimizer(y, opts).optim.state  # a cold start has none


def test_ladder_in_steps_of_the_square_root_of_two():
    opts = OptimizeOptions(size=512, scale_step=2**0.5, min_scale=128)
    assert scale_ladder(opts) == [128, 181, 256, 362, 512]
    assert scale_ladder(OptimizeOptions(size=1024, scale_step=2, min_scale=256)) == [256, 512, 1024]
    assert scale_ladder(OptimizeOptions(size=300, scale_step=2, min_scale=256)) == [300]
    with pytest.raises(OptionError, match="2 numbers for 3 scales"):
        iterations_per_scale(
            OptimizeOptions(size=1024, scale_step=2, min_scale=256, iterations=[1, 2])
        )


def test_presets_move_along_the_trade_off(stylizer, content, style, data):
    judge = Evaluator.__new__(Evaluator)
    judge.device, judge.vgg = stylizer.device, stylizer.vgg
    distance = {}
    for name in ("more-photo", "balanced", "more-style"):
        result = stylizer.run(
            content, style, preset=name, size=96, scales=[96], iterations=30, progress=False
        )
        distance[name] = judge.score(result.image, content, style, size=96)
    stylizer.vgg.pooling, stylizer.vgg.padding = "max", "zeros"
    photo, balanced, painting = (distance[p] for p in ("more-photo", "balanced", "more-style"))
    assert photo["content_distance"] < balanced["content_distance"] < painting["content_distance"]
    assert photo["moment_distance"] > painting["moment_distance"]


def test_presets_and_options():
    assert preset("classic").style_loss == "gram"
    assert preset("classic", iterations=5).iterations == 5  # given ones win
    targets = [preset(p).content_target for p in ("more-photo", "balanced", "more-style")]
    assert targets == sorted(targets) and preset("classic").content_target == 0
    with pytest.raises(OptionError, match="unknown preset"):
        preset("louder")


def test_lbfgs_reuses_its_pair_buffers_and_converges():
    from impasto.methods.lbfgs import LBFGS

    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 50, generator=g)
    a = a @ a.T / 50 + 0.1 * torch.eye(50)
    b = torch.randn(50, generator=g)
    x = torch.zeros(50, requires_grad=True)
    opt = LBFGS(x, history=5, first_step=0.1)

    def closure():
        x.grad = None
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss

    for _ in range(80):
        opt.step(closure)
    optimum = torch.linalg.solve(a, b)
    assert torch.allclose(x.detach(), optimum, atol=1e-3)
    assert len(opt.pairs) == 5 and len(opt.s) <= 6  # slots reused, not one per iteration


def test_options_of_the_wrong_type_name_the_keyword(stylizer, content, style):
    """A library caller's string where a number goes is an OptionError naming it."""
    for options, message in [
        ({"size": "512"}, "size must be a number"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"strength": True}, "strength must be a number"),
    ]:
        with pytest.raises(OptionError, match=message):
            stylizer.run(content, style, **{**FAST, **options})


def test_next_weight_follows_the_measured_slope():
    from impasto.methods.balance import next_weight

    assert next_weight([(5.0, 0.4)], 0.2) == pytest.approx(10.0)  # distance about 1/α
    law = [(w, 2 / w**2) for w in (5.0, 7.0)]  # a steeper law: two tries measure it
    assert 2 / next_weight(law, 0.01) ** 2 == pytest.approx(0.01)
    assert next_weight([(5.0, 100.0)], 0.2) == pytest.approx(40.0)  # at most 8x a try


def test_the_balance_aims_at_the_content_target(stylizer, content, style):
    from impasto.methods.balance import coarse_target, settled

    small = dict(size=64, scales=[64], iterations=15, progress=False)
    found = {}
    for target in (0.1, 0.6):
        balance = stylizer.run(content, style, content_target=target, **small).options["balance"]
        tries = balance["tries"]
        goal, last = coarse_target(target, 1), tries[-1]["distance"]
        assert settled(last, goal) or abs(last - goal) < abs(tries[0]["distance"] - goal)
        assert balance["content_weight"] == tries[-1]["content_weight"]
        found[target] = (balance["content_weight"], last)
    assert found[0.1][0] > found[0.6][0] and found[0.1][1] < found[0.6][1]
    seen = []
    aimed = stylizer.run(
        content, style, content_target=0.6, callback=lambda p: seen.append(p.iteration), **small
    )
    assert seen.count(15) == len(aimed.options["balance"]["tries"])  # each try is shown
    given = stylizer.run(content, style, content_weight=5.0, **small)
    assert given.options["balance"] is None and given.options["content_target"] == 0
