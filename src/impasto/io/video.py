"""Video in and out through PyAV (FFmpeg): frames are stylized one by one, the frame
rate and timestamps are kept, and audio packets are copied untouched.

    stylize_video("in.mp4", "out.mp4", lambda rgb: stylizer(rgb))   # rgb: H×W×3 uint8

The output appears atomically when the video is complete, or, after Ctrl-C, with the
frames painted so far. Frames are turned upright as the clip's rotation says (phones
film sideways and record the turn), so the output plays upright with no rotation.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import OptionError, OutputError, VideoError, VideoInterrupted
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


VideoSource = str | os.PathLike | bytes  # a file, or a whole video's bytes (an upload)


def _open(av, source: VideoSource):
    """The container of `source`, and its name for messages; a file that is not there, or
    that is no video, says so in one line."""
    name = "the video" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise VideoError(f"{name}: no such file")
    try:
        return av.open(io.BytesIO(source) if isinstance(source, bytes) else name), name
    except av.FFmpegError as e:
        raise VideoError(f"{name}: cannot read video ({e})") from e


def probe(source: VideoSource, longest: float | None = None) -> dict:
    """Frame count, size (upright), frame rate, duration in seconds and whether there is
    audio. With `longest`, a video whose header says it lasts longer is not decoded (its
    frames are not counted: 0), and decoding stops past it, so a long upload is refused
    without the work."""
    av = _av()
    container, name = _open(av, source)
    try:
        with container:
            if not container.streams.video:
                raise VideoError(f"{name}: has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = Fraction(stream.average_rate) if stream.average_rate else None
            step = float(1 / rate) if rate else 0.0
            if stream.duration and stream.time_base:  # the header's length of the video
                told = float(stream.duration * stream.time_base)
            else:
                told = container.duration / av.time_base if container.duration else 0.0
            frames, turn, seconds = 0, 0, told
            if longest is None or told <= longest:
                last = 0.0
                for frame in container.decode(stream):  # counted, not taken from the header
                    if frames == 0:
                        turn = frame.rotation
                    frames += 1
                    if frame.time is not None:
                        last = max(last, frame.time)
                    if longest is not None and last > longest:  # the header understated it
                        break
                seconds = last + step if last else frames * step
            return {
                "frames": frames,
                "width": height if turn % 180 else width,
                "height": width if turn % 180 else height,
                "fps": rate,
                "seconds": seconds,
                "audio": bool(container.streams.audio),
            }
    except av.FFmpegError as e:
        raise VideoError(f"{name}: cannot read video ({e})") from e


def _upright(frame) -> np.ndarray:
    """A decoded frame as RGB, turned as its display matrix says."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def check_video_output(source: VideoSource, output: str | os.PathLike) -> Path:
    """Refuse, before any work, an output of no known video format, or the input itself."""
    out = Path(output)
    if out.suffix.lower() not in VIDEO_FORMATS:
        raise OutputError(f"{out}: unknown video extension (use {', '.join(VIDEO_FORMATS)})")
    if not isinstance(source, bytes) and out.exists() and out.resolve() == Path(source).resolve():
        raise OutputError(f"{out}: is the input; impasto never overwrites its inputs")
    return out


def stylize_video(
    source: VideoSource,
    output: str | os.PathLike,
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    smooth: float = 0.0,
    progress: bool = True,
    on_frame: Callable[[int, int | None, np.ndarray], None] | None = None,
) -> int:
    """Write `source` with every frame passed through `transform`; returns the frame count.

    `smooth` in [0, 1) blends each stylized frame with the previous one where the
    photo did not change, which damps flicker without ghosting moving things.
    `transform` is called on every frame in order, so it may carry what it painted from
    one frame to the next (methods.temporal.FlowConsistency.steadied).
    `on_frame(done, total, frame)` hears of each frame written (total: None if the
    header does not say); what it raises stops the video, and nothing is written.
    Ctrl-C stops it too, but writes the frames painted so far, then raises
    VideoInterrupted.
    """
    av = _av()
    out = check_video_output(source, output)
    if not 0.0 <= smooth < 1.0:
        raise OptionError("smooth must be in [0, 1)")
    fmt, codec = VIDEO_FORMATS[out.suffix.lower()]
    container, name = _open(av, source)
    interrupted = False
    with container:
        if not container.streams.video:
            raise VideoError(f"{name}: has no video stream")
        video_in = container.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = container.streams.audio[0] if container.streams.audio else None
        rate = video_in.average_rate or Fraction(30)
        total = video_in.frames or None
        count, size = 0, None  # size: the output's (height, width), from the first frame
        bar = tqdm(total=total, disable=not progress, unit="frame")
        try:
            # MP4 and MOV with their index first, so a browser plays them as they arrive
            start = {"movflags": "faststart"} if fmt in ("mp4", "mov") else {}
            with (
                atomic_write(out) as f,
                av.open(f, mode="w", format=fmt, options=start) as writer,
            ):
                video_out = writer.add_stream(codec, rate=rate)
                video_out.pix_fmt = "yuv420p"
                # The encoder counts time in the input's units, not in frames: a variable
                # frame rate keeps its timestamps, none rounded onto another.
                video_out.codec_context.time_base = video_in.time_base
                video_out.time_base = video_in.time_base
                audio = _Audio(writer, audio_in, fmt) if audio_in else None
                # Audio that comes before the first frame is painted waits: the header,
                # written with the first packet, needs the frames' size.
                waiting: list = []
                previous = None  # (photo, stylized) of the last frame, float32
                streams = [video_in] + ([audio_in] if audio_in else [])
                try:
                    for packet in container.demux(*streams):
                        if packet.stream is audio_in:
                            waiting += audio.carry(packet)
                            if size is not None:
                                writer.mux(waiting)
                                waiting = []
                            continue
                        for frame in packet.decode():
                            photo = _upright(frame)
                            styled = transform(photo).astype(np.float32)
                            seen = _at_size(photo, styled.shape)
                            if smooth and previous is not None:
                                styled = _damp_flicker(seen, styled, *previous, smooth)
                            previous = (seen.astype(np.float32), styled)
                            if size is None:
                                size = _even_size(styled.shape, name)
                                video_out.height, video_out.width = size
                            picture = np.clip(styled + 0.5, 0, 255).astype(np.uint8)
                            picture = np.ascontiguousarray(picture[: size[0], : size[1]])
                            new = av.VideoFrame.from_ndarray(picture, format="rgb24")
                            new.pts, new.time_base = frame.pts, frame.time_base
                            writer.mux(video_out.encode(new))
                            writer.mux(waiting)
                            waiting = []
                            count += 1
                            bar.update()
                            if on_frame is not None:
                                on_frame(count, total, picture)
                except KeyboardInterrupt:
                    if count == 0:
                        raise
                    interrupted = True  # the frames so far make a playable video
                if count == 0:
                    raise VideoError(f"{name}: no video frames could be decoded")
                writer.mux(video_out.encode())
                if audio is not None:
                    writer.mux(waiting + audio.flush())
        except av.FFmpegError as e:
            raise VideoError(f"{name}: cannot process video ({e})") from e
        finally:
            bar.close()
    if interrupted:
        raise VideoInterrupted(count, str(out))
    return count


class _Audio:
    """The input's audio in the output: its packets copied as they are, or, where the
    container cannot hold its codec (AAC in WebM), decoded and encoded again."""

    def __init__(self, writer, audio_in, fmt: str):
        try:
            self.out, self.encode = writer.add_stream_from_template(audio_in), False
        except ValueError:  # the format does not take this codec
            codec = "libopus" if fmt == "webm" else "aac"
            rate = 48000 if codec == "libopus" else audio_in.rate
            self.out = writer.add_stream(codec, rate=rate, layout=audio_in.layout.name)
            self.encode = True

    def carry(self, packet) -> list:
        """The output's packets for one of the input's."""
        if not self.encode:
            if packet.dts is None:  # the demuxer's flush packet
                return []
            packet.stream = self.out
            return [packet]
        out = []
        for frame in packet.decode():
            frame.pts = None  # the encoder counts its own samples
            out += self.out.encode(frame)
        return out

    def flush(self) -> list:
        return list(self.out.encode(None)) if self.encode else []


def _even_size(shape: tuple, name: str) -> tuple[int, int]:
    """A stylized frame's (height, width) rounded down to even (yuv420p needs even sides).
    The encoder must know it before the first packet."""
    h, w = shape[:2]
    if min(h, w) < 2:
        raise VideoError(f"{name}: frames of {w}x{h} px are too small to encode")
    return h // 2 * 2, w // 2 * 2


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
