"""Training: the loss falls, checkpoints resume exactly, torchrun runs, distillation caches."""

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from impasto.errors import ModelError, OptionError
from impasto.io.modelfile import load_model
from impasto.methods.feedforward import FastStylizer
from impasto.training.data import CropDataset, PositionSampler, find_images
from impasto.training.loop import checkpoint_path
from impasto.training.options import TrainOptions
from impasto.training.train import train


def options(data, tmp_path, **overrides) -> TrainOptions:
    tmp_path.mkdir(parents=True, exist_ok=True)
    base = dict(
        styles=[str(data / "styles/starry_night.jpg"), str(data / "styles/udnie.jpg")],
        data=str(data / "train"),
        output=str(tmp_path / "net.safetensors"),
        steps=6,
        batch_size=2,
        image_size=64,
        style_size=96,
        width=8,
        blocks=1,
        workers=0,
        checkpoint_every=2,
        sample_every=0,
        lr=5e-3,
    )
    return TrainOptions(**{**base, **overrides})


def test_loss_falls_and_files_appear(data, tmp_path):
    losses = []
    opts = options(data, tmp_path, steps=16, holdout=str(data / "holdout"), sample_every=8)
    meta = train(opts, progress=False, callback=lambda step, v: losses.append(v["total"]))
    assert len(losses) == 16
    # Batches of two make the curve noisy: the ratio is ~0.70, and a change in the order
    # floats are summed in moves it by a few hundredths.
    assert sum(losses[-4:]) < 0.8 * sum(losses[:4])
    assert meta["training"]["steps"] == 16 and meta["training"]["images"] == len(
        find_images(data / "train")[0]
    )
    assert meta["training"]["options"]["styles"] == ["starry_night.jpg", "udnie.jpg"]
    assert sorted(p.name for p in (tmp_path / "net_samples").iterdir()) == [
        "step_000008.png",
        "step_000016.png",
    ]
    assert (tmp_path / "net_loss.png").stat().st_size > 0
    fast = FastStylizer(tmp_path / "net.safetensors", "cpu")
    assert fast.styles == ("starry_night", "udnie")
    assert fast.run(data / "content/tubingen.jpg", "udnie", size=64).image.size == (64, 48)


def test_interrupt_then_resume_reproduces_the_same_losses(data, tmp_path):
    straight = []
    train(
        options(data, tmp_path / "a"), progress=False, callback=lambda step, v: straight.append(v)
    )

    def stop_at_3(step, losses):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(options(data, tmp_path / "b"), progress=False, callback=stop_at_3)
    _, meta = load_model(checkpoint_path(tmp_path / "b/net.safetensors"))
    assert meta["checkpoint"]["step"] == 3  # the interrupted run kept its work
    resumed = []
    train(
        options(data, tmp_path / "b", resume=True),
        progress=False,
        callback=lambda step, v: resumed.append(v),
    )
    assert resumed == straight[3:]  # steps 4-6, identical to the last float


def test_a_terminated_command_checkpoints_as_ctrl_c_does(data, tmp_path):
    """SIGTERM (kill, timeout, a scheduler) stops `impasto train` as Ctrl-C does: exit
    130, one line, the checkpoint written at the step it had reached."""
    out = tmp_path / "net.safetensors"
    command = [sys.executable, "-m", "impasto.cli", "train", "--data", str(data / "train")]
    command += ["--style", str(data / "styles/udnie.jpg"), "-o", str(out), "--steps", "100000"]
    command += ["--image-size", "32", "--batch-size", "1", "--style-size", "64", "--workers", "0"]
    command += ["--checkpoint-every", "100000", "--sample-every", "0"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE)
    seen, deadline = b"", time.monotonic() + 120

    def steps() -> int:  # the progress bar's count, which may skip numbers
        counts = re.findall(rb"\| (\d+)/100000", seen)
        return int(counts[-1]) if counts else 0

    while steps() < 3:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([run.stderr], [], [], max(left, 0))
        chunk = os.read(run.stderr.fileno(), 4096) if ready else b""
        if not chunk:
            run.kill()
            pytest.fail(f"no three steps in 120 s: {seen.decode(errors='replace')[-2000:]}")
        seen += chunk
    run.terminate()
    seen += run.stderr.read()
    assert run.wait(timeout=60) == 130, seen.decode(errors="replace")[-2000:]
    assert b"impasto: interrupted" in seen and b"Traceback" not in seen
    _, meta = load_model(checkpoint_path(out))
    assert meta["checkpoint"]["step"] >= 3 and not out.exists()


def test_resume_with_other_styles_is_refused(data, tmp_path):
    train(options(data, tmp_path, steps=2), progress=False)
    other = options(data, tmp_path, steps=4, resume=True, styles=[str(data / "styles/udnie.jpg")])
    with pytest.raises(ModelError, match="other styles or sizes"):
        train(other, progress=False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"styles": []}, "at least one style image"),
        ({"output": "x.pth"}, "end in .safetensors"),
        ({"content_layers": {"relu9_1": 1.0}}, "unknown content layer"),
        ({"style_layers": {"relu1_1": -2.0}}, "style_layers must be at least 0"),
        ({"content_weight": -1.0}, "content_weight must be at least 0"),
        ({"lr": 0.0}, "lr must be above 0"),
        ({"blocks": -1}, "blocks must be at least 0"),
        ({"width": 100000}, "width must be at most 256"),
        ({"style_names": ["a"]}, "1 style names for 2 styles"),
        ({"image_size": 16}, "at least 32"),
        ({"seed": -1}, "seed must be at least 0"),  # numpy's crops take no negative seed
    ],
)
def test_bad_options(data, tmp_path, override, message):
    with pytest.raises(OptionError, match=message):
        train(options(data, tmp_path, **override), progress=False)


def test_unreadable_files_are_skipped_and_counted(data, tmp_path):
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    for name in ("a.jpg", "b.png"):
        (folder / name).write_bytes(
            (data / "train" / sorted(os.listdir(data / "train"))[0]).read_bytes()
        )
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    paths, skipped = find_images(tmp_path / "photos")
    assert [p.name for p in paths] == ["a.jpg", "b.png"] and skipped == 1
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.png").write_bytes(b"")
    with pytest.raises(OptionError, match="no readable images"):
        find_images(tmp_path / "empty")


def test_sampling_is_a_function_of_seed_and_position(data):
    paths, _ = find_images(data / "train")
    a = CropDataset(paths[:10], 48, n_styles=3, seed=1)
    b = CropDataset(paths[:10], 48, n_styles=3, seed=1)
    for position in (0, 7, 23):
        x, s = a[position]
        y, t = b[position]
        assert torch.equal(x, y) and s == t and x.shape == (3, 48, 48)
    # Two ranks of a world of 2 share every global batch without overlap.
    r0, r1 = iter(PositionSampler(2, 5, 0, 2)), iter(PositionSampler(2, 5, 1, 2))
    assert [next(r0) for _ in range(4)] == [20, 21, 24, 25]
    assert [next(r1) for _ in range(4)] == [22, 23, 26, 27]


def test_distillation_renders_targets_once(data, tmp_path):
    udnie = [str(data / "styles/udnie.jpg")]
    opts = options(
        data,
        tmp_path,
        distill=True,
        distill_images=2,
        distill_size=64,
        distill_iterations=2,
        steps=2,
        styles=udnie,
    )
    meta = train(opts, progress=False)
    targets = sorted((tmp_path / "net_targets" / "udnie").iterdir())
    assert len(targets) == 2 and meta["training"]["images"] == 2
    stamps = [t.stat().st_mtime_ns for t in targets]
    losses = []
    train(opts, progress=False, callback=lambda step, v: losses.append(v))
    assert [t.stat().st_mtime_ns for t in targets] == stamps  # cached, not rendered again
    assert set(losses[0]) == {"content", "pixel", "tv", "total"}


def test_torchrun_two_cpu_processes(data, tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "impasto.cli",
        "train",
        "--style",
        data / "styles/udnie.jpg",
        "--data",
        data / "train",
        "-o",
        out,
        "--steps",
        "2",
        "--batch-size",
        "1",
        "--image-size",
        "48",
        "--style-size",
        "64",
        "--width",
        "4",
        "--blocks",
        "1",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--json",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _, meta = load_model(out)
    assert meta["training"]["device"] == "2 x cpu" and meta["training"]["steps"] == 2
    assert done.stdout.count('"output"') == 1  # rank 0 alone reports and writes


def test_bf16_training_aims_at_its_own_networks_grams(data, tmp_path, native_bf16):
    """The bf16 loss's Grams of a style image are its bf16 targets, not float32's: a bf16
    VGG is a slightly different network, ~0.5% off at the deeper layers."""
    from impasto.io.images import load_image, resize_longest, to_tensor
    from impasto.losses import gram_matrix
    from impasto.nets.vgg import VGG19
    from impasto.nets.weights import find_weights
    from impasto.training.train import style_grams

    vgg, cpu = VGG19.from_weights(find_weights()), torch.device("cpu")
    style = load_image(data / "styles/starry_night.jpg")
    bf16 = style_grams(vgg, [style], options(data, tmp_path, precision="bf16"), cpu)
    fp32 = style_grams(vgg, [style], options(data, tmp_path), cpu)
    image = to_tensor(resize_longest(style, 96))
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        seen = vgg(image, list(bf16))
    for name, target in bf16.items():
        own = gram_matrix(seen[name].float())
        assert torch.allclose(own, target[0:1])
        assert not torch.allclose(own, fp32[name][0:1])


def test_resume_past_the_steps_asked_for_is_refused(data, tmp_path):
    train(options(data, tmp_path, steps=4), progress=False)
    with pytest.raises(OptionError, match="at step 4, past steps 2"):
        train(options(data, tmp_path, steps=2, resume=True), progress=False)


def test_temporal_training_steadies_the_network_it_finetunes(data, tmp_path):
    """Fine-tuned with --temporal-weight, a network paints a photo moved a little (and
    noised) much closer to its picture of the photo moved the same way; a network of
    another architecture cannot be fine-tuned from."""
    import numpy as np
    import torch.nn.functional as F

    from impasto.io.images import load_image, resize_longest, to_tensor
    from impasto.training.data import find_images, move, random_motion

    base = options(data, tmp_path / "base", steps=8)
    train(base, progress=False)
    photos = [
        to_tensor(resize_longest(load_image(p), 64)) for p in find_images(data / "holdout")[0][:4]
    ]

    def gap(path) -> float:
        net = FastStylizer(path, "cpu").net.eval()
        rng, gaps = np.random.default_rng(1), []  # the same motions for each network
        with torch.no_grad():
            for photo in photos:
                theta = random_motion(rng, 64)[None]
                style = F.one_hot(torch.tensor([1]), 2).float()
                carried = move(net(photo, style), theta)
                seen = move(torch.ones_like(photo[:, :1]), theta, padding="zeros") > 0.999
                moved = net(move(photo, theta), style)
                gaps.append(((moved - carried).abs() * seen).sum() / seen.sum() / 3)
        return float(sum(gaps) / len(gaps))

    # An 8-step network's style loss is ~1e8: the temporal term needs a weight to match
    # (3e4 steadied it by 0.64-0.78x, as threads and kernels rounded; 1e5 by 0.35-0.46x).
    steady = options(
        data, tmp_path / "steady", steps=24, finetune=base.output, temporal_weight=1e5, lr=2e-3
    )
    history = []
    train(steady, progress=False, callback=lambda step, v: history.append(v))
    assert "temporal" in history[0]
    assert gap(steady.output) < 0.7 * gap(base.output)
    other = options(data, tmp_path / "other", blocks=2, finetune=base.output)
    with pytest.raises(OptionError, match="give its styles, width and blocks"):
        train(other, progress=False)


def test_artefact_weights_keep_fringes_and_grid_out(data, tmp_path):
    """Fine-tuned the same way from the built-in `styles`, with and without --chroma-weight
    and --grid-weight: with them its pictures of photos it never saw have far less fine
    colour detail and less of an 8-px grid."""
    from impasto.io.images import load_image, resize_longest, to_tensor
    from impasto.losses import chroma_detail, grid_detail

    names = FastStylizer("styles", "cpu").styles

    def finetune(folder, **weights) -> TrainOptions:
        opts = options(
            data,
            tmp_path / folder,
            styles=[str(next((data / "styles").glob(f"{n}.*"))) for n in names],
            width=8,
            blocks=5,
            finetune="styles",
            steps=10,
            lr=2e-3,
            image_size=96,
            **weights,
        )
        history = []
        train(opts, progress=False, callback=lambda step, v: history.append(v))
        assert ("chroma" in history[0]) == bool(weights)
        return opts

    plain, clean = finetune("plain"), finetune("clean", chroma_weight=1e6, grid_weight=1e6)
    photos = [
        to_tensor(resize_longest(load_image(p), 128)) for p in find_images(data / "holdout")[0][:3]
    ]
    candy = torch.eye(12)[names.index("candy")]

    def artefacts(opts) -> tuple[float, float]:
        fast = FastStylizer(opts.output, "cpu")
        pictures = [fast.run_batch(p, candy) for p in photos]
        return tuple(sum(float(f(p)) for p in pictures) for f in (chroma_detail, grid_detail))

    (chroma, grid), (chroma_plain, grid_plain) = artefacts(clean), artefacts(plain)
    assert chroma < 0.5 * chroma_plain and grid < 0.8 * grid_plain
