"""Load, validate, convert and save images.

Every image enters impasto through `load_image` and leaves through `save_image`,
so limits, colour modes and atomic writes are handled in one place.

Transparent images are composited on white: a painting has no alpha channel, and
white is what a transparent PNG looks like on most pages.
"""

from __future__ import annotations

import glob
import io
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DivergedError, ImageError, ImageTooLarge, OutputError
from ..options import BIT_DEPTHS, MAX_PIXELS  # noqa: F401 (also io.images')
from .atomic import atomic_write

if TYPE_CHECKING:
    import torch

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]  # noqa: UP007 (runtime alias)

MIN_SIDE = 16  # VGG-19 pools five times; below this conv5 has nothing to see

# Extension -> (PIL format, save options).
SAVE_FORMATS = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"quality": 95}),
    ".tif": ("TIFF", {"compression": "tiff_deflate"}),
    ".tiff": ("TIFF", {"compression": "tiff_deflate"}),
}


IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def expand_inputs(specs: list[str]) -> list[tuple[Path, Path]]:
    """Files, folders (recursive) and globs -> [(path, name to write it under)].

    A folder's images keep their path relative to it, so outputs cannot collide.
    """
    found: list[tuple[Path, Path]] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            found += [(p, p.relative_to(path)) for p in files]
        elif path.exists():
            found.append((path, Path(path.name)))
        elif glob.has_magic(spec):
            found += [
                (Path(p), Path(Path(p).name)) for p in sorted(glob.glob(spec)) if Path(p).is_file()
            ]
        else:
            raise ImageError(f"{spec}: no such file or folder")
    if not found:
        raise ImageError(f"no images found in {' '.join(specs)}")
    return found


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = MAX_PIXELS,
    min_side: int = MIN_SIDE,
    name: str | None = None,
) -> Image.Image:
    """Return `source` as an RGB PIL image, upright per its EXIF orientation.

    `source` is a path, the bytes of an encoded image, a PIL image, or a uint8
    array (H×W, H×W×3 or H×W×4). Raises ImageError with a one-line message for a
    missing, empty, corrupt, truncated or non-image file, and for images over
    `max_pixels` or with a side under `min_side`.
    """
    label = name or _label(source)
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source, label)
    else:
        image = _open(source, label, max_pixels)
    _check_size(image.size, label, max_pixels, min_side)
    try:
        image = ImageOps.exif_transpose(image)
        return carry_metadata(to_rgb(image), image)
    except (OSError, ValueError, SyntaxError) as e:  # PIL decodes lazily: truncation shows here
        raise ImageError(f"{label}: cannot decode image ({_reason(e)})") from e


def _label(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return {bytes: "uploaded image", np.ndarray: "array"}.get(type(source), "image")


def _open(source: str | os.PathLike | bytes, label: str, max_pixels: int | None) -> Image.Image:
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{label}: empty file")
        stream = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{label}: no such file")
        if path.is_dir():
            raise ImageError(f"{label}: is a directory, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"{label}: empty file")
        stream = io.BytesIO(path.read_bytes())
    try:
        with warnings.catch_warnings():
            # impasto applies its own pixel limit below, with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
            _check_size(image.size, label, max_pixels, 1)
            image.load()
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{label}: image is too large ({_reason(e)})") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{label}: not an image, or a format impasto cannot read") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{label}: corrupt or truncated image ({_reason(e)})") from e
    return image


def _reason(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _check_size(size: tuple[int, int], label: str, max_pixels: int | None, min_side: int) -> None:
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLarge(
            f"{label}: {w}x{h} is {w * h:,} pixels, over the limit of {max_pixels:,} "
            "(raise it with --max-pixels)"
        )
    if min(w, h) < min_side:
        raise ImageError(
            f"{label}: {w}x{h} is too small (each side must be at least {min_side} px)"
        )


def _from_array(array: np.ndarray, label: str) -> Image.Image:
    if array.dtype != np.uint8:
        raise ImageError(f"{label}: arrays must be uint8, got {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        return Image.fromarray(
            array.squeeze(2) if array.ndim == 3 and array.shape[2] == 1 else array
        )
    raise ImageError(f"{label}: array of shape {array.shape} is not H×W, H×W×3 or H×W×4")


def carry_metadata(target: Image.Image, source: Image.Image) -> Image.Image:
    """Give `target` the photo's EXIF and, when it describes RGB, its ICC colour profile
    (kept in `.info`; save_image writes them), so a result keeps the camera data and
    shows in the photo's colours. Returns `target`."""
    icc = source.info.get("icc_profile")
    if icc and icc[16:20] == b"RGB ":  # a CMYK or grey profile would misdescribe RGB pixels
        target.info["icc_profile"] = icc
    exif = source.info.get("exif")
    if exif:  # after exif_transpose its orientation is already 1
        target.info["exif"] = exif if isinstance(exif, bytes) else source.getexif().tobytes()
    return target


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited on white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the full range instead of clipping at 255, in integers (a
        # big scan in float64 took four 8-byte copies of every pixel at once).
        values = np.asarray(image)
        if mode.startswith("I;16") or values.max() > 255:
            values = np.clip(values, 0, 65535).astype(np.uint16) >> 8
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        top = 1.0 if values.max(initial=0) <= 1.0 else 255.0  # come as 0–1 or 0–255
        values *= 255 / top
        np.clip(values, 0, 255, out=values)
        values += 0.5
        return Image.fromarray(values.astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def scaled_size(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) scaled so the longest side is `longest` px, aspect kept."""
    w, h = size
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_longest(image: Image.Image, size: int) -> Image.Image:
    """Scale so the longest side is `size` pixels, keeping the aspect ratio."""
    new = scaled_size(image.size, size)
    if new == image.size:
        return image
    return image.resize(new, Image.Resampling.LANCZOS)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor of shape (1, 3, H, W) in [0, 1]."""
    import torch  # here, so that reading and writing pictures needs no torch

    return torch.from_numpy(to_array(image))


def to_array(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> float32 array of shape (1, 3, H, W) in [0, 1]."""
    array = np.asarray(to_rgb(image), dtype=np.float32) / 255.0
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None])


def to_image(tensor: torch.Tensor | np.ndarray) -> Image.Image:
    """Tensor or array of shape (1, 3, H, W) or (3, H, W) in [0, 1] -> RGB PIL image
    (clipped)."""
    array = pixels_array(tensor)
    array = array[0] if array.ndim == 4 else array
    if not np.isfinite(array).all():  # would be black: a broken run, never a picture
        raise DivergedError("the picture holds numbers that are not finite; nothing written")
    return Image.fromarray((array.clip(0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0))


def pixels_array(picture: torch.Tensor | np.ndarray) -> np.ndarray:
    """A picture's pixels as a float32 numpy array, from a tensor (on any device) or not."""
    if isinstance(picture, np.ndarray):
        return picture.astype(np.float32, copy=False)
    return picture.detach().float().cpu().numpy()


def check_output_path(path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Refuse, before any long work, an output that cannot or must not be written.

    Checks the extension, that the folder exists and is writable, and that the
    path is not one of the `inputs` (inputs are never overwritten).
    """
    out = Path(path)
    if out.suffix.lower() not in SAVE_FORMATS:
        known = ", ".join(sorted({e.lstrip(".") for e in SAVE_FORMATS}))
        raise OutputError(f"{out}: unknown image extension (use one of: {known})")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or not writable(folder):
        raise OutputError(f"{out}: folder {folder} is not writable")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"{out}: file is not writable")
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and out.exists() and Path(source).exists():  # noqa: SIM102
            if out.resolve() == Path(source).resolve():
                raise OutputError(f"{out}: is an input file; impasto never overwrites its inputs")
    return out


def writable(folder: Path) -> bool:
    """Whether a file can be made in `folder`, tried for real: os.access passes where
    writing fails (/proc, /sys, read-only mounts, as root)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def save_image(image: Image.Image, path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Write `image` to `path` atomically (temp file + rename), format by extension."""
    out = check_output_path(path, inputs)
    fmt, options = SAVE_FORMATS[out.suffix.lower()]
    metadata = {k: image.info[k] for k in ("icc_profile", "exif") if image.info.get(k)}
    with atomic_write(out) as f:
        image.save(f, format=fmt, **options, **metadata)
    return out


DEEP_FORMATS = (".png", ".tif", ".tiff")


def save_image16(
    picture: torch.Tensor | np.ndarray,
    path: str | os.PathLike,
    like: Image.Image | None = None,
    inputs: tuple = (),
) -> Path:
    """Write a float RGB picture in [0, 1], (1, 3, H, W) or (3, H, W), with 16 bits per
    channel (for print: no banding in smooth skies), atomically; PNG or TIFF. `like`
    gives the EXIF and ICC profile to carry (see carry_metadata)."""
    out = check_output_path(path, inputs)
    if out.suffix.lower() not in DEEP_FORMATS:
        raise OutputError(
            f"{out}: 16-bit pictures are written as PNG or TIFF, not {out.suffix.lower()}"
        )
    data = encode16(picture, out.suffix.lower(), like)
    with atomic_write(out) as f:
        f.write(data)
    return out


def encode16(
    picture: torch.Tensor | np.ndarray, suffix: str = ".png", like: Image.Image | None = None
) -> bytes:
    """A float RGB picture in [0, 1] as a 16-bit PNG or TIFF file's bytes, with `like`'s
    EXIF and ICC profile."""
    rgb = pixels_array(picture).reshape(-1, *picture.shape[-2:])[:3].clip(0, 1)
    pixels = (rgb.transpose(1, 2, 0) * 65535 + 0.5).astype(np.uint16)
    info = like.info if like is not None else {}
    if suffix == ".png":
        return png16(pixels, info.get("icc_profile"), info.get("exif"))
    try:
        import tifffile
    except ImportError:
        raise OutputError(
            "16-bit TIFF needs tifffile: pip install 'impasto[print]', or write a .png"
        ) from None
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer, pixels, photometric="rgb", compression="zlib", iccprofile=info.get("icc_profile")
    )
    return buffer.getvalue()


def png16(pixels: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    """A 16-bit RGB PNG (Pillow writes 16 bits only for grey): rows with filter 0 under
    one zlib stream, plus the colour profile (iCCP) and camera data (eXIf) if given."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    h, w, _ = pixels.shape
    rows = np.zeros((h, 1 + w * 6), np.uint8)  # a 0 byte (no filter) before each row
    rows[:, 1:] = np.ascontiguousarray(pixels, ">u2").view(np.uint8).reshape(h, w * 6)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    if icc:
        png += chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if exif:
        png += chunk(b"eXIf", exif.removeprefix(b"Exif\0\0"))
    return png + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b"")
