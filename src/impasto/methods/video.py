"""A video by optimization (Ruder, Dosovitskiy & Brox 2016): each frame starts from the
last frame's painting carried along the motion, and a temporal loss keeps it there
wherever the motion is known, so strokes stay on the things they paint and new things
are painted anew.

The first frame is painted as a photo is (the whole ladder of scales, the balance chosen
for the pair); each later frame is optimized at the final size only, from the last
painting warped by the optical flow between the photos (methods.temporal.Flow), for
`frame_iterations`, with the first frame's balance. Finished frames are PNGs in a
folder, so a stopped run resumes from its last finished frame.

    frames = OptimizedFrames(Stylizer(), "painting.jpg", OptimizeOptions(size=256),
                             FrameOptions(), "out.frames")
    io.video.stylize_video("clip.mp4", "out.mp4", frames)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import OptionError
from ..io.atomic import atomic_write, make_folder
from ..io.images import ImageSource, load_image, resize_longest, save_image
from ..options import FrameOptions, OptimizeOptions
from .optimize import Stylizer, Temporal
from .presets import resolve
from .result import as_list
from .temporal import Flow

RECORD = "frames.json"  # in the frames folder: the run its frames belong to


class OptimizedFrames:
    """The transform io.video.stylize_video calls with each frame, in order: paints it (or
    reads it back from `folder`, painted by an earlier run) and returns it, (h, w, 3)
    float 0-255. Ctrl-C while a frame is painted keeps the frames before it."""

    def __init__(
        self,
        stylizer: Stylizer,
        style: ImageSource | Sequence[ImageSource],
        options: OptimizeOptions | None,
        frames: FrameOptions,
        folder: str | os.PathLike,
    ):
        self.stylizer, self.frames = stylizer, frames
        self.options = resolve(options, None, {})
        self.paintings = [load_image(s) for s in as_list(style)]
        self.folder = make_folder(folder, "frames folder")
        self.flow = Flow()
        self.index = 0
        self.last: tuple[np.ndarray, np.ndarray] | None = None  # grey photo, painting
        self.record = self._record()

    def _record(self) -> dict:
        """What the frames in the folder were painted with; a folder of another run's
        frames is an error, not a video of two styles."""
        run = json.dumps(
            [asdict(self.options), asdict(replace(self.frames, frames=None))],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha256(run.encode())
        for painting in self.paintings:
            digest.update(painting.tobytes())
        path = self.folder / RECORD
        if path.is_file():
            record = json.loads(path.read_text())
            if record.get("run") != digest.hexdigest():
                raise OptionError(
                    f"{self.folder}: holds the frames of another run (other style or "
                    "options); remove it or choose another frames folder"
                )
            return record
        return {"run": digest.hexdigest(), "content_weight": None}

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        self.index += 1
        path = self._frame(self.index)
        picture = resize_longest(Image.fromarray(photo), self.options.size)
        if path.is_file():
            out = np.asarray(load_image(path), np.float32)
        else:
            result = self._paint(picture, photo)
            if result.interrupted:  # this frame is unfinished: the video ends before it
                raise KeyboardInterrupt
            save_image(result.image, path)
            out = np.asarray(result.image, np.float32)
            if self.record["content_weight"] is None:  # the balance the first frame chose
                self.record["content_weight"] = result.options["content_weight"]
                with atomic_write(self.folder / RECORD) as f:
                    f.write(json.dumps(self.record).encode())
        self.last = (self.flow.grey(photo, out.shape[:2]), out)
        strength = self.options.strength  # the frames keep the full style; the video blends
        if strength < 1:
            seen = np.asarray(picture.resize(out.shape[1::-1]), np.float32)
            return strength * out + (1 - strength) * seen
        return out

    def _frame(self, index: int) -> Path:
        return self.folder / f"{index:06d}.png"

    def _paint(self, picture: Image.Image, photo: np.ndarray):
        """The frame optimized: the first from the photo, with the balance chosen for the
        pair; later ones from the last painting carried along the motion."""
        opts = replace(self.options, strength=1.0)
        if self.record["content_weight"] is None:  # the first frame: it sets the balance
            return self.stylizer.run(picture, self.paintings, opts)
        opts = replace(
            opts,
            scales=[opts.size],
            iterations=self.frames.frame_iterations,
            content_weight=self.record["content_weight"],
            content_target=0.0,
            snapshots=None,
            save_every=0,
        )
        temporal = None
        if self.last is not None and self.flow.follows(self.last[1].shape[:2]):
            grey = self.flow.grey(photo, self.last[1].shape[:2])
            carried, trust = self.flow.carry(grey, *self.last)
            opts.init = Image.fromarray(np.clip(carried + 0.5, 0, 255).astype(np.uint8))
            if self.frames.temporal_weight:
                temporal = Temporal(
                    torch.from_numpy(carried / 255).permute(2, 0, 1)[None],
                    torch.from_numpy(trust).permute(2, 0, 1)[None],
                    self.frames.temporal_weight,
                )
        return self.stylizer.run(picture, self.paintings, opts, temporal=temporal)

    def finished(self) -> None:
        """The video is complete: its frames go, and the folder if nothing else is in it."""
        for index in range(1, self.index + 1):
            self._frame(index).unlink(missing_ok=True)
        (self.folder / RECORD).unlink(missing_ok=True)
        with suppress(OSError):  # something else of the user's is in it: it stays
            self.folder.rmdir()


__all__ = ["OptimizedFrames"]
