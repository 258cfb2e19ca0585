"""Any painting in one pass with no impasto and no torch: the built-in one-pass network,
exported to ONNX, on onnxruntime (numpy and Pillow read and write the pictures).

    impasto export painter                 # writes painter.onnx (once)
    python examples/onnx_painter.py painter.onnx photo.jpg painting.jpg out.png \\
        [--size 512] [--strength 1]

The graph takes `image` (N, 3, H, W) and `painting` (1 or N, 3, h, w), RGB in [0, 1], and
`strength` (a float scalar, 0 the photo, 1 the full style), and gives `stylized`
(N, 3, H, W). It needs opset 17 and float64 matrix products (WCT's matrix roots), which
onnxruntime's CPU provider has.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime
from PIL import Image


def planes(image: Image.Image, longest: int) -> np.ndarray:
    """A picture scaled to `longest` px on its longest side, as (1, 3, H, W) in [0, 1]."""
    scale = longest / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    pixels = np.asarray(image.convert("RGB").resize(size, Image.LANCZOS), np.float32) / 255
    return pixels.transpose(2, 0, 1)[None].copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the exported network: impasto export painter")
    parser.add_argument("photo")
    parser.add_argument("painting")
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=512, help="the picture's longest side")
    parser.add_argument("--strength", type=float, default=1.0)
    args = parser.parse_args()

    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    photo = planes(Image.open(args.photo), args.size)
    painting = planes(Image.open(args.painting), max(photo.shape[-2:]))  # at the photo's size
    feed = {"image": photo, "painting": painting, "strength": np.array(args.strength, np.float32)}
    (picture,) = session.run(None, feed)
    pixels = (picture[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(args.output)


if __name__ == "__main__":
    main()
