"""Video in and out through PyAV (FFmpeg): frames are stylized one by one, the frame
rate and timestamps are kept, and audio packets are copied untouched.

    stylize_video("in.mp4", "out.mp4", lambda rgb: stylizer(rgb))   # rgb: H×W×3 uint8

The output appears atomically when the video is complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import OptionError, OutputError, VideoError
from .atomic import atomic_write

# Extension -> (container format, video codec).
VIDEO_FORMATS = {
    ".mp4": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".avi": ("avi", "mpeg4"),
}


def _av():
    try:
        import av
    except ImportError:
        raise OptionError("video needs PyAV: pip install 'impasto[video]'") from None
    return av


def probe(path: str | os.PathLike) -> dict:
    """Frame count, size, frame rate and whether there is audio."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            return {
                "frames": frames,
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "fps": Fraction(stream.average_rate) if stream.average_rate else None,
                "audio": bool(container.streams.audio),
            }
    except av.FFmpegError as e:
        raise VideoError(f"{path}: cannot read video ({e})") from e


def stylize_video(
    source: str | os.PathLike,
    output: str | os.PathLike,
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    smooth: float = 0.0,
    steady: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    progress: bool = True,
) -> int:
    """Write `source` with every frame passed through `transform`; returns the frame count.

    `smooth` in [0, 1) blends each stylized frame with the previous one where the
    photo did not change, which damps flicker without ghosting moving things.
    `steady(photo, stylized)`, called on every frame in order, returns the frame to write
    (methods.temporal.FlowConsistency: the last frame carried along the motion).
    """
    av = _av()
    src, out = Path(source), Path(output)
    if not src.is_file():
        raise VideoError(f"{src}: no such file")
    if out.suffix.lower() not in VIDEO_FORMATS:
        raise OutputError(f"{out}: unknown video extension (use {', '.join(VIDEO_FORMATS)})")
    if out.exists() and out.resolve() == src.resolve():
        raise OutputError(f"{out}: is the input; impasto never overwrites its inputs")
    if not 0.0 <= smooth < 1.0:
        raise OptionError("smooth must be in [0, 1)")
    fmt, codec = VIDEO_FORMATS[out.suffix.lower()]
    height, width = _output_size(av, src, transform)
    try:
        container = av.open(str(src))
    except av.FFmpegError as e:
        raise VideoError(f"{src}: cannot read video ({e})") from e
    with container:
        if not container.streams.video:
            raise VideoError(f"{src}: has no video stream")
        video_in = container.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = container.streams.audio[0] if container.streams.audio else None
        rate = video_in.average_rate or Fraction(30)
        count = 0
        bar = tqdm(total=video_in.frames or None, disable=not progress, unit="frame")
        try:
            with atomic_write(out) as f, av.open(f, mode="w", format=fmt) as writer:
                video_out = writer.add_stream(codec, rate=rate)
                video_out.pix_fmt = "yuv420p"
                video_out.width, video_out.height = width, height
                video_out.time_base = video_in.time_base
                audio_out = writer.add_stream_from_template(audio_in) if audio_in else None
                previous = None  # (photo, stylized) of the last frame, float32
                streams = [video_in] + ([audio_in] if audio_in else [])
                for packet in container.demux(*streams):
                    if packet.stream is audio_in:
                        if packet.dts is not None:
                            packet.stream = audio_out
                            writer.mux(packet)
                        continue
                    for frame in packet.decode():
                        photo = frame.to_ndarray(format="rgb24")
                        styled = transform(photo).astype(np.float32)
                        if steady is not None:
                            styled = steady(photo, styled)
                        seen = _at_size(photo, styled.shape)
                        if smooth and previous is not None:
                            styled = _damp_flicker(seen, styled, *previous, smooth)
                        previous = (seen.astype(np.float32), styled)
                        picture = np.clip(styled + 0.5, 0, 255).astype(np.uint8)
                        picture = np.ascontiguousarray(picture[:height, :width])
                        new = av.VideoFrame.from_ndarray(picture, format="rgb24")
                        new.pts, new.time_base = frame.pts, frame.time_base
                        writer.mux(video_out.encode(new))
                        count += 1
                        bar.update()
                writer.mux(video_out.encode())
                if count == 0:
                    raise VideoError(f"{src}: no video frames could be decoded")
        except av.FFmpegError as e:
            raise VideoError(f"{src}: cannot process video ({e})") from e
        finally:
            bar.close()
    return count


def _output_size(av, src: Path, transform) -> tuple[int, int]:
    """The output's (height, width): the first frame's, stylized, rounded down to even
    (yuv420p needs even sides). The encoder must know it before the first packet."""
    try:
        with av.open(str(src)) as container:
            if not container.streams.video:
                raise VideoError(f"{src}: has no video stream")
            for frame in container.decode(video=0):
                h, w = transform(frame.to_ndarray(format="rgb24")).shape[:2]
                return h // 2 * 2, w // 2 * 2
    except av.FFmpegError as e:
        raise VideoError(f"{src}: cannot read video ({e})") from e
    raise VideoError(f"{src}: no video frames could be decoded")


def _at_size(photo: np.ndarray, shape: tuple) -> np.ndarray:
    """The photo at the stylized frame's size, to compare frames with."""
    if photo.shape[:2] == shape[:2]:
        return photo
    from PIL import Image

    return np.asarray(Image.fromarray(photo).resize((shape[1], shape[0]), Image.BILINEAR))


def _damp_flicker(photo, styled, last_photo, last_styled, smooth: float) -> np.ndarray:
    if last_styled.shape != styled.shape:
        return styled
    change = np.abs(photo.astype(np.float32) - last_photo).mean(axis=2, keepdims=True)
    still = np.exp(-change / 8.0)  # 1 where the photo is unchanged, ~0 where it moved
    keep = smooth * still
    return (1 - keep) * styled + keep * last_styled
