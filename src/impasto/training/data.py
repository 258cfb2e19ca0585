"""Training images: every readable picture under a folder, as random square crops.

Sampling is a pure function of (seed, position): the n-th image a run draws, and how
it is scaled, cropped and flipped, depend on nothing else. So a resumed run sees
exactly the batches the interrupted one would have, whatever the number of loader
workers, and under `torchrun` each rank draws its own share of every global batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler

from ..errors import ImageError, OptionError
from ..io.images import IMAGE_EXTENSIONS, load_image, to_tensor

log = logging.getLogger(__name__)


def find_images(folder: str | os.PathLike) -> tuple[list[Path], int]:
    """Image files under `folder`, recursively, sorted; and how many were unreadable.

    Only headers are read here; a file that fails to decode later is replaced by
    the next one and logged.
    """
    root = Path(folder)
    if not root.is_dir():
        raise OptionError(f"{root}: not a folder of training images")
    found, skipped = [], 0
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        try:
            with Image.open(path) as im:
                w, h = im.size
            if min(w, h) < 16:
                raise ValueError("too small")
            found.append(path)
        except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
            skipped += 1
    if not found:
        raise OptionError(f"{root}: no readable images found (searched recursively)")
    return found, skipped


def held_out(path: str | os.PathLike) -> bool:
    """Whether an image is in the tenth of a folder kept out of training (for metrics and
    samples): chosen by a hash of its file name, so the choice stays as the folder grows."""
    return hashlib.sha256(Path(path).name.encode()).digest()[0] % 10 == 0


def epoch_order(n: int, epoch: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def random_motion(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A small random camera motion between two video frames: a shift of up to 6 px, a
    turn of up to 2 degrees and a zoom of up to 3 %, as affine_grid's (2, 3) theta (where
    each pixel of the moved frame was in the first, in [-1, 1] coordinates)."""
    turn, zoom = np.deg2rad(rng.uniform(-2.0, 2.0)), rng.uniform(0.97, 1.03)
    dx, dy = rng.uniform(-6.0, 6.0, 2) * 2 / size
    cos, sin = zoom * np.cos(turn), zoom * np.sin(turn)
    return torch.tensor([[cos, -sin, dx], [sin, cos, dy]], dtype=torch.float32)


def move(images: torch.Tensor, theta: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """(N, C, H, W) images moved by (N, 2, 3) `theta` (random_motion)."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode=padding, align_corners=False)


class CropDataset(Dataset):
    """Item `position` -> (crop, style index[, target crop][, moved crop, motion]), all
    drawn from (seed, position).

    Each photo is scaled so its short side is `size` times a random factor in
    [1, max_scale], then cropped to size × size and flipped half the time. With
    `targets` (distillation), the same geometry is applied to the photo's target.
    """

    def __init__(
        self,
        paths: list[Path],
        size: int,
        n_styles: int = 1,
        seed: int = 0,
        max_scale: float = 1.5,
        targets: list[list[Path]] | None = None,  # targets[style][photo]
        motion: bool = False,
    ):
        self.paths, self.size, self.n_styles = paths, size, n_styles
        self.seed, self.max_scale, self.targets = seed, max_scale, targets
        self.motion = motion  # also the crop a little moved, with noise, and the motion
        self._epoch, self._perm = -1, None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        rng = np.random.default_rng([self.seed, position])
        n = len(self.paths)
        index = int(self._order(position // n)[position % n])
        style = int(rng.integers(self.n_styles))
        for attempt in range(len(self.paths)):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                photo = load_image(path)
                target = None
                if self.targets is not None:
                    target = load_image(self.targets[style][(index + attempt) % len(self.paths)])
                    photo = photo.resize(target.size, Image.Resampling.LANCZOS)
                break
            except ImageError as e:
                log.warning("skipping unreadable training image: %s", e)
        else:
            raise ImageError("no training image could be decoded")
        w, h = photo.size
        scale = self.size / min(w, h) * rng.uniform(1.0, self.max_scale)
        rw, rh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        box = (int(rng.integers(rw - self.size + 1)), int(rng.integers(rh - self.size + 1)))
        flip = rng.random() < 0.5
        crops = [_crop(im, (rw, rh), box, self.size, flip) for im in (photo, target) if im]
        if self.motion:  # the next frame of a video: moved, with a camera's noise
            theta = random_motion(rng, self.size)
            moved = move(crops[0][None], theta[None])[0]
            noise = rng.normal(0.0, rng.uniform(0.0, 0.02), moved.shape).astype(np.float32)
            crops += [(moved + torch.from_numpy(noise)).clamp(0, 1), theta]
        return (crops[0], style, *crops[1:])

    def _order(self, epoch: int) -> torch.Tensor:
        if self._epoch != epoch:
            self._epoch, self._perm = epoch, epoch_order(len(self.paths), epoch, self.seed)
        return self._perm


def _crop(image: Image.Image, resized, box, size: int, flip: bool) -> torch.Tensor:
    image = image.resize(resized, Image.Resampling.BILINEAR)
    image = image.crop((box[0], box[1], box[0] + size, box[1] + size))
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_tensor(image)[0]


class PositionSampler(Sampler[int]):
    """Positions for `rank` from global batch `start_step` on, forever.

    Global batch t holds positions t·B·world … (t+1)·B·world − 1; rank r takes the
    r-th slice of B. This is the distributed sampler: shards differ, none overlap.
    """

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world: int = 1):
        self.batch_size, self.start_step, self.rank, self.world = (
            batch_size,
            start_step,
            rank,
            world,
        )

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            first = (step * self.world + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
            step += 1
