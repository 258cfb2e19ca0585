"""Train a one-pass painting network: a decoder that paints any painting's manner, not
only its colours (Huang & Belongie 2017, "Arbitrary style transfer in real-time with
adaptive instance normalization").

A compact encoder (frozen: the one distilled from VGG-19 for the `compact` decoders)
gives relu4_1 features of a photo and of a painting; whitening and colouring (WCT, Li et
al. 2017) give the photo's the painting's mean and covariance, which says how its
features go together (with `--method adain`, each channel takes only the painting's mean
and spread); the decoder turns them into a picture. Unlike
decoders that learn to reconstruct, this one learns with the losses of style transfer:
- content: the picture's own relu4_1 features must be the moved features it came from
  (relative squared error), so the photo's layout stays;
- style: VGG-19's statistics of the picture at the style layers must be the painting's
  (`--style-loss`, per picture), which is what puts strokes and shapes in, where
  whitening and colouring a reconstruction decoder's features leaves a recoloured photo.
The decoder starts as the `compact` relu4_1 decoder, with plain nearest upsampling in
place of unpooling at the photo's switches (which copies the photo's edges back). With
`--modulate`, its activations at shallower blocks are also scaled and shifted by what it
reads from the painting's statistics there (`nets.decoders.Modulation`): relu4_1's carry
little of the painting's colours and finest texture.

With `--teacher`, the decoder also learns to paint what a network already trained to
paint paints from the same features (distillation: pixels, and the encoder's features of
the pictures at relu1_1 … relu4_1). With a narrower `--width` it starts from the
strongest filters of the decoder it starts as (`nets.decoders.prune_decoders`), so a
faster network learns a slower one's manner in a fraction of that one's training.

Photos and paintings are crops drawn by (seed, position), as in `impasto train`; a tenth
of the paintings, chosen by file name (`held_out`), never trains: the sample sheets and
the held-out scores in the model file use them. Same loop as the other trainers: exact
resume, DDP under torchrun, atomic checkpoints, a loss plot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from ..budget import BYTES_PER_TILE_PIXEL
from ..devices import autocast
from ..errors import OptionError
from ..io.images import load_image, resize_longest, save_image, to_image, to_tensor
from ..io.sheet import contact_sheet
from ..losses import (
    STYLE_LOSSES,
    Moments,
    content_distance,
    relative_error,
    style_distances,
    style_target,
    tv_loss,
)
from ..methods.arbitrary import load_decoders
from ..methods.transforms import move_to_style
from ..nets.decoders import Decoders, level_layer, prune_decoders, style_code
from ..nets.vgg import LAYERS, VGG19, check_loss_layers
from ..nets.weights import find_weights
from ..options import check
from .data import CropDataset, find_images, held_out
from .loop import (
    SAMPLE_PHOTOS,
    Trainee,
    artefact_terms,
    begin,
    beside,
    fit,
    holdout_photos,
    options_record,
    temporal_term,
)
from .options import ArbitraryTrainOptions

LEVEL = 4  # the painting's statistics at relu4_1, as in Huang & Belongie
SAMPLE_PAINTINGS = 4  # held-out paintings in each sample sheet


def validate(opts: ArbitraryTrainOptions) -> None:
    check(opts)
    check_loss_layers("style", opts.style_layers)
    if not all(0 < b < LEVEL for b in opts.modulate):
        raise OptionError(f"modulate: the decoder's blocks are 1 ... {LEVEL - 1}")
    opts.check_output()


def split_paintings(folder: str) -> tuple[list, list]:
    """(paintings that train, the held-out tenth) under `folder`."""
    paths, _ = find_images(folder)
    train = [p for p in paths if not held_out(p)]
    if not train:
        raise OptionError(f"{folder}: every painting is in the held-out tenth; add more")
    return train, [p for p in paths if held_out(p)]


def transfer(content: torch.Tensor, style: torch.Tensor, method: str) -> torch.Tensor:
    """Each picture's (N, C, H, W) features moved to its painting's statistics by the
    stylizer's own transform (`method`: adain, each channel's mean and spread; wct, the
    whole covariance), so the decoder trains on what it will be given. Out of autocast:
    a covariance multiplied out in bf16 is not positive definite enough to whiten by."""
    with torch.autocast(content.device.type, enabled=False):
        pairs = zip(content.float(), style.float(), strict=True)
        return torch.cat([move_to_style(c[None], s[None], method) for c, s in pairs])


class Pairs(Dataset):
    """Item `position` -> (photo crop, painting crop[, moved photo crop, motion]), each
    drawn from (seed, position); the moved crop where `photos` gives one (its `motion`)."""

    def __init__(self, photos: CropDataset, paintings: CropDataset):
        self.photos, self.paintings = photos, paintings

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, position: int):
        photo, _, *moved = self.photos[position]
        return photo, self.paintings[position][0], *moved


class _Painter(nn.Module):
    """The frozen encoder and the decoder that trains: photos and paintings -> (pictures,
    the moved features they were painted from, and with `taught` the `teacher`'s pictures
    from the same features)."""

    def __init__(self, net: Decoders, teacher: Decoders | None = None):
        super().__init__()
        self.arch, self.decoders, self.encoder = net.arch, net.decoders, net.encoder
        # in a list, so that it is no submodule: it stays out of the optimizer and checkpoints
        self.teacher = [teacher] if teacher is not None else []

    def forward(self, photos: torch.Tensor, paintings: torch.Tensor, taught: bool = False):
        layer = level_layer(LEVEL)
        shallow = self.arch.shallow(LEVEL)
        size = photos.shape[-2:]
        with torch.no_grad():
            switches = [] if self.arch.unpool else None
            content = self.encoder(photos, [layer], switches)[layer].float()
            theirs = self.encoder(paintings, [*shallow.values(), layer])
            target = transfer(content, theirs[layer].float(), self.arch.method)
            style = {b: _code(theirs[name].float(), b) for b, name in shallow.items()}
            teacher = None
            if taught:
                decoder = self.teacher[0].decoders[str(LEVEL)]
                teacher = decoder(target, size, switches, style).clamp(0, 1)
        return self.decoders[str(LEVEL)](target, size, switches, style), target, teacher


def _code(features: torch.Tensor, block: int, eps: float = 1e-5) -> torch.Tensor:
    """Each painting's `style_code` at relu{block}_1 from its (N, C, H, W) features (the
    spread over the picture's positions, as the stylizer's statistics give it)."""
    var, mean = torch.var_mean(features, dim=(2, 3), correction=0)
    return style_code(mean, var.add(eps).sqrt(), block)


def painter_network(
    encoder: str,
    unpool: bool = False,
    modulated: tuple[int, ...] = (),
    method: str = "wct",
    width: float | None = None,
) -> Decoders:
    """A relu4_1 decoder with the compact encoder of `encoder` (frozen), starting as its
    relu4_1 decoder, for features moved by `method`; it upsamples by nearest neighbours,
    or, with `unpool`, at the photo's pooling switches. `modulated` blocks also take the
    painting's statistics there; what `encoder`'s decoder does not have of them starts at
    nothing. At another `width` it starts from that decoder's strongest filters."""
    source, _ = load_decoders(encoder)
    if source.encoder is None or LEVEL not in source.arch.levels:
        raise OptionError(f"{encoder}: decoders with a compact encoder and relu4_1 are needed")
    arch = replace(
        source.arch,
        levels=(LEVEL,),
        unpool=unpool,
        method=method,
        paints=True,
        modulated=tuple(sorted(modulated)),
    )
    net = Decoders(arch)
    net.encoder.load_state_dict(source.encoder.state_dict())
    net.encoder.requires_grad_(False)
    _, unexpected = net.decoders[str(LEVEL)].load_state_dict(
        source.decoders[str(LEVEL)].state_dict(), strict=False
    )  # missing: only the modulations it did not have
    if unexpected:
        have = ",".join(map(str, source.arch.modulated))
        raise OptionError(f"{encoder}: its decoder also modulates blocks {have} (--modulate)")
    if width is not None and width != arch.width:
        net = prune_decoders(net, width)
        net.encoder.requires_grad_(False)
    return net


def teacher_network(spec: str, student: Decoders) -> Decoders:
    """The network trained to paint (`spec`) whose pictures `student` learns to paint from
    the same features: it must take them from the same encoder, moved the same way."""
    teacher, _ = load_decoders(spec)
    arch, ours = teacher.arch, student.arch
    if not arch.paints or LEVEL not in arch.levels or teacher.encoder is None:
        raise OptionError(f"{spec}: not a network trained to paint (train-arbitrary)")
    if arch.method != ours.method or arch.unpool != ours.unpool:
        unpool = " --unpool" if arch.unpool else ""
        raise OptionError(f"{spec} paints from other features: give --method {arch.method}{unpool}")
    if not set(arch.modulated) <= set(ours.modulated):
        raise OptionError(f"{spec} modulates blocks the decoder does not: give --modulate too")
    mine, theirs = student.encoder.state_dict(), teacher.encoder.state_dict()
    if mine.keys() != theirs.keys() or not all(torch.equal(mine[k], theirs[k]) for k in mine):
        raise OptionError(f"{spec} encodes with another encoder than --encoder's")
    return teacher


def train_arbitrary(
    opts: ArbitraryTrainOptions,
    progress: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict:
    """Run (or resume) training; returns the network's metadata. Ctrl-C checkpoints first."""
    validate(opts)
    # the encoder, decoder and VGG-19, forward and backward, for every photo and painting
    opts, run = begin(opts, 3 * BYTES_PER_TILE_PIXEL, opts.image_size)
    rank, _, device = run
    photos, skipped = find_images(opts.data)
    paintings, kept_out = split_paintings(opts.paintings)
    vgg = VGG19.from_weights(find_weights(opts.weights)).to(device)
    net = painter_network(
        opts.encoder, opts.unpool, tuple(opts.modulate), opts.method, opts.width
    ).to(device)
    teacher = teacher_network(opts.teacher, net).to(device) if opts.teacher else None
    net.encoder.eval()
    layers = sorted(opts.style_layers, key=LAYERS.index)
    shown = [holdout_photos(opts.holdout), _sample_paintings(kept_out)] if rank == 0 else [[], []]

    def losses(model, batch) -> dict[str, torch.Tensor]:
        photo, painting, *moved = (t.to(device, non_blocking=True) for t in batch)
        with autocast(device, opts.precision):
            return _losses(model, net, vgg, photo, painting, layers, opts, moved)

    dataset = Pairs(
        CropDataset(photos, opts.image_size, 1, opts.seed, motion=opts.temporal_weight > 0),
        CropDataset(paintings, opts.image_size, 1, opts.seed + 1),
    )
    trainee = Trainee(
        model=_Painter(net, teacher).to(device),
        keep=net,
        architecture=net.arch.to_dict(),
        losses=losses,
        samples=lambda step: _samples(net, *shown, opts, step, device),
        record=options_record(opts, paintings=Path(opts.paintings).name),
        summary=lambda: {
            "images": len(photos),
            "skipped_images": skipped,
            "paintings": len(paintings),
            "held_out_paintings": len(kept_out),
            "holdout_scores": _scores(net, vgg, *shown, device) if all(shown) else {},
        },
        plotted=("content", "style", "pixel", "feature", "total"),
    )
    return fit(opts, trainee, dataset, run, progress=progress, callback=callback)


def _losses(model, net, vgg, photos, paintings, layers, opts, moved=()) -> dict[str, torch.Tensor]:
    """Content (relu4_1 against the moved features) and style (each picture against its
    painting at the style layers); with a teacher, its pictures' pixels and encoded
    features; with `moved` (the photos moved a little, and the motion), the temporal
    term: the moved photos' pictures against the pictures moved."""
    layer = level_layer(LEVEL)
    pictures, target, taught = model(photos, paintings, opts.teacher is not None)
    pictures = pictures.float()
    names = [level_layer(b) for b in range(1, LEVEL + 1)] if taught is not None else [layer]
    again = {k: v.float() for k, v in net.encoder(pictures, names).items()}
    terms = {"content": opts.content_weight * relative_error(again[layer], target)}
    if taught is not None:
        taught = taught.float()
        with torch.no_grad():
            goal = {k: v.float() for k, v in net.encoder(taught, names).items()}
        terms["pixel"] = opts.pixel_weight * F.mse_loss(pictures, taught)
        features = sum(relative_error(again[k], goal[k]) for k in names) / len(names)
        terms["feature"] = opts.feature_weight * features
    if opts.style_weight:  # VGG-19, forward and backward: most of a step's time
        with torch.no_grad():
            theirs = vgg(paintings, layers)
        ours = vgg(pictures, layers)
        compare = STYLE_LOSSES[opts.style_loss]
        style = 0.0
        for name in layers:
            for i in range(len(photos)):  # each picture against its own painting
                goal = style_target(opts.style_loss, Moments.of(theirs[name][i : i + 1].float()))
                style = style + opts.style_layers[name] * compare(
                    ours[name][i : i + 1].float(), goal
                )
        terms["style"] = opts.style_weight * style / len(photos)
    if opts.tv_weight:
        terms["tv"] = opts.tv_weight * tv_loss(pictures)
    terms.update(artefact_terms(pictures, opts))
    if opts.temporal_weight:
        shifted = model(moved[0], paintings)[0]  # the moved photos' pictures
        terms["temporal"] = opts.temporal_weight * temporal_term(pictures, shifted, moved[1])
    terms["total"] = sum(terms.values())
    return terms


def _sample_paintings(paths: list, side: int = 256) -> list[torch.Tensor]:
    step = max(1, len(paths) // SAMPLE_PAINTINGS)  # spread over the folder's sources
    chosen = paths[::step][:SAMPLE_PAINTINGS]
    return [to_tensor(resize_longest(load_image(p), side)) for p in chosen]


@torch.no_grad()
def paint(net: Decoders, photo: torch.Tensor, painting: torch.Tensor) -> torch.Tensor:
    """One picture, as the decoder paints it at full strength, in [0, 1]."""
    return _Painter(net)(photo, painting)[0].clamp(0, 1).float()


def _samples(net, photos, paintings, opts, step, device) -> None:
    if not photos or not paintings:
        return
    net.eval()
    rows = [[Image.new("RGB", (8, 8), "white")] + [to_image(p) for p in paintings]]
    for photo in photos[:SAMPLE_PHOTOS]:
        outs = [paint(net, photo.to(device), s.to(device)) for s in paintings]
        rows.append([to_image(photo)] + [to_image(o.cpu()) for o in outs])
    net.train()
    net.encoder.eval()
    folder = beside(opts.output, "_samples")
    folder.mkdir(exist_ok=True)
    labels = ["photo"] + [f"painting {i + 1}" for i in range(len(paintings))]
    save_image(contact_sheet(rows, labels, cell=192), folder / f"step_{step:06d}.png")


def _scores(net, vgg, photos, paintings, device) -> dict[str, float]:
    """Mean content and style distances (the project's metrics) over the held-out photos
    x held-out paintings of the sample sheet."""
    net.eval()
    content, style = [], []
    for photo in photos:
        for painting in paintings:
            x, s = photo.to(device), painting.to(device)
            out = paint(net, x, s)
            sized = F.interpolate(s, scale_factor=max(out.shape[-2:]) / max(s.shape[-2:]))
            content.append(content_distance(vgg, out, x))
            style.append(style_distances(vgg, out, sized)["style_distance"])
    return {
        "content_distance": round(sum(content) / len(content), 4),
        "style_distance": round(sum(style) / len(style), 4),
    }
