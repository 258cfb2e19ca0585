"""The options of the trainers, declared once (see impasto.options): `impasto train`,
`train-decoders` and `train-arbitrary` build their flags from these classes, `train(...)`,
`train_decoders(...)` and `train_arbitrary(...)` take them. Shared names mean the same in
each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError
from ..options import (
    DEFAULT_STYLE_LAYERS,
    ONE_PASS_METHODS,
    PRECISIONS,
    SEED_HIGH,
    STYLE_LOSSES,
    layers,
    levels,
    opt,
)

DECODER_LEVELS = (1, 2, 3, 4, 5)


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


@dataclass
class TrainerOptions:
    """What every training run takes: data, schedule, checkpoints, samples, hardware."""

    data: str = opt(None, "training photos (searched recursively)", metavar="DIR", required=True)
    output: str = opt(
        None, "the model file to write", metavar="MODEL.safetensors", aliases=("-o",), required=True
    )
    steps: int = opt(2000, "optimizer steps", low=1, high=10**8)
    batch_size: int = opt(4, "photos per step", low=1, high=4096)
    image_size: int = opt(256, "side of the square training crops, px", low=32, high=4096)
    lr: float = opt(
        1e-3,
        "Adam's peak learning rate (cosine decay to a tenth, after a short warm-up)",
        above=0.0,
        high=1.0,
    )
    checkpoint_every: int = opt(100, "write a resumable checkpoint every N steps", low=1)
    sample_every: int = opt(
        200, "stylize the --holdout photos every N steps (0: at the end)", low=0, metavar="N"
    )
    holdout: str | None = opt(
        None, "photos for the sample sheets (and held-out scores)", metavar="DIR"
    )
    resume: bool = opt(False, "continue from the output's checkpoint")
    seed: int = opt(0, "seed of the crops and the network's start", low=0, high=SEED_HIGH)
    device: str = opt("auto", "where to train: auto, cpu, cuda, cuda:N or mps")
    precision: str = opt(
        "fp32",
        "bf16: autocast for the networks (GPUs, CPUs with AVX-512 "
        "or AMX); auto: bf16 where it is fast",
        choices=PRECISIONS,
    )
    workers: int = opt(2, "data-loading processes", low=0, high=256)
    weights: str | None = opt(None, "VGG-19 weights", metavar="PATH")

    def check_output(self) -> None:
        if not str(self.output).endswith(".safetensors"):
            raise OptionError(f"{self.output}: model files end in .safetensors")
        if not Path(self.output).resolve().parent.is_dir():
            raise OptionError(f"{self.output}: folder does not exist")


def chroma_weight():
    """The option of `losses.chroma_detail`'s weight, for the trainers whose networks
    paint; off by default, as each trainer's losses have their own scale (20000, with
    grid_weight 10000, fine-tuned the built-in `styles`; docs/models.md)."""
    return opt(
        0.0,
        "weight of the colour's finest detail (finer than an 8-px period): keeps chromatic "
        "fringes and hatching out of the pictures (0: off)",
        low=0.0,
    )


def grid_weight():
    """The option of `losses.grid_detail`'s weight (see chroma_weight)."""
    return opt(
        0.0,
        "weight of what repeats every 8 px, where the network upsamples: keeps a faint "
        "grid out of flat areas (0: off)",
        low=0.0,
    )


def temporal_weight():
    """The option of the temporal loss's weight (`loop.temporal_term`), for the trainers
    whose networks paint video; off by default, as each trainer's losses have their own
    scale (10000 for `impasto train`, 2e-4 for `impasto train-arbitrary`;
    docs/models.md)."""
    return opt(
        0.0,
        "train for video: how strongly a photo moved a little (a small random shift, turn and "
        "zoom, plus noise) must give the picture moved the same way (0: off)",
        low=0.0,
    )


@dataclass
class TrainOptions(TrainerOptions):
    """A feed-forward network for one or more styles (Johnson et al.; several styles by
    conditional instance normalization, Dumoulin et al.)."""

    styles: Sequence[str] = opt(
        (),
        "style images; several make a multi-style network",
        metavar="IMAGE",
        flag="--style",
        repeat=True,
    )
    style_names: Sequence[str] | None = opt(
        None, "names of the styles (default: the files' names)", parse=_names, metavar="A,B,..."
    )
    style_size: int = opt(
        512,
        "longest side of the style images when their statistics are taken, px",
        low=16,
        high=8192,
    )
    content_weight: float = opt(150.0, "content weight", low=0.0)
    style_weight: float = opt(30.0, "style weight", low=0.0)
    tv_weight: float = opt(10.0, "total-variation weight", low=0.0)
    chroma_weight: float = chroma_weight()
    grid_weight: float = grid_weight()
    content_layers: dict[str, float] = opt(
        {"relu3_1": 1.0}, "content layers and weights", parse=layers, low=0.0, metavar="L[:W],..."
    )
    style_layers: dict[str, float] = opt(
        DEFAULT_STYLE_LAYERS, "style layers and weights", parse=layers, low=0.0, metavar="L[:W],..."
    )
    width: int = opt(
        8,
        "channels of the network's first layer (16 or 32: more capacity, at 4x or 16x the compute)",
        low=1,
        high=256,
    )
    blocks: int = opt(5, "residual blocks", low=0, high=64)
    temporal_weight: float = temporal_weight()
    finetune: str | None = opt(
        None,
        "start from this network's weights: a built-in name or a model file with the same "
        "styles, width and blocks",
        metavar="MODEL",
    )
    distill: bool = opt(False, "learn to imitate the optimization method's pictures")
    distill_images: int = opt(64, "photos the optimization method paints", low=1)
    distill_size: int = opt(384, "their size, px", low=32, high=4096)
    distill_iterations: int = opt(100, "its iterations per scale", low=1, high=100_000)
    pixel_weight: float = opt(1.0, "distillation: pixel loss, in 0-255 units squared", low=0.0)

    @property
    def names(self) -> list[str]:
        names = list(self.style_names or [Path(s).stem for s in self.styles])
        if len(names) != len(self.styles):
            raise OptionError(f"{len(names)} style names for {len(self.styles)} styles")
        if len(set(names)) != len(names):
            raise OptionError(f"style names must differ: {', '.join(names)}")
        return names


@dataclass
class DecoderOptions(TrainerOptions):
    """Decoders that invert the encoder at each level, for one-pass arbitrary style."""

    levels: Sequence[int] = opt(
        list(DECODER_LEVELS), "levels to train a decoder for", parse=levels, metavar="1,2,..."
    )
    width: float = opt(0.5, "decoder channel multiplier", above=0.0, high=8.0)
    unpool: bool = opt(False, "upsample at VGG's pooling switches (PhotoWCT): much sharper")
    encoder_width: float = opt(
        1.0,
        "below 1: also distil a compact encoder of this width "
        "from VGG-19 (0.5: ~4x less arithmetic)",
        above=0.0,
        high=1.0,
    )
    embed_weight: float = opt(1.0, "weight of the compact encoder's distillation loss", low=0.0)
    pixel_weight: float = opt(100.0, "weight of the pixels' mean squared error", low=0.0)
    feature_weight: float = opt(1.0, "weight of the features' relative squared error", low=0.0)


@dataclass
class ArbitraryTrainOptions(TrainerOptions):
    """A one-pass painting network for any painting: a compact encoder, the painting's
    feature statistics at relu4_1 (WCT or AdaIN), and a decoder trained with content and
    style losses to paint from them (Huang & Belongie 2017)."""

    paintings: str = opt(
        None,
        "training paintings (searched recursively; a tenth, chosen by file name, is held out)",
        metavar="DIR",
        required=True,
    )
    encoder: str = opt(
        "compact",
        "decoders with a compact encoder (built-in name or file): it encodes, and their "
        "relu4_1 decoder is where the painting decoder starts",
        metavar="DECODERS",
    )
    unpool: bool = opt(
        False, "upsample at the photo's pooling switches: sharper, closer to the photo"
    )
    method: str = opt(
        "wct",
        "how the photo's relu4_1 features take the painting's statistics: adain, each "
        "channel's mean and spread (Huang & Belongie); wct, their whole covariance (Li et al.)",
        choices=ONE_PASS_METHODS,
    )
    width: float | None = opt(
        None,
        "the decoder's channel multiplier (default: the --encoder's decoder's); another "
        "width starts from that decoder's strongest filters, and a narrower one paints faster",
        parse=float,
        above=0.0,
        high=8.0,
    )
    teacher: str | None = opt(
        None,
        "a network trained to paint (built-in name or file, with the same encoder) whose "
        "pictures the decoder learns to paint from the same features: distillation, "
        "e.g. into a narrower --width",
        metavar="MODEL",
    )
    pixel_weight: float = opt(
        100.0, "with --teacher: weight of the pixels' mean squared error to its pictures", low=0.0
    )
    feature_weight: float = opt(
        1.0,
        "with --teacher: weight of the relative squared error of the encoder's relu1_1 ... "
        "relu4_1 features to its pictures'",
        low=0.0,
    )
    modulate: list[int] = opt(
        [],
        "decoder blocks that also take the painting's per-channel statistics at relu{B}_1 "
        "(1, 2, 3): its finest colour and texture, which relu4_1 alone does not carry",
        parse=levels,
        metavar="1,2,...",
    )
    content_weight: float = opt(1.0, "content weight", low=0.0)
    style_weight: float = opt(2.0, "style weight", low=0.0)
    style_layers: dict[str, float] = opt(
        DEFAULT_STYLE_LAYERS, "style layers and weights", parse=layers, low=0.0, metavar="L[:W],..."
    )
    style_loss: str = opt("moments", "how style statistics are compared", choices=STYLE_LOSSES)
    tv_weight: float = opt(0.0, "total-variation weight", low=0.0)
    chroma_weight: float = chroma_weight()
    grid_weight: float = grid_weight()
    temporal_weight: float = temporal_weight()


__all__ = [
    "ArbitraryTrainOptions",
    "DecoderOptions",
    "TrainOptions",
    "TrainerOptions",
]
