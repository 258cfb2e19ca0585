"""Small video clips the tests make: a slow pan over a photo."""

from pathlib import Path

import numpy as np
from PIL import Image


def panning_clip(photo: Path, path: Path, frames: int, size: tuple[int, int], step: int) -> Path:
    """`frames` frames of `size` (w, h) at 12 frames/s, panning `step` px a frame over
    `photo`, as H.264."""
    import av

    w, h = size
    picture = np.asarray(Image.open(photo).convert("RGB").resize((3 * w // 2, 3 * h // 2)))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        top = h // 4
        for t in range(frames):
            frame = np.ascontiguousarray(picture[top : top + h, step * t : step * t + w])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path
