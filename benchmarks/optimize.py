"""Optimization speed and memory: impasto vs a textbook implementation vs pastiche, in one run.

    python benchmarks/optimize.py [--sizes 256,512] [--iterations 300] [--device cpu]

For each size: the textbook baseline (benchmarks/textbook.py: one scale, init = content,
torch L-BFGS, full VGG-19) runs --iterations iterations; impasto (`--preset classic`, the
same loss: coarse-to-fine, init = content, its own L-BFGS, only the layers needed) runs
until its pixels at that size score at or below the baseline's last loss, scored by the
baseline's own loss function, in fp32 and in bf16 (where the CPU has bf16 kernels), and
again at that size alone with 100 curvature pairs, the fastest way there; impasto's default
preset (another loss: time per iteration and memory only) runs as `impasto stylize` would;
pastiche's CLI runs --pastiche-iterations (CPU only). impasto's workers keep freed memory
as the `impasto` command does (`runtime.retain_freed_memory`); on a CPU the textbook runs a
second time with that too, since it alone changes its time. Each runs in its own process so
peak memory (max RSS, or CUDA max allocated) is its own. Prints a table of ratios;
--markdown FILE also writes it for docs/.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
CONTENT = DATA / "content" / "tubingen.jpg"
STYLE = DATA / "styles" / "starry_night.jpg"


def peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def conv_gflop(height: int, width: int, forward_to: str, backward_from: str = "relu5_1") -> float:
    """FLOPs of the convs of one iteration: forward to one layer, input gradients back
    from the deepest loss layer (the frozen weights need no gradient)."""
    from impasto.nets.vgg import LAYERS
    from impasto.nets.weights import CONV_LAYERS

    flop, h, w = 0.0, height, width
    for name in LAYERS[: LAYERS.index(forward_to) + 1]:
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        elif name.startswith("conv"):
            cin, cout = next((i, o) for n, i, o in CONV_LAYERS if n == name)
            passes = 2 if LAYERS.index(name) <= LAYERS.index(backward_from) else 1
            flop += passes * 2 * cin * cout * 9 * h * w
    return flop / 1e9


def matmul_gflops(device: str) -> float:
    import torch

    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    for _ in range(3):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    n, start = 10, time.perf_counter()
    for _ in range(n):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def worker_textbook(args) -> dict:
    import textbook

    if args.retain_freed_memory:
        from impasto.runtime import retain_freed_memory

        retain_freed_memory()

    trace, image = textbook.run(CONTENT, STYLE, args.size, args.iterations, args.device)
    h, w = image.shape[-2:]
    per_iter = (trace[-1][0] - trace[0][0]) / max(1, len(trace) - 1)
    return {
        "seconds": trace[-1][0],
        "per_iteration": per_iter,
        "final_loss": trace[-1][1],
        "iterations": len(trace),
        "gflop_per_iteration": conv_gflop(h, w, "pool5"),
        "peak_mb": peak_memory_mb(args.device),
    }


# The race to the textbook's loss is refereed by the textbook's own loss function, scored
# on impasto's pixels: a bf16 run's own numbers are those of its bf16 network, ~0.2% below
# float32's. Pixels are kept (on disk, out of the run's memory) from when impasto's loss
# comes within WINDOW of the target, and the run stops once it is PAST below it.
WINDOW, PAST = 1.01, 0.995


def worker_impasto(args) -> dict:
    import torch

    import impasto
    from impasto.runtime import retain_freed_memory

    retain_freed_memory()  # as the `impasto` command does
    stylizer = impasto.Stylizer(device=args.device)
    start = time.perf_counter()
    final_scale: list[tuple[float, float]] = []
    classic = args.preset == "classic"  # the textbook's loss: race to its total loss
    kept = tempfile.TemporaryDirectory()
    # An iteration reports the loss of the pixels it started from, those the last one left:
    # [the pixels whose loss was last reported, the pixels the last iteration left]
    pixels: list[torch.Tensor | None] = [None, None]

    def watch(progress: impasto.Progress) -> None:
        if progress.size != args.size:
            return
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        loss = progress.losses["total"]
        final_scale.append((time.perf_counter() - start, loss))
        if not classic:  # another loss: no race, nothing to keep
            return
        pixels[:] = [pixels[1], progress.pixels.clone()]
        if pixels[0] is not None and loss <= args.target * WINDOW:
            torch.save(pixels[0].cpu(), f"{kept.name}/{len(final_scale)}.pt")
            if loss <= args.target * PAST:
                raise KeyboardInterrupt  # impasto's own stop: keeps the current image

    options = {"iterations": args.cap} if classic else {}  # else: the preset's own run
    if args.one_scale:  # the fastest way to the textbook's loss: no coarse scales
        options.update(scales=[args.size], history=args.history)
    result = stylizer.run(
        CONTENT,
        STYLE,
        preset=args.preset,
        size=args.size,
        callback=watch,
        precision=args.precision,
        progress=False,
        **options,
    )
    w, h = result.sizes[-1]
    times = [t for t, _ in final_scale]
    per_iter = (times[-1] - times[0]) / max(1, len(times) - 1)
    found = {
        "seconds": final_scale[-1][0],
        "per_iteration": per_iter,
        "iterations": result.iterations,
        "final_scale_iterations": len(final_scale),
        "scales": [s[0] for s in result.sizes],
        "gflop_per_iteration": conv_gflop(h, w, "relu5_1"),
        "peak_mb": peak_memory_mb(args.device),
    }
    if classic:
        found.update(referee(args, final_scale, kept.name, pixels[0]))
        found["iterations"] -= len(final_scale) - found["final_scale_iterations"]
    kept.cleanup()
    return found


def referee(args, final_scale: list, kept: str, last_reported) -> dict:
    """The first kept pixels whose textbook loss is at or below the target: the iteration
    that reported their loss, its time, and that loss; else the loss of the pixels whose
    loss impasto reported last."""
    import textbook
    import torch

    loss_of, _ = textbook.textbook_loss(CONTENT, STYLE, args.size, args.device)
    with torch.no_grad():
        for path in sorted(Path(kept).glob("*.pt"), key=lambda p: int(p.stem)):
            loss = float(loss_of(torch.load(path, weights_only=True).to(args.device)))
            if loss <= args.target:
                n = int(path.stem)
                return {
                    "reached": True,
                    "final_scale_iterations": n,
                    "seconds": final_scale[n - 1][0],
                    "final_loss": loss,
                }
        return {"reached": False, "final_loss": float(loss_of(last_reported))}


def worker_pastiche(args) -> dict:
    """pastiche's CLI, timed from this (fresh) process so its max RSS is pastiche's alone."""
    exe = Path(sys.executable).with_name("pastiche")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(exe),
            "--content",
            str(CONTENT),
            "--styles",
            str(STYLE),
            "--size",
            str(args.size),
            "--num-steps",
            str(args.iterations),
            "--no-verbose",
            "--output",
            f"{tmp}/out.png",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "per_iteration": seconds / args.iterations,  # includes start-up: an upper bound
        "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "iterations": args.iterations,
    }


def spawn(kind: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind]
    for key, value in kw.items():
        flag = f"--{key.replace('_', '-')}"
        cmd += [flag] if value is True else [flag, str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--iterations", type=int, default=300, help="baseline iterations")
    p.add_argument("--pastiche-iterations", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--markdown", help="also write the table to this file")
    # worker mode
    p.add_argument("--worker", choices=("textbook", "impasto", "pastiche"))
    p.add_argument("--size", type=int)
    p.add_argument("--target", type=float)
    p.add_argument("--cap", type=int)
    p.add_argument("--precision", default="fp32", help="worker: impasto's precision")
    p.add_argument("--preset", default="classic")
    p.add_argument("--one-scale", action="store_true")
    p.add_argument("--history", type=int, default=100)
    p.add_argument("--retain-freed-memory", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))

    if args.worker:
        workers = {
            "textbook": worker_textbook,
            "impasto": worker_impasto,
            "pastiche": worker_pastiche,
        }
        worker = workers[args.worker]
        print(json.dumps(worker(args)))
        return

    import torch

    from impasto.devices import bf16_is_fast

    gflops = spawn_matmul(args.device)
    bf16 = bf16_is_fast(torch.device(args.device))  # GPUs: always
    if not bf16:
        print("this CPU has no bf16 kernels: the bf16 row is left out", flush=True)
    rows = [
        f"Device: {args.device}; measured fp32 matmul: {gflops:.0f} GFLOP/s. "
        f"Pair: {CONTENT.name} x {STYLE.name}; baseline {args.iterations} iterations.",
        "",
        "| size | method | s/iteration | iterations | wall s | x baseline time | total loss "
        "| peak MB | % of matmul FLOP/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in (int(s) for s in args.sizes.split(",")):
        base = spawn("textbook", size=size, iterations=args.iterations, device=args.device)
        target = {
            "size": size,
            "target": base["final_loss"],
            "cap": args.iterations,
            "device": args.device,
        }
        # The same textbook with glibc keeping freed memory, as the impasto command has it:
        # on a CPU that alone changes its time (page faults), so impasto is compared on
        # equal terms too.
        kept = (
            spawn(
                "textbook",
                size=size,
                iterations=args.iterations,
                device=args.device,
                retain_freed_memory=True,
            )
            if args.device == "cpu"
            else None
        )
        mine = spawn("impasto", **target)
        # Without bf16 kernels impasto runs bf16 as fp32: the row would repeat the last.
        mine_bf16 = spawn("impasto", **target, precision="bf16") if bf16 else None
        fastest = "bf16" if bf16 else "fp32"
        one_scale = spawn(
            "impasto",
            **{**target, "cap": 2 * args.iterations},
            precision=fastest,
            one_scale=True,
            history=100,
        )
        defaults = spawn(
            "impasto", size=size, device=args.device, preset="balanced", precision="auto"
        )

        has_pastiche = Path(sys.executable).with_name("pastiche").exists()
        past = None
        if args.device == "cpu" and has_pastiche and args.pastiche_iterations:
            past = spawn("pastiche", size=size, iterations=args.pastiche_iterations)
        first_row = len(rows)
        runs = (
            ("textbook", base),
            ("textbook, freed memory kept", kept),
            ("impasto", mine),
            ("impasto --precision bf16", mine_bf16),
            (f"impasto --scales {size} --history 100 --precision {fastest}", one_scale),
            ("impasto, default preset", defaults),
            ("pastiche", past),
        )
        for name, r in runs:
            if r is None:
                continue
            its = r["iterations"]
            if name.startswith("impasto"):
                its = f"{r['iterations']} ({r['final_scale_iterations']} at {size})"
                if "final_loss" in r and not r["reached"]:
                    its += ", target not reached"
            util = (
                f"{100 * r['gflop_per_iteration'] / r['per_iteration'] / gflops:.0f}%"
                if "gflop_per_iteration" in r
                else ""
            )
            loss = f"{r['final_loss']:.4g}" if "final_loss" in r else "(other loss)"
            rows.append(
                f"| {size} | {name} | {r['per_iteration']:.3f} | {its} | {r['seconds']:.1f} "
                f"| {r['seconds'] / base['seconds']:.2f} | {loss} | {r['peak_mb']:.0f} | {util} |"
            )
        print("\n".join(rows[first_row:]), flush=True)
    table = "\n".join(rows)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


def spawn_matmul(device: str) -> float:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import optimize; "
    code += f"print(optimize.matmul_gflops({device!r}))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


if __name__ == "__main__":
    main()
