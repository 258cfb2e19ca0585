"""Live webcam stylization in an OpenCV window (`pip install 'impasto[webcam]'`), which
answers to the keys of KEYS (`impasto webcam --help` shows them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from ..errors import OptionError
from .images import resize_longest, save_image

KEYS = (
    "keys: 1-9 pick a style, n / p the next / previous one, b blends all styles\n"
    "equally, s saves the current frame as a PNG here, q or Esc quits"
)


def run_webcam(
    paint: Callable[[Image.Image, int | None], Image.Image],
    styles: Sequence[str],
    camera: int = 0,
    size: int = 480,
    first: int | None = 0,
) -> None:
    """Show the camera's frames painted by `paint(frame, style)`: `style` indexes
    `styles`, or None for all of them blended equally; `first` is the one it starts with."""
    try:
        import cv2
    except ImportError:
        raise OptionError("webcam needs OpenCV: pip install 'impasto[webcam]'") from None
    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        raise OptionError(f"cannot open camera {camera}")
    n, style, title = len(styles), first, "impasto (q quits)"
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise OptionError(f"camera {camera} stopped sending frames")
            picture = resize_longest(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), size)
            started = time.perf_counter()
            shown = paint(picture, style)
            fps = 1 / max(time.perf_counter() - started, 1e-6)
            bgr = cv2.cvtColor(np.asarray(shown), cv2.COLOR_RGB2BGR)
            label = styles[style] if style is not None else "blend"
            cv2.putText(
                bgr,
                f"{label}  {fps:.0f} fps",
                (8, 20),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (255, 255, 255),
                1,
            )
            cv2.imshow(title, bgr)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if ord("1") <= key <= ord("9") and key - ord("1") < n:
                style = key - ord("1")
            elif key in (ord("n"), ord("p")):
                style = ((style or 0) + (1 if key == ord("n") else -1)) % n
            elif key == ord("b"):
                style = None
            elif key == ord("s"):
                name = f"webcam_{time.strftime('%Y%m%d_%H%M%S')}.png"
                save_image(shown, name)
                print(f"saved {name}")
    finally:
        capture.release()
        cv2.destroyAllWindows()
