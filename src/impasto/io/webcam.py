"""Live webcam stylization in an OpenCV window (`pip install 'impasto[webcam]'`).

Keys: 1–9 pick a style, n / p the next / previous one, b blends all styles equally,
s saves the current frame as a PNG here, q or Esc quits.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..errors import OptionError
from .images import resize_longest, save_image, to_image, to_tensor


def run_webcam(fast, weights: torch.Tensor, camera: int = 0, size: int | None = 480,
               strength: float = 1.0, preserve_color: bool = False) -> None:  # fmt: skip
    try:
        import cv2
    except ImportError:
        raise OptionError("webcam needs OpenCV: pip install 'impasto[webcam]'") from None
    from PIL import Image

    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        raise OptionError(f"cannot open camera {camera}")
    n = len(fast.styles)
    title = "impasto (q quits)"
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise OptionError(f"camera {camera} stopped sending frames")
            picture = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            picture = resize_longest(picture, size or 480)
            content = to_tensor(picture)
            started = time.perf_counter()
            out = fast.finish(fast.run_batch(content, weights), content, strength, preserve_color)
            fps = 1 / max(time.perf_counter() - started, 1e-6)
            shown = to_image(out)
            bgr = cv2.cvtColor(np.asarray(shown), cv2.COLOR_RGB2BGR)
            style = int(weights.argmax()) if weights.max() == 1 else -1
            label = fast.styles[style] if style >= 0 else "blend"
            cv2.putText(bgr, f"{label}  {fps:.0f} fps", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1)  # fmt: skip
            cv2.imshow(title, bgr)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if ord("1") <= key <= ord("9") and key - ord("1") < n:
                style = key - ord("1")
            elif key in (ord("n"), ord("p")):
                style = (max(style, 0) + (1 if key == ord("n") else -1)) % n
            elif key == ord("b"):
                weights = torch.full((n,), 1.0 / n)
                continue
            elif key == ord("s"):
                name = f"webcam_{time.strftime('%Y%m%d_%H%M%S')}.png"
                save_image(shown, name)
                print(f"saved {name}")
                continue
            else:
                continue
            weights = torch.nn.functional.one_hot(torch.tensor(style), n).float()
    finally:
        capture.release()
        cv2.destroyAllWindows()
