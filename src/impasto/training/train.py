"""Train a transformation network: one style, several (conditional instance norm), or
by distillation of the optimization method's outputs.

    train(TrainOptions(styles=["starry.jpg"], data="photos/", output="starry.safetensors"))

The same code runs as one process (CPU or GPU) or under `torchrun` (DDP: one
process per GPU, or gloo on CPUs); rank 0 writes every file. Files beside OUTPUT:

    OUTPUT                     the model (safetensors + JSON metadata), at the end
    OUTPUT.ckpt.safetensors    the checkpoint: weights, Adam's state, loss history
    OUTPUT_samples/            held-out photos stylized every --sample-every steps
    OUTPUT_loss.png            the loss curves
    OUTPUT_targets/            distillation targets (cached; an interrupted render resumes)
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..devices import autocast, resolve_device, usable_precision
from ..errors import ModelError, OptionError
from ..io.images import load_image, resize_longest, save_image, to_image, to_tensor
from ..io.modelfile import load_model, save_model
from ..io.sheet import contact_sheet, plot_curves
from ..losses import content_loss, gram_matrix, tv_loss
from ..nets.transformer import Architecture, TransformerNet
from ..nets.vgg import LAYERS, VGG19, check_loss_layers
from ..nets.weights import find_weights
from ..options import check
from .data import CropDataset, PositionSampler, find_images
from .options import TrainOptions

SAMPLE_PHOTOS = 4  # held-out photos in each sample sheet
SAMPLE_STYLES = 8  # styles shown in it, at most


def validate(opts: TrainOptions) -> None:
    """Every option in its bounds, and the ones that depend on each other agreeing."""
    check(opts)
    if not opts.styles:
        raise OptionError("give at least one style image")
    opts.names  # noqa: B018 (checks the names)
    check_loss_layers("content", opts.content_layers)
    check_loss_layers("style", opts.style_layers)
    opts.check_output()


def checkpoint_path(output: str | os.PathLike) -> Path:
    return Path(output).with_suffix(".ckpt.safetensors")


def _beside(output: str | os.PathLike, suffix: str) -> Path:
    out = Path(output)
    return out.with_name(out.name.removesuffix(".safetensors") + suffix)


def lr_at(step: int, opts: TrainOptions) -> float:
    warmup = min(100, opts.steps // 10)
    if step < warmup:
        return opts.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, opts.steps - warmup)
    return opts.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def start_run(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process; under torchrun, starts the process
    group and gives each rank its own GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    device = resolve_device(device_name)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return rank, world, device


def train(
    opts: TrainOptions,
    progress: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict:
    """Run (or resume) training; returns the model's metadata. Ctrl-C checkpoints first."""
    validate(opts)
    rank, world, device = start_run(opts.device)
    opts = replace(opts, precision=usable_precision(opts.precision, device))
    channels_last = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    torch.manual_seed(opts.seed)

    names = opts.names
    styles = [load_image(s) for s in opts.styles]
    paths, skipped = find_images(opts.data)
    arch = Architecture(styles=tuple(names), width=opts.width, blocks=opts.blocks)
    net = TransformerNet(arch).to(device, memory_format=channels_last)
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr)
    history: dict[str, list] = {}
    start, seconds = 0, 0.0
    ckpt = checkpoint_path(opts.output)
    if opts.resume and ckpt.exists():
        info = load_checkpoint(ckpt, net, optim, arch.to_dict(), device)
        start, history, seconds = int(info["step"]), info["history"], float(info["seconds"])
    elif opts.resume and rank == 0:
        print(f"impasto: no checkpoint at {ckpt}; starting from step 0")

    vgg = VGG19.from_weights(find_weights(opts.weights)).to(device, memory_format=channels_last)
    layers = sorted({*opts.content_layers, *opts.style_layers}, key=LAYERS.index)
    grams = style_grams(vgg, styles, opts, device)

    targets = None
    if opts.distill:
        paths = paths[: opts.distill_images]
        targets = render_targets(opts, paths, styles, names, device, rank, world, progress)
    dataset = CropDataset(paths, opts.image_size, len(names), opts.seed, targets=targets)
    loader = DataLoader(
        dataset,
        batch_size=opts.batch_size,
        sampler=PositionSampler(opts.batch_size, start, rank, world),
        num_workers=opts.workers,
        persistent_workers=opts.workers > 0,
        pin_memory=device.type == "cuda",
    )
    model = net
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
    holdout = _holdout_photos(opts.holdout) if rank == 0 else []  # rank 0 writes samples

    bar = tqdm(
        total=opts.steps,
        initial=start,
        disable=rank != 0 or not progress,
        unit="step",
        dynamic_ncols=True,
    )
    batches = iter(loader)
    step, began = start, time.perf_counter()
    try:
        while step < opts.steps:
            batch = next(batches)
            photos = batch[0].to(device, memory_format=channels_last, non_blocking=True)
            which = batch[1].to(device)
            target = batch[2].to(device, non_blocking=True) if opts.distill else None
            for group in optim.param_groups:
                group["lr"] = lr_at(step, opts)
            with autocast(device, opts.precision):
                out = model(photos, F.one_hot(which, len(names)).float())
                terms = _losses(vgg, layers, out, photos, target, which, grams, opts)
            step += 1
            losses = optimizer_step(optim, terms, world, step, history)
            bar.update()
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            if callback is not None:
                callback(step, losses)
            if rank == 0 and step % opts.checkpoint_every == 0 and step < opts.steps:
                elapsed = seconds + time.perf_counter() - began
                _checkpoint(ckpt, net, optim, arch, opts, step, history, elapsed)
            if rank == 0 and opts.sample_every and step % opts.sample_every == 0:
                _write_samples(net, holdout, names, opts, step, device)
    except KeyboardInterrupt:
        if rank == 0 and step > start:
            elapsed = seconds + time.perf_counter() - began
            _checkpoint(ckpt, net, optim, arch, opts, step, history, elapsed)
            bar.write(f"impasto: interrupted at step {step}; checkpoint in {ckpt}")
        raise
    finally:
        bar.close()

    seconds += time.perf_counter() - began
    meta = {
        "architecture": arch.to_dict(),
        "training": {
            "options": _options_record(opts),
            "steps": step,
            "images": len(paths),
            "skipped_images": skipped,
            "seconds": round(seconds, 1),
            "device": f"{world} x {device.type}" if world > 1 else device.type,
            "final_losses": {k: v[-1][1] for k, v in history.items()},
        },
    }
    if rank == 0:
        _checkpoint(ckpt, net, optim, arch, opts, step, history, seconds)
        meta = save_model(opts.output, net.state_dict(), meta)
        _write_samples(net, holdout, names, opts, step, device)
        save_image(plot_curves(history, "training loss"), _beside(opts.output, "_loss.png"))
    if world > 1:
        dist.barrier()
    return meta


@torch.no_grad()
def style_grams(
    vgg: VGG19, styles: list, opts: TrainOptions, device: torch.device
) -> dict[str, torch.Tensor]:
    """Target Grams, (n_styles, C, C) per style layer, from the network the loss runs: in
    bf16 a bf16 VGG, a slightly different network (see Stylizer._features)."""
    grams: dict[str, list] = {n: [] for n in opts.style_layers}
    for style in styles:
        image = to_tensor(resize_longest(style, opts.style_size)).to(device)
        with autocast(device, opts.precision):
            feats = vgg(image, grams)
        for n in grams:
            grams[n].append(gram_matrix(feats[n].float())[0])
    return {n: torch.stack(g) for n, g in grams.items()}


def _losses(vgg, layers, out, photos, target, which, grams, opts) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        reference = photos if target is None else target
        ref_feats = {k: v.float() for k, v in vgg(reference, opts.content_layers).items()}
    content = style = out.new_zeros((), dtype=torch.float32)  # tensors even with no layers
    # Each layer's loss is built as VGG reaches it (see VGG19.walk): less memory held in
    # the backward pass.
    for name, feats in vgg.walk(out, layers):
        if name in opts.content_layers:
            content = content + opts.content_layers[name] * content_loss(
                feats.float(), ref_feats[name]
            )
        if target is None and name in opts.style_layers:  # the Gram is float32 from bf16 too
            gram_error = F.mse_loss(gram_matrix(feats), grams[name][which])
            style = style + opts.style_layers[name] * gram_error
    terms = {"content": opts.content_weight * content}
    if target is None:
        terms["style"] = opts.style_weight * style
    else:
        terms["pixel"] = opts.pixel_weight * F.mse_loss(out.float(), target) * 255.0**2
    terms["tv"] = opts.tv_weight * tv_loss(out.float())
    terms["total"] = sum(terms.values())
    return terms


def optimizer_step(optim, terms: dict, world: int, step: int, history: dict) -> dict[str, float]:
    """Backward and Adam step; the losses, averaged over ranks, go into `history`."""
    optim.zero_grad(set_to_none=True)
    terms["total"].backward()
    optim.step()
    losses = _mean_over_ranks(terms, world)
    if not math.isfinite(losses["total"]):
        raise OptionError(
            f"the loss became non-finite at step {step}: lower the learning rate (lr)"
        )
    for key, value in losses.items():
        history.setdefault(key, []).append([step, value])
    return losses


def _mean_over_ranks(terms: dict[str, torch.Tensor], world: int) -> dict[str, float]:
    values = torch.stack([t.detach().float() for t in terms.values()])
    if world > 1:
        dist.all_reduce(values)
        values /= world
    return dict(zip(terms, values.tolist(), strict=True))


def _options_record(opts: TrainOptions) -> dict:
    record = asdict(opts)
    record["styles"] = [Path(s).name for s in opts.styles]  # no local paths in a shared file
    record["data"] = Path(opts.data).name
    record["output"] = Path(opts.output).name
    record["holdout"] = Path(opts.holdout).name if opts.holdout else None
    record["weights"] = Path(opts.weights).name if opts.weights else None
    record["style_names"] = opts.names
    return record


def _checkpoint(path, net, optim, arch, opts, step, history, seconds) -> None:
    info = {"step": step, "history": history, "seconds": seconds, "options": _options_record(opts)}
    save_checkpoint(path, net, optim, arch.to_dict(), info)


def save_checkpoint(path, net, optim, architecture: dict, info: dict) -> None:
    """Weights + Adam's moments as tensors, the rest as JSON: no pickle, atomic."""
    state = dict(net.state_dict())
    for i, s in optim.state_dict()["state"].items():
        for key, value in s.items():
            state[f"optim.{i}.{key}"] = torch.as_tensor(value)
    save_model(path, state, {"architecture": architecture, "checkpoint": info})


def load_checkpoint(path, net, optim, architecture: dict, device) -> dict:
    """Restore weights and Adam's state in place; returns the checkpoint's info."""
    state, meta = load_model(path, kind=architecture["kind"])
    if "checkpoint" not in meta:
        raise ModelError(f"{path}: not a training checkpoint")
    if meta["architecture"] != architecture:
        raise ModelError(
            f"{path}: checkpoint was trained with other styles or sizes "
            f"({meta['architecture']}); delete it or drop --resume"
        )
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("optim.")})
    moments: dict[int, dict] = {}
    for key, value in state.items():
        if key.startswith("optim."):
            _, i, name = key.split(".")
            moments.setdefault(int(i), {})[name] = value.to(device) if value.dim() else value
    optim_state = optim.state_dict()
    optim_state["state"] = moments
    optim.load_state_dict(optim_state)
    return meta["checkpoint"]


def _holdout_photos(folder: str | None) -> list[torch.Tensor]:
    if not folder:
        return []
    paths, _ = find_images(folder)
    return [to_tensor(resize_longest(load_image(p), 256)) for p in paths[:SAMPLE_PHOTOS]]


@torch.no_grad()
def _write_samples(net, photos, names, opts, step, device) -> None:
    if not photos:
        return
    net.eval()
    shown = names[:SAMPLE_STYLES]
    rows = []
    for photo in photos:
        row = [to_image(photo)]
        for i in range(len(shown)):
            weights = F.one_hot(torch.tensor(i), len(names)).float().to(device)
            row.append(to_image(net(photo.to(device), weights).float()))
        rows.append(row)
    net.train()
    folder = _beside(opts.output, "_samples")
    folder.mkdir(exist_ok=True)
    sheet = contact_sheet(rows, ["photo", *shown], cell=192)
    save_image(sheet, folder / f"step_{step:06d}.png")


def render_targets(opts, paths, styles, names, device, rank, world, progress) -> list[list[Path]]:
    """Optimization-method outputs for each (style, photo), cached; ranks share the work."""
    from ..methods.optimize import Stylizer
    from ..methods.schedule import scale_ladder
    from ..options import OptimizeOptions

    folder = _beside(opts.output, "_targets")
    # The method's defaults are in the recipe: targets painted by other defaults are stale.
    method = OptimizeOptions()
    recipe = (
        f"{opts.distill_size}|{opts.distill_iterations}|{opts.precision}|"
        f"{method.style_loss}|{method.optimizer}|{scale_ladder(method)}"
    )
    targets, todo = [], []
    for s, name in enumerate(names):
        (folder / name).mkdir(parents=True, exist_ok=True)
        row = []
        for p in paths:
            key = hashlib.sha256(f"{p.resolve()}|{opts.styles[s]}|{recipe}".encode()).hexdigest()
            row.append(folder / name / f"{p.stem}_{key[:10]}.png")
            if not row[-1].exists():
                todo.append((s, p, row[-1]))
        targets.append(row)
    mine = todo[rank::world]
    if mine:
        stylizer = Stylizer(opts.weights, device)
        for s, photo, out in tqdm(mine, desc="distillation targets", disable=not progress):
            result = stylizer.run(
                photo,
                styles[s],
                size=opts.distill_size,
                iterations=opts.distill_iterations,
                precision=opts.precision,
                progress=False,
            )
            save_image(result.image, out)
    if world > 1:
        dist.barrier()
    return targets
