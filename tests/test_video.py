"""Video: frame count, size, frame rate and audio survive; bad files give clear errors."""

from fractions import Fraction

import numpy as np
import pytest

from impasto.cli import main
from impasto.errors import OutputError, VideoError
from impasto.io.video import probe, stylize_video

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """12 frames of 64×48 at 12 fps, with a second of stereo audio."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=44100, layout="stereo")
        for i in range(12):
            frame = np.zeros((48, 64, 3), np.uint8)
            frame[:, : 5 * (i + 1)] = (200, 80, 40)  # a bar that grows
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode())
        t = np.arange(44100) / 44100
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([tone, tone])
        for start in range(0, 44100, 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    return path


def test_frames_size_fps_and_audio_are_kept(clip, tmp_path):
    out = tmp_path / "out.mp4"
    n = stylize_video(clip, out, lambda rgb: 255.0 - rgb, smooth=0.5, progress=False)
    before, after = probe(clip), probe(out)
    assert n == 12 and after["frames"] == before["frames"] == 12
    assert (after["width"], after["height"]) == (64, 48)
    assert after["fps"] == before["fps"] == Fraction(12)
    assert after["audio"] and before["audio"]
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert first[:, 30:].mean() > 200  # inverted black is white


def test_cli_video_with_a_model(clip, tmp_path, capsys, model_file):
    out = tmp_path / "styled.mkv"
    code = main(["video", str(clip), "-o", str(out), "--model", str(model_file), "--quiet"])
    assert code == 0 and probe(out)["frames"] == 12


def test_corrupt_video_and_bad_output(tmp_path, clip, capsys, model_file):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:300])
    with pytest.raises(VideoError):
        stylize_video(broken, tmp_path / "o.mp4", lambda x: x, progress=False)
    with pytest.raises(OutputError, match="unknown video extension"):
        stylize_video(clip, tmp_path / "o.gifv", lambda x: x, progress=False)
    code = main(["video", str(broken), "-o", str(tmp_path / "o.mp4"), "--model", str(model_file)])
    assert code == 2 and "cannot" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()  # nothing half-written


def test_flow_consistency_steadies_a_flickering_pan(content):
    """A pan over a photo whose every frame is 'painted' with fresh noise (flicker): the
    consistent frames, compared along the known motion, differ far less than the painted
    ones, and keep their colours (no drift back to the photo)."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((240, 180)))
    rng = np.random.default_rng(0)
    steady = FlowConsistency(0.6)
    painted, shown = [], []
    for t in range(8):
        frame = np.ascontiguousarray(photo[20:160, 2 * t : 2 * t + 200])  # 2 px a frame
        styled = frame.astype(np.float32) * 0.6 + 60 + rng.normal(0, 12, frame.shape)
        painted.append(styled)
        shown.append(steady(frame, styled))

    def flicker(frames):  # frame t's pixel x is frame t-1's pixel x + 2
        return np.mean(
            [
                np.abs(b[8:-8, 8:-10] - a[8:-8, 10:-8]).mean()
                for a, b in zip(frames[:-1], frames[1:], strict=True)
            ]
        )

    assert flicker(shown) < 0.5 * flicker(painted)
    assert abs(np.mean(shown[-1]) - np.mean(painted[-1])) < 2


def test_cli_video_consistency_flags(clip, tmp_path, capsys, model_file):
    pytest.importorskip("cv2")
    for flags in (["--consistency", "off"], ["--consistency-strength", "0.5", "--smooth", "0.3"]):
        out = tmp_path / f"c{len(flags)}.mp4"
        code = main(
            [
                "video",
                str(clip),
                "--model",
                str(model_file),
                "-o",
                str(out),
                "--size",
                "32",
                "--quiet",
                *flags,
            ]
        )
        assert code == 0 and probe(out)["frames"] == 12
