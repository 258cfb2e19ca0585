"""What the backends of the fast method share: a trained network's styles, and how
pictures go through it, one or many, in batches of one size. No torch here: a backend
paints, this reads, resizes, batches and reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
from PIL import Image

from ..budget import BYTES_PER_ONE_PASS_PIXEL, check_fits
from ..errors import ImageError, ImpastoError
from ..io.images import (
    ImageSource,
    carry_metadata,
    load_image,
    resize_longest,
    scaled_size,
    to_image,
)
from ..options import FastOptions, update
from .blend import StyleSpec, style_mix
from .result import Progress, Result, one_pass_progress
from .temporal import Motion


class Network:
    """A loaded transformation network. Subclasses set `styles` and `device` and paint a
    batch of same-size pictures (`paint_pictures`)."""

    styles: tuple[str, ...]
    device: Any

    def paint_pictures(
        self, pictures: list[Image.Image], weights: np.ndarray, opts: FastOptions
    ) -> Sequence[Any]:
        """Same-size pictures -> each one's stylized pixels, (1, 3, H, W) in [0, 1]."""
        raise NotImplementedError

    def painter(
        self, style: StyleSpec, options: FastOptions, motion: Motion | None = None
    ) -> Callable[[Image.Image], Any]:
        """Paint picture after picture (a video's frames) in `style`, as `run` does: a
        function from a picture to its pixels, (1, 3, H, W) in [0, 1] at `options.size`.
        `motion` (a video's `FlowConsistency.motion`): the frames' motion, along which a
        backend whose network can carry its features from frame to frame does so
        (FastStylizer); here each frame is painted anew."""
        weights = style_mix(style, self.styles)

        def paint(picture: Image.Image) -> Any:
            (out,) = self.paint_pictures([resize_longest(picture, options.size)], weights, options)
            return out

        return paint

    def run(
        self,
        content: ImageSource,
        style: StyleSpec = None,
        options: FastOptions | None = None,
        *,
        callback: Callable[[Progress], None] | None = None,
        progress: bool = False,
        **changes,
    ) -> Result:
        """Stylize one image in `style`, one of the network's styles or a blend of them
        ("udnie", 2, "udnie:0.7,candy:0.3"; default: its first): `options` with
        `changes`, the fields of FastOptions, on top. `progress` is accepted for the
        common method contract; one pass shows none."""
        (result,) = self.run_many([content], style, options, **changes)
        if isinstance(result, Exception):
            raise result
        if callback is not None:
            callback(one_pass_progress(result.pixels))
        return result

    def run_many(
        self,
        contents: Sequence[ImageSource],
        style: StyleSpec = None,
        options: FastOptions | None = None,
        *,
        load: Callable[[ImageSource], Image.Image] = load_image,
        **changes,
    ) -> Iterator[Result | ImpastoError]:
        """Stylize many images, `options.batch` at a time (images of one size share a
        forward pass); yields, in the order given, each one's Result, or the ImpastoError that
        kept it from being read (by `load`)."""
        opts = update(replace(options) if options else FastOptions(), changes, "fast")
        weights = style_mix(style, self.styles)
        for first in range(0, len(contents), opts.batch):
            chunk: list[Result | ImpastoError | Image.Image] = []
            for content in contents[first : first + opts.batch]:
                try:
                    picture = load(content)
                    check_fits(
                        scaled_size(picture.size, opts.size),
                        BYTES_PER_ONE_PASS_PIXEL,
                        "the fast network",
                    )
                    chunk.append(resize_longest(picture, opts.size))
                except ImageError as e:
                    chunk.append(e)
            by_size: dict[tuple, list[int]] = {}
            for i, picture in enumerate(chunk):
                if isinstance(picture, Image.Image):
                    by_size.setdefault(picture.size, []).append(i)
            for group in by_size.values():
                start = time.perf_counter()
                out = self.paint_pictures([chunk[i] for i in group], weights, opts)
                seconds = (time.perf_counter() - start) / len(group)
                for pixels, i in zip(out, group, strict=True):
                    image = carry_metadata(to_image(pixels), chunk[i])
                    chunk[i] = Result(
                        image, pixels, seconds, str(self.device), options=asdict(opts)
                    )
            yield from chunk
