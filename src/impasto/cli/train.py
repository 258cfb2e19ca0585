"""`train`, `train-decoders` and `train-arbitrary`: their flags are their options'
declarations (impasto.training.options), so they share every name they have in common."""

from __future__ import annotations

import argparse

from ..options import Output
from ..training.options import ArbitraryTrainOptions, DecoderOptions, TrainOptions
from .args import add_options, chosen, given
from .files import announce

OPTIONS = {
    "train": TrainOptions,
    "train-decoders": DecoderOptions,
    "train-arbitrary": ArbitraryTrainOptions,
}


def configure(command: str, p: argparse.ArgumentParser) -> None:
    add_options(p, OPTIONS[command])
    add_options(p, Output, only=("json", "quiet"))


def run(args: argparse.Namespace) -> int:
    from .. import runtime

    options = OPTIONS[args.command](**given(args, OPTIONS[args.command]))
    progress = not chosen(args, Output).quiet
    if args.command == "train":
        from ..training.train import train

        meta = train(options, progress=progress)
    elif args.command == "train-decoders":
        from ..training.decoders import train_decoders

        meta = train_decoders(options, progress=progress)
    else:
        from ..training.arbitrary import train_arbitrary

        meta = train_arbitrary(options, progress=progress)
    if runtime.rank() == 0:
        done = meta["training"]
        line = f"wrote {args.output}: {done['steps']} steps in {done['seconds']:.0f} s"
        if "images" in done:
            line += f", {done['images']} images, {done['skipped_images']} unreadable skipped"
        psnr = ", ".join(f"{k} {v} dB" for k, v in done.get("holdout_psnr", {}).items())
        scores = ", ".join(f"{k} {v}" for k, v in done.get("holdout_scores", {}).items())
        announce(
            args,
            line
            + (f"; held-out PSNR {psnr}" if psnr else "")
            + (f"; held-out {scores}" if scores else ""),
            output=args.output,
            **{k: v for k, v in done.items() if k != "options"},
        )
    return 0
