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
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..budget import BYTES_PER_TILE_PIXEL
from ..devices import autocast
from ..errors import OptionError
from ..io.images import load_image, resize_longest, save_image, to_image, to_tensor
from ..io.sheet import contact_sheet
from ..losses import content_loss, gram_matrix, tv_loss
from ..nets.transformer import Architecture, TransformerNet
from ..nets.vgg import LAYERS, VGG19, check_loss_layers
from ..nets.weights import find_weights
from ..options import check
from .data import CropDataset, find_images
from .loop import (
    Trainee,
    artefact_terms,
    begin,
    beside,
    fit,
    holdout_photos,
    options_record,
    temporal_term,
)
from .options import TrainOptions

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


def train(
    opts: TrainOptions,
    progress: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict:
    """Run (or resume) training; returns the model's metadata. Ctrl-C checkpoints first."""
    validate(opts)
    # the network's activations and VGG-19's, forward and backward, for every crop
    opts, run = begin(opts, 2 * BYTES_PER_TILE_PIXEL, opts.style_size)
    rank, world, device = run
    channels_last = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    names = opts.names
    styles = [load_image(s) for s in opts.styles]
    paths, skipped = find_images(opts.data)
    arch = Architecture(styles=tuple(names), width=opts.width, blocks=opts.blocks)
    net = TransformerNet(arch)
    base = _start_from(net, opts.finetune) if opts.finetune else None
    net = net.to(device, memory_format=channels_last)
    vgg = VGG19.from_weights(find_weights(opts.weights)).to(device, memory_format=channels_last)
    layers = sorted({*opts.content_layers, *opts.style_layers}, key=LAYERS.index)
    grams = style_grams(vgg, styles, opts, device)
    targets = None
    if opts.distill:
        paths = paths[: opts.distill_images]
        targets = render_targets(opts, paths, styles, names, device, rank, world, progress)
    dataset = CropDataset(
        paths,
        opts.image_size,
        len(names),
        opts.seed,
        targets=targets,
        motion=opts.temporal_weight > 0,
    )
    holdout = holdout_photos(opts.holdout) if rank == 0 else []  # rank 0 writes samples

    def losses(model, batch) -> dict[str, torch.Tensor]:
        photos = batch[0].to(device, memory_format=channels_last, non_blocking=True)
        which = batch[1].to(device)
        target = batch[2].to(device, non_blocking=True) if opts.distill else None
        styles = F.one_hot(which, len(names)).float()
        with autocast(device, opts.precision):
            out = model(photos, styles)
            terms = _losses(vgg, layers, out, photos, target, which, grams, opts)
            if opts.temporal_weight:
                moved = batch[-2].to(device, memory_format=channels_last, non_blocking=True)
                theta = batch[-1].to(device)
                again = model(moved, styles)
                terms["temporal"] = opts.temporal_weight * temporal_term(out, again, theta)
                terms["total"] = terms["total"] + terms["temporal"]
        return terms

    trainee = Trainee(
        model=net,
        keep=net,
        architecture=arch.to_dict(),
        losses=losses,
        samples=lambda step: _write_samples(net, holdout, names, opts, step, device),
        record=options_record(opts, style_names=names),
        summary=lambda: {
            "images": len(paths),
            "skipped_images": skipped,
            **({"finetuned_from": base} if base else {}),
        },
    )
    return fit(opts, trainee, dataset, run, progress=progress, callback=callback)


def _start_from(net: TransformerNet, model: str) -> dict:
    """Fine-tuning: the weights of a trained network of the same architecture. Returns
    what its file says of it (its hash and training), for the new file's record."""
    from ..methods.feedforward import load_transformer

    trained, meta = load_transformer(model)
    if trained.arch != net.arch:
        raise OptionError(
            f"--finetune {model}: its network ({trained.arch.to_dict()}) is not the one "
            f"these options make ({net.arch.to_dict()}): give its styles, width and blocks"
        )
    net.load_state_dict(trained.state_dict())
    return {key: meta[key] for key in ("sha256", "training", "created") if key in meta}


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
    pictures = out.float()  # the pixel losses in float32, also from bf16
    if target is None:
        terms["style"] = opts.style_weight * style
    else:
        terms["pixel"] = opts.pixel_weight * F.mse_loss(pictures, target) * 255.0**2
    terms["tv"] = opts.tv_weight * tv_loss(pictures)
    terms.update(artefact_terms(pictures, opts))
    terms["total"] = sum(terms.values())
    return terms


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
    folder = beside(opts.output, "_samples")
    folder.mkdir(exist_ok=True)
    sheet = contact_sheet(rows, ["photo", *shown], cell=192)
    save_image(sheet, folder / f"step_{step:06d}.png")


def render_targets(opts, paths, styles, names, device, rank, world, progress) -> list[list[Path]]:
    """Optimization-method outputs for each (style, photo), cached; ranks share the work."""
    from ..methods.optimize import Stylizer
    from ..methods.schedule import scale_ladder
    from ..options import OptimizeOptions

    folder = beside(opts.output, "_targets")
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
