"""A video by optimization (Ruder et al. 2016): frames from the last painting carried along
the motion, a temporal loss, a frames folder a stopped run resumes from."""

import numpy as np
import pytest
from PIL import Image

import impasto
from impasto.cli import main
from impasto.errors import OptionError, VideoInterrupted
from impasto.io.video import probe

av = pytest.importorskip("av")
pytest.importorskip("cv2")

FAST = {"size": 48, "iterations": 8, "frame_iterations": 4}  # tiny: a test, not a picture


@pytest.fixture(scope="module")
def pan(content, tmp_path_factory):
    """Four frames of 64x48 panning 3 px a frame over a photo."""
    from clips import panning_clip

    return panning_clip(content, tmp_path_factory.mktemp("pan") / "pan.mp4", 4, (64, 48), 3)


def test_cli_paints_every_frame_and_tidies_up(pan, style, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    flags = ["--size", "48", "--iterations", "8", "--frame-iterations", "4", "--quiet"]
    assert main(["stylize-video", str(pan), "--style", str(style), "-o", str(out), *flags]) == 0
    assert probe(out)["frames"] == 4 and (probe(out)["width"], probe(out)["height"]) == (48, 36)
    assert not (tmp_path / "out.mp4.frames").exists()  # the frames folder goes when done
    code = main(["stylize-video", str(pan), "--style", str(style), "-o", "x.gif", *flags])
    assert code == 2 and "unknown video extension" in capsys.readouterr().err


def test_a_stopped_run_resumes_from_its_last_frame(pan, style, tmp_path, monkeypatch):
    out, folder = tmp_path / "out.mp4", tmp_path / "frames"

    def stop_after_two(done, total, frame):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(VideoInterrupted):
        impasto.stylize_video(pan, out, style, frames=folder, on_frame=stop_after_two, **FAST)
    assert probe(out)["frames"] == 2  # playable, up to the last frame
    assert sorted(p.name for p in folder.glob("*.png")) == ["000001.png", "000002.png"]
    kept = np.asarray(Image.open(folder / "000002.png"))

    painted = []
    run = impasto.Stylizer.run
    monkeypatch.setattr(
        impasto.Stylizer, "run", lambda self, *a, **k: painted.append(1) or run(self, *a, **k)
    )
    written = []
    assert (
        impasto.stylize_video(
            pan, out, style, frames=folder, on_frame=lambda d, t, f: written.append(f), **FAST
        )
        == 4
    )
    assert len(painted) == 2  # frames 3 and 4 only
    assert np.abs(written[1].astype(float) - kept).max() <= 1  # frame 2 as it was painted
    assert probe(out)["frames"] == 4 and not folder.exists()


def test_a_frames_folder_of_another_run_is_refused(pan, style, content, tmp_path):
    folder = tmp_path / "frames"
    with pytest.raises(VideoInterrupted):
        impasto.stylize_video(pan, tmp_path / "a.mp4", style, frames=folder, on_frame=_stop, **FAST)
    with pytest.raises(OptionError, match="frames of another run"):
        impasto.stylize_video(pan, tmp_path / "b.mp4", content, frames=folder, **FAST)


def _stop(done, total, frame):
    raise KeyboardInterrupt


def test_the_temporal_loss_keeps_a_frame_near_the_last_painting(pan, style, tmp_path):
    """The second frame strays less from the first one's painting, carried along the 3-px
    pan, with the temporal loss than without it."""

    def drift(weight: float) -> float:
        frames = []
        impasto.stylize_video(
            pan,
            tmp_path / f"w{weight}.mp4",
            style,
            temporal_weight=weight,
            on_frame=lambda d, t, f: frames.append(f.astype(float)),
            **{**FAST, "frame_iterations": 20},
        )
        # 3 px at 64 px wide is 2.25 px at 48: compare inside, shifted by 2
        return np.abs(frames[1][4:-4, 4:-6] - frames[0][4:-4, 6:-4]).mean()

    assert drift(2000.0) < 0.7 * drift(0.0)
