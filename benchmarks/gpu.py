"""Feed-forward network on a GPU: 1080p frames/s, the figure video and webcam users need.

    python benchmarks/gpu.py [--model styles.safetensors] [--frames 200]

For 1920x1080 frames, in fp32 and bf16 autocast, contiguous and channels-last:
- "network": frames already on the GPU, the network alone;
- "with transfers": a uint8 HxWx3 frame from host memory in, a uint8 frame back out —
  what `impasto video` / `impasto webcam` pay per frame besides decoding and encoding.
Frames/s is frames / wall time with the GPU synchronised at the end, after a warm-up.
The issue's target is >= 30 frames/s at 1080p.
"""

from __future__ import annotations

import argparse
import time

import torch

from impasto.methods.feedforward import load_transformer
from impasto.nets.transformer import Architecture, TransformerNet


def frames_per_second(step, frames: int) -> float:
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(frames):
        step()
    torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="impasto model file (default: untrained, same speed)")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA device")
    if args.model:
        net = load_transformer(args.model)[0]
    else:
        net = TransformerNet(Architecture(styles=tuple(f"s{i}" for i in range(12))))
    net = net.cuda().eval().requires_grad_(False)
    weights = torch.eye(len(net.arch.styles), device="cuda")[0]
    host = torch.randint(0, 256, (1080, 1920, 3), dtype=torch.uint8).pin_memory()
    print(f"{torch.cuda.get_device_name()}, torch {torch.version.cuda=}, 1920x1080 frames")
    for memory_format in (torch.contiguous_format, torch.channels_last):
        net.to(memory_format=memory_format)
        for bf16 in (False, True):
            x = torch.rand(1, 3, 1080, 1920, device="cuda").to(memory_format=memory_format)

            @torch.no_grad()
            def network(x=x, bf16=bf16):
                with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                    net(x, weights)

            @torch.no_grad()
            def with_transfers(bf16=bf16, memory_format=memory_format):
                frame = host.cuda(non_blocking=True).permute(2, 0, 1)[None].float() / 255
                frame = frame.contiguous(memory_format=memory_format)
                with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                    out = net(frame, weights)
                (out.float().clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).cpu()

            layout = "channels-last" if memory_format is torch.channels_last else "contiguous"
            name = f"{'bf16' if bf16 else 'fp32'} {layout}"
            alone = frames_per_second(network, args.frames)
            moved = frames_per_second(with_transfers, args.frames)
            print(
                f"{name:28s} network {alone:7.1f} frames/s   with transfers {moved:7.1f} frames/s"
            )


if __name__ == "__main__":
    main()
