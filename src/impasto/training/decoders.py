"""Train the decoders of one-pass arbitrary style: reconstruction only, no style images.

Each decoder learns to turn relu{L}_1 features of a photo back into the photo: a pixel
loss plus a feature loss (the reconstruction's features at the same layer), as in Li et
al. 2017. All levels train together: one encoder pass per batch feeds every decoder.
With `encoder_width` < 1 a compact encoder trains with them: a narrow VGG that starts as
VGG-19's strongest filters (`prune`) and learns, besides serving its decoders, to give
features that a 1×1 convolution maps onto VGG-19's (the distillation loss of Wang et
al. 2020), so that feature statistics, and with them style, keep VGG-19's meaning.
Same machinery as `impasto train`: deterministic sampling, exact resume, DDP under
torchrun, atomic checkpoints, samples of held-out photos, a loss plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..budget import BYTES_PER_TILE_PIXEL
from ..devices import autocast
from ..errors import OptionError
from ..io.images import save_image, to_image
from ..io.sheet import contact_sheet
from ..losses import relative_error
from ..nets.decoders import LEVELS, VGG_CHANNELS, DecoderArchitecture, Decoders, level_layer
from ..nets.vgg import VGG19, prune
from ..nets.weights import find_weights
from ..options import check
from .data import CropDataset, find_images
from .loop import (
    SAMPLE_PHOTOS,
    Trainee,
    begin,
    beside,
    fit,
    holdout_photos,
    options_record,
)
from .options import DecoderOptions


def validate(opts: DecoderOptions) -> None:
    check(opts)
    if not opts.levels or not set(opts.levels) <= set(LEVELS):
        raise OptionError(f"levels must be among {', '.join(map(str, LEVELS))}")
    opts.check_output()


class _Trainee(nn.Module):
    """What trains: the decoders, and the compact encoder with 1×1 maps of its features
    onto VGG-19's if there is one. One module, so that DDP sees every parameter used in
    forward. Its state is the decoders' own plus `embed.*` (the maps, which serve only
    the distillation loss), so a checkpoint loads as decoders."""

    def __init__(self, net: Decoders):
        super().__init__()
        self.arch, self.decoders, self.encoder = net.arch, net.decoders, net.encoder
        self.embed = nn.ModuleDict()
        if net.encoder is not None:
            for lv in net.arch.levels:
                cin = net.encoder.convs[f"conv{lv}_1"].out_channels
                self.embed[level_layer(lv)] = nn.Conv2d(cin, VGG_CHANNELS[lv - 1], 1)

    def forward(self, photos: torch.Tensor, teacher: dict, switches: list | None):
        """-> ({level: reconstruction}, {layer: features mapped onto VGG-19's});
        `teacher`: VGG-19's features of the photos (with their `switches`)."""
        feats, mapped = teacher, {}
        if self.encoder is not None:
            switches = []
            feats = self.encoder(photos, list(teacher), switches)
            mapped = {k: self.embed[k](v).float() for k, v in feats.items()}
        size = photos.shape[-2:]
        outs = {
            lv: self.decoders[str(lv)](feats[level_layer(lv)], size, switches)
            for lv in self.arch.levels
        }
        return outs, mapped


def train_decoders(
    opts: DecoderOptions,
    progress: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict:
    """Run (or resume) training; returns the decoders' metadata. Ctrl-C checkpoints first."""
    validate(opts)
    # VGG-19 and a decoder for each level, forward and backward, for every crop
    opts, run = begin(opts, (1 + len(opts.levels)) * BYTES_PER_TILE_PIXEL)
    rank, _, device = run
    paths, skipped = find_images(opts.data)
    vgg = VGG19.from_weights(find_weights(opts.weights)).to(device)
    arch = DecoderArchitecture(
        levels=tuple(sorted(opts.levels)),
        width=opts.width,
        unpool=opts.unpool,
        encoder_width=opts.encoder_width,
        encoder_convention=vgg.convention,
    )
    net = Decoders(arch).to(device)
    if net.encoder is not None:
        net.encoder = prune(vgg, arch.encoder_width, f"conv{max(arch.levels)}_1")
        net.encoder.requires_grad_(True)
    holdout = holdout_photos(opts.holdout) if rank == 0 else []  # rank 0 writes samples

    def losses(model, batch) -> dict[str, torch.Tensor]:
        photos = batch[0].to(device, non_blocking=True)
        with autocast(device, opts.precision):
            return _losses(model, net, vgg, photos, opts)

    trainee = Trainee(
        model=_Trainee(net).to(device),
        keep=net,
        architecture=arch.to_dict(),
        losses=losses,
        samples=lambda step: _samples(net, vgg, holdout, opts, step, device),
        record=options_record(opts, levels=list(opts.levels)),
        summary=lambda: {
            "images": len(paths),
            "skipped_images": skipped,
            "holdout_psnr": _psnr(net, vgg, holdout, device) if holdout else {},
        },
        plotted=("total",),
    )
    dataset = CropDataset(paths, opts.image_size, 1, opts.seed)
    return fit(opts, trainee, dataset, run, progress=progress, callback=callback)


def _losses(model, net, vgg, photos, opts) -> dict[str, torch.Tensor]:
    """Each level's pixel and feature errors (and the compact encoder's distillation
    error): the decoders aim for the photo and for VGG-19's features of it."""
    layers = [level_layer(lv) for lv in net.arch.levels]
    with torch.no_grad():
        switches = net.switches() if net.encoder is None else None
        target = {k: v.float() for k, v in vgg(photos, layers, switches).items()}
    outs, mapped = model(photos, target, switches)
    terms = {}
    for level, layer in zip(net.arch.levels, layers, strict=True):
        out = outs[level].float()
        again = vgg(out, [layer])[layer].float()
        terms[f"pixel{level}"] = opts.pixel_weight * F.mse_loss(out, photos)
        terms[f"feature{level}"] = opts.feature_weight * relative_error(again, target[layer])
        if mapped:
            terms[f"embed{level}"] = opts.embed_weight * relative_error(
                mapped[layer], target[layer]
            )
    terms["total"] = sum(terms.values())
    return terms


@torch.no_grad()
def _reconstructions(net, vgg, photo, device) -> list[torch.Tensor]:
    net.eval()
    photo = photo.to(device)
    layers = [level_layer(lv) for lv in net.arch.levels]
    switches = net.switches()
    feats = (net.encoder or vgg)(photo, layers, switches)
    outs = [
        net[lv](feats[layer], photo.shape[-2:], switches).clamp(0, 1).float()
        for lv, layer in zip(net.arch.levels, layers, strict=True)
    ]
    net.train()
    return outs


def _psnr(net, vgg, photos, device) -> dict[str, float]:
    """Mean PSNR (dB) of each decoder's reconstructions of the held-out photos."""
    totals = {level_layer(lv): 0.0 for lv in net.arch.levels}
    for photo in photos:
        for layer, out in zip(totals, _reconstructions(net, vgg, photo, device), strict=True):
            mse = F.mse_loss(out.cpu(), photo).item()
            totals[layer] += 10 * math.log10(1 / max(mse, 1e-10)) / len(photos)
    return {k: round(v, 2) for k, v in totals.items()}


def _samples(net, vgg, photos, opts, step, device) -> None:
    if not photos:
        return
    rows = [
        [to_image(p)] + [to_image(o) for o in _reconstructions(net, vgg, p, device)]
        for p in photos[:SAMPLE_PHOTOS]
    ]
    folder = beside(opts.output, "_samples")
    folder.mkdir(exist_ok=True)
    labels = ["photo"] + [level_layer(lv) for lv in net.arch.levels]
    save_image(contact_sheet(rows, labels, cell=192), folder / f"step_{step:06d}.png")
