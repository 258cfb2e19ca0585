"""`train` and `train-decoders`: their flags are their options' declarations
(impasto.training.options), so the two share every name they have in common."""

from __future__ import annotations

import argparse

from ..options import Output
from ..training.options import DecoderOptions, TrainOptions
from .args import add_options, chosen, given
from .files import announce

OPTIONS = {"train": TrainOptions, "train-decoders": DecoderOptions}


def configure(command: str, p: argparse.ArgumentParser) -> None:
    add_options(p, OPTIONS[command])
    add_options(p, Output, only=("json", "quiet"))


def run(args: argparse.Namespace) -> int:
    from .. import runtime

    options = OPTIONS[args.command](**given(args, OPTIONS[args.command]))
    if args.command == "train":
        from ..training.train import train

        meta = train(options, progress=not chosen(args, Output).quiet)
    else:
        from ..training.decoders import train_decoders

        meta = train_decoders(options, progress=not chosen(args, Output).quiet)
    if runtime.rank() == 0:
        done = meta["training"]
        line = f"wrote {args.output}: {done['steps']} steps in {done['seconds']:.0f} s"
        if "images" in done:
            line += f", {done['images']} images, {done['skipped_images']} unreadable skipped"
        psnr = ", ".join(f"{k} {v} dB" for k, v in done.get("holdout_psnr", {}).items())
        announce(
            args,
            line + (f"; held-out PSNR {psnr}" if psnr else ""),
            output=args.output,
            **{k: v for k, v in done.items() if k != "options"},
        )
    return 0
