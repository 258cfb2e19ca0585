"""The training loop every trainer plugs into: `train` (feed-forward networks),
`train_decoders` (decoders that reconstruct) and `train_arbitrary` (a one-pass network
that paints) give it what trains and the losses of a batch; it does the rest, the same
way for each.

- Deterministic data: crops chosen by (seed, position), so a run resumed at step N sees
  what it would have seen, and each torchrun rank takes its own share.
- Adam with a short warm-up and cosine decay to a tenth of the learning rate.
- Checkpoints (weights, Adam's state, the loss history) every `checkpoint_every` steps,
  on Ctrl-C, and at the end, atomically and without pickle; `resume` continues bit for bit.
- Under torchrun, DDP (NCCL on GPUs, gloo on CPUs); rank 0 writes every file.
- Sample sheets of the held-out photos, and a plot of the losses.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..budget import BYTES_PER_VGG_PIXEL, check_fits
from ..devices import resolve_device, usable_precision
from ..errors import ModelError, OptionError
from ..io.images import load_image, resize_longest, save_image, to_tensor
from ..io.modelfile import load_model, save_model
from ..io.sheet import plot_curves
from ..losses import chroma_detail, grid_detail, temporal_loss
from .data import PositionSampler, find_images, move
from .options import ArbitraryTrainOptions, TrainerOptions, TrainOptions

SAMPLE_PHOTOS = 4  # held-out photos in each sample sheet


@dataclass
class Trainee:
    """What a trainer hands the loop."""

    model: nn.Module  # what trains, and what a checkpoint holds
    keep: nn.Module  # what the finished model file holds (the model, or a part of it)
    architecture: dict  # the model file's "architecture" metadata
    losses: Callable[[nn.Module, list], dict[str, torch.Tensor]]  # of a batch; "total" too
    samples: Callable[[int], None]  # writes a sample sheet at a step (rank 0)
    record: dict  # the options as the model file keeps them
    summary: Callable[[], dict] = dict  # more for the model file's training record, at the end
    plotted: tuple[str, ...] | None = None  # the losses plotted (None: all)


def artefact_terms(
    pictures: torch.Tensor, opts: TrainOptions | ArbitraryTrainOptions
) -> dict[str, torch.Tensor]:
    """The weighted artefact losses (the options' `chroma_weight`, `grid_weight`) of a
    batch of (float32) pictures, those switched on."""
    terms = {}
    if opts.chroma_weight:
        terms["chroma"] = opts.chroma_weight * chroma_detail(pictures).mean()
    if opts.grid_weight:
        terms["grid"] = opts.grid_weight * grid_detail(pictures).mean()
    return terms


def temporal_term(pictures: torch.Tensor, again: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """How far `again`, the pictures of the photos moved by (N, 2, 3) `theta`
    (`data.random_motion`, with noise), is from `pictures` moved the same way, where both
    see the scene (Huang et al. 2017; ReCoNet): what makes strokes hold still on video."""
    carried = move(pictures.float(), theta)
    seen = move(torch.ones_like(pictures[:, :1]).float(), theta, padding="zeros") > 0.999
    return temporal_loss(again.float(), carried, seen.float())


def checkpoint_path(output: str | os.PathLike) -> Path:
    return Path(output).with_suffix(".ckpt.safetensors")


def beside(output: str | os.PathLike, suffix: str) -> Path:
    """A file or folder next to the model: beside("a.safetensors", "_loss.png")."""
    out = Path(output)
    return out.with_name(out.name.removesuffix(".safetensors") + suffix)


def lr_at(step: int, opts: TrainerOptions) -> float:
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
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    device = resolve_device(device_name)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return rank, world, device


def begin(opts: TrainerOptions, per_pixel: int, style_side: int = 0):
    """A run's start: (options with the precision this device runs, (rank, world,
    device)); refused now if a batch cannot fit in memory; the seed set."""
    run = start_run(opts.device)
    device = run[2]
    opts = replace(opts, precision=usable_precision(opts.precision, device))
    check_fits_in_memory(opts, device, per_pixel, style_side)
    torch.manual_seed(opts.seed)
    return opts, run


def check_fits_in_memory(opts: TrainerOptions, device, per_pixel: int, style_side: int = 0):
    """On a CPU, refuse a batch (and style image) whose networks cannot fit in the memory
    that is free, before anything trains."""
    if device.type == "cpu":
        side = opts.image_size
        check_fits(
            (side, side * opts.batch_size),
            per_pixel,
            "a training batch",
            BYTES_PER_VGG_PIXEL * style_side**2,
        )


def options_record(opts: TrainerOptions, **more) -> dict:
    """The options as a model file keeps them: file names, no local paths."""
    record = asdict(opts)
    for name in ("data", "output", "holdout", "weights"):
        record[name] = Path(record[name]).name if record.get(name) else None
    if "styles" in record:
        record["styles"] = [Path(s).name for s in record["styles"]]
    return {**record, **more}


def holdout_photos(folder: str | None, side: int = 256) -> list[torch.Tensor]:
    if not folder:
        return []
    paths, _ = find_images(folder)
    return [to_tensor(resize_longest(load_image(p), side)) for p in paths[:SAMPLE_PHOTOS]]


def fit(
    opts: TrainerOptions,
    trainee: Trainee,
    dataset: Dataset,
    run: tuple,
    *,
    progress: bool = True,
    callback: Callable | None = None,
) -> dict:
    """Train `trainee` on `dataset` to `opts.steps`, resuming from the checkpoint if asked;
    `run` is start_run's (rank, world, device). Rank 0 writes the model, its samples and
    its loss plot; returns the model's metadata."""
    rank, world, device = run
    optim = torch.optim.Adam(trainee.model.parameters(), lr=opts.lr)
    ckpt = checkpoint_path(opts.output)
    state = {"step": 0, "history": {}, "seconds": 0.0}
    if opts.resume and ckpt.exists():
        info = load_checkpoint(ckpt, trainee.model, optim, trainee.architecture, device)
        state = {k: info[k] for k in state}
        if state["step"] > opts.steps:
            raise OptionError(f"{ckpt} is at step {state['step']}, past steps {opts.steps}")
    elif opts.resume and rank == 0:
        print(f"impasto: no checkpoint at {ckpt}; starting from step 0")
    start, began = state["step"], time.perf_counter() - state["seconds"]

    def checkpoint() -> None:
        info = {**state, "seconds": time.perf_counter() - began, "options": trainee.record}
        save_checkpoint(ckpt, trainee.model, optim, trainee.architecture, info)

    bar = tqdm(
        total=opts.steps,
        initial=start,
        disable=rank != 0 or not progress,
        unit="step",
        dynamic_ncols=True,
    )
    try:
        _steps(
            opts,
            trainee,
            optim,
            _loader(opts, dataset, start, run),
            state,
            run,
            bar,
            checkpoint,
            callback,
        )
    except KeyboardInterrupt:
        if rank == 0 and state["step"] > start:
            checkpoint()
            bar.write(f"impasto: interrupted at step {state['step']}; checkpoint in {ckpt}")
        raise
    finally:
        bar.close()
    history = state["history"]
    training = {
        "options": trainee.record,
        "steps": state["step"],
        "seconds": round(time.perf_counter() - began, 1),
        "device": f"{world} x {device.type}" if world > 1 else device.type,
        "final_losses": {k: v[-1][1] for k, v in history.items()},
        **trainee.summary(),
    }
    meta = {"architecture": trainee.architecture, "training": training}
    if rank == 0:
        checkpoint()
        meta = save_model(opts.output, trainee.keep.state_dict(), meta)
        trainee.samples(state["step"])
        plotted = {
            k: v for k, v in history.items() if trainee.plotted is None or k in trainee.plotted
        }
        save_image(plot_curves(plotted, "training loss"), beside(opts.output, "_loss.png"))
    if world > 1:
        dist.barrier()
    return meta


def _loader(opts: TrainerOptions, dataset: Dataset, start: int, run: tuple) -> DataLoader:
    rank, world, device = run
    sampler = PositionSampler(opts.batch_size, start, rank, world)
    return DataLoader(
        dataset,
        batch_size=opts.batch_size,
        num_workers=opts.workers,
        sampler=sampler,
        persistent_workers=opts.workers > 0,
        pin_memory=device.type == "cuda",
    )


def _steps(opts, trainee, optim, loader, state, run, bar, checkpoint, callback) -> None:
    """The steps from state["step"] to opts.steps, counted in `state`."""
    rank, world, device = run
    model = trainee.model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    batches = iter(loader)
    while state["step"] < opts.steps:
        for group in optim.param_groups:
            group["lr"] = lr_at(state["step"], opts)
        terms = trainee.losses(model, next(batches))
        state["step"] = step = state["step"] + 1
        losses = optimizer_step(optim, terms, world, step, state["history"])
        bar.update()
        bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        if callback is not None:
            callback(step, losses)
        if rank == 0 and step % opts.checkpoint_every == 0 and step < opts.steps:
            checkpoint()
        if rank == 0 and opts.sample_every and step % opts.sample_every == 0:
            trainee.samples(step)


def optimizer_step(optim, terms: dict, world: int, step: int, history: dict) -> dict[str, float]:
    """Backward and Adam step; the losses, averaged over ranks, go into `history`."""
    optim.zero_grad(set_to_none=True)
    terms["total"].backward()
    optim.step()
    values = torch.stack([t.detach().float() for t in terms.values()])
    if world > 1:
        dist.all_reduce(values)
        values /= world
    losses = dict(zip(terms, values.tolist(), strict=True))
    if not math.isfinite(losses["total"]):
        raise OptionError(f"the loss became non-finite at step {step}: lower the learning rate")
    for key, value in losses.items():
        history.setdefault(key, []).append([step, value])
    return losses


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
