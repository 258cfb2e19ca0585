"""Video: frame count, size, frame rate and audio survive; bad files give clear errors."""

from fractions import Fraction

import numpy as np
import pytest

from impasto.cli import main
from impasto.errors import OutputError, VideoError
from impasto.io.video import probe, stylize_video
from impasto.options import Media

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
    painted = []
    n = stylize_video(
        clip, out, lambda rgb: painted.append(rgb) or 255.0 - rgb, smooth=0.5, progress=False
    )
    before, after = probe(clip), probe(out)
    assert n == 12 and after["frames"] == before["frames"] == 12
    assert len(painted) == 12  # each frame painted once (an optimized frame takes minutes)
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
    steady = FlowConsistency(Media().consistency_strength)
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


def test_the_cheap_forward_flow_checks_the_backward_one_as_a_full_one_would(content):
    """The backward and forward flows point opposite ways along a known pan, and the
    forward flow, found unrefined from patches matched at half the size, checks the
    backward one as a flow found with the backward one's settings would."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import Flow

    photo = np.asarray(Image.open(content).convert("L").resize((240, 180)))
    last, grey = (np.ascontiguousarray(photo[20:160, x : x + 200]) for x in (0, 3))
    flow = Flow()
    back, ahead = flow.flows(grey, last)
    np.testing.assert_array_equal(back, flow.back.calc(grey, last, None))  # the same each time
    inner = (slice(20, -20), slice(20, -20))
    assert np.median(back[inner][..., 0]) == pytest.approx(3, abs=0.2)  # came from 3 px right
    assert np.median(ahead[inner][..., 0]) == pytest.approx(-3, abs=0.2)
    checked = flow.reliable(back, ahead)
    assert np.abs(checked - flow.reliable(back, flow.back.calc(last, grey, None))).mean() < 0.02
    assert checked[inner].mean() > 0.95  # a pan: followed everywhere inside


def test_the_flow_found_on_the_grid_is_the_one_found_at_the_frames_size(content):
    """The flows are found on a grid of half the frame's size: DIS, asked to match its
    patches down to half the frame's size, finds the same flow, value for value, from the
    frames themselves (and only scales it up)."""
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import Flow

    photo = np.asarray(Image.open(content).convert("RGB").resize((320, 240)))
    last, frame = (np.ascontiguousarray(photo[20:200, x : x + 280]) for x in (0, 5))
    flow, shape = Flow(), frame.shape[:2]
    assert flow.grid(shape) == (90, 140)
    on_grid = flow.back.calc(flow.grey(frame, shape), flow.grey(last, shape), None)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frame, last)]
    at_size = flow._dis(stride=5, refine=3, finest=1).calc(*grey, None)
    np.testing.assert_array_equal(flow.flow_to_frame(on_grid, shape), at_size)


def test_frames_too_small_for_a_flow_are_painted_each_alone():
    """DIS finds no flow on a grid under 12 px: such frames (a video painted at --size 16)
    are shown as painted, with no error, and a frame of a size it can follow is steadied."""
    pytest.importorskip("cv2")
    from impasto.methods.temporal import FlowConsistency

    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (9, 16), (22, 40)]:
        steady = FlowConsistency(0.9)
        for _ in range(3):
            photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            painted = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
            steady.expect(photo)
            np.testing.assert_array_equal(steady(photo, painted), painted)
    steady, photo = FlowConsistency(0.9), np.full((24, 40, 3), 128, np.uint8)
    steady(photo, np.zeros((24, 40, 3), np.float32))
    assert steady(photo, np.full((24, 40, 3), 100, np.float32)).mean() < 50  # kept the last


def test_round_trip_trusts_a_pan_and_not_what_came_from_outside():
    """The forward-backward check: a pan 3 px right is trusted where the pixels came from
    inside the frame, not in the 3 columns that came in from outside it, and not where the
    forward flow does not go back the same way."""
    pytest.importorskip("cv2")
    from impasto.methods.temporal import inside, round_trip

    h, w = 20, 30
    back = np.zeros((h, w, 2), np.float32)
    back[..., 0] = 3  # each pixel was 3 px to the right
    ahead = -back
    ahead[5:8, 5:8] = 0  # ... but these do not go back there
    moved, trusted = round_trip(back, ahead)
    assert moved[0, 0].tolist() == [3, 0] and moved[-1, -1].tolist() == [w + 2, h - 1]
    assert trusted[:, : w - 3].sum() == h * (w - 3) - 9
    assert not trusted[:, w - 3 :].any() and not trusted[5:8, 2:5].any()
    moved[0, :4] = [[0, 0], [w - 1, h - 1], [-0.01, 0], [0, h - 0.99]]  # at the edges
    assert inside(moved)[0, :4].tolist() == [True, True, False, False]


def test_flow_found_before_painting_gives_the_same_frames(content):
    """The flow found before each frame is painted (`steadied`, what `impasto video`
    does) gives exactly the frames the flow found after painting gives; a flow found for
    another photo is not used."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((240, 180)))
    frames = [np.ascontiguousarray(photo[20:160, 3 * t : 3 * t + 200]) for t in range(5)]
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 12, frames[0].shape).astype(np.float32) for _ in frames]

    def paint(frame):
        return frame * 0.6 + 60 + noise[next(i for i, f in enumerate(frames) if f is frame)]

    inline = FlowConsistency(0.9)
    expected = [inline(f, paint(f)) for f in frames]
    before = FlowConsistency(0.9).steadied(paint)
    for frame, want in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(before(frame), want)

    wrong = FlowConsistency(0.9)
    wrong(frames[0], paint(frames[0]))
    wrong.expect(frames[2])  # then called with frames[1]: its own flow is found
    np.testing.assert_array_equal(wrong(frames[1], paint(frames[1])), expected[1])


def test_flow_consistency_keeps_still_pixels_the_flow_cannot_follow(content):
    """Where the forward and backward flows disagree (as DIS's do on a white wall), a pixel
    whose photo did not change and which the flow does not move keeps the last frame as it
    stands, by the strength; one whose photo changed, or which the flow moves, keeps none
    of it (no trail behind what moves)."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((96, 64)))
    rng = np.random.default_rng(0)
    paint = lambda: rng.uniform(0, 255, photo.shape).astype(np.float32)  # noqa: E731
    steady = FlowConsistency(0.9)
    nowhere = np.zeros((32, 48, 1), np.float32)  # not one pixel the flows agree on
    steady.flow.reliable = lambda back, ahead: nowhere
    flow = np.zeros((32, 48, 2), np.float32)  # and no motion found (on the flow's grid)
    steady.flow.flows = lambda grey, last_grey: (flow, -flow)

    first = steady(photo, paint())
    again = paint()
    kept = steady(photo, again)  # the same photo: nothing changed, nothing moved
    np.testing.assert_allclose(kept, 0.1 * again + 0.9 * first, atol=0.5)

    changed = photo.copy()
    dark = photo[:, :48].mean(-1, keepdims=True) < 128
    changed[:, :48] = np.where(dark, 255, 0)  # the left half changes, the right does not
    fresh = paint()
    shown = steady(changed, fresh)
    assert np.abs(shown[8:-8, :40] - fresh[8:-8, :40]).max() < 1
    np.testing.assert_allclose(shown[:, 56:], 0.1 * fresh[:, 56:] + 0.9 * kept[:, 56:], atol=0.5)

    flow += 5  # now the flow moves every pixel by 7 px of the grid
    fresh = paint()
    assert np.abs(steady(changed, fresh) - fresh).max() < 1


def test_flow_consistency_follows_the_motion_around_where_the_flow_is_lost(content):
    """A flat band (bare asphalt, a white wall) where DIS's two flows disagree, in a frame
    that moves 3 px: the band is carried along the motion of the reliable pixels around
    it, trusted where the photos agree along that motion, and not where its photo
    changed (something new came into it)."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import Flow

    photo = np.asarray(Image.open(content).convert("L").resize((160, 120)))
    last = photo.copy()
    last[48:72] = 128  # the flat band
    grey = np.roll(last, 3, axis=1)  # the whole frame moved 3 px to the right
    grey[52:68, 100:116] = 250  # and something bright came into the band
    rng = np.random.default_rng(0)
    back = np.zeros((120, 160, 2), np.float32)
    back[..., 0] = -3  # where each pixel was: 3 px to its left
    back[48:72] = rng.uniform(-6, 6, (24, 160, 2))  # in the band, the flow is lost
    reliable = np.ones((120, 160, 1), np.float32)
    reliable[48:72] = 0
    still = np.zeros((120, 160, 1), np.float32)  # nothing is still: every pixel moved
    flow, trust = Flow().followed(grey, last, back, reliable, still)
    band = (slice(52, 68), slice(20, 80))
    np.testing.assert_allclose(flow[band], np.broadcast_to([-3, 0], flow[band].shape), atol=0.1)
    assert trust[band].min() > 0.8
    assert trust[56:64, 104:112].max() < 0.05  # the bright thing is new: nothing kept
    assert trust[:40].min() == 1  # the reliable pixels keep theirs


def test_flow_consistency_follows_no_motion_where_two_meet(content):
    """A flat band between a part of the frame that moves 6 px and one that stands still
    (a car beside its shadow on bare asphalt): the photos agree along either motion, and
    following their mean would drag the band's strokes along, a smear; where the motions
    around a pixel disagree, it keeps nothing."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import Flow

    last = np.asarray(Image.open(content).convert("L").resize((160, 120))).copy()
    last[48:72] = 128  # the flat band
    grey = last.copy()
    grey[:48, 6:] = last[:48, :-6]  # the top moved 6 px to the right, the rest stood still
    back = np.zeros((120, 160, 2), np.float32)
    back[:48, :, 0] = -6
    reliable = np.ones((120, 160, 1), np.float32)
    reliable[48:72] = 0  # in the band, the flow is lost
    still = np.zeros((120, 160, 1), np.float32)
    flow, trust = Flow().followed(grey, last, back, reliable, still)
    assert trust[56:64, 20:140].max() < 0.3
    assert trust[:40, 20:140].min() == trust[80:, 20:140].min() == 1


def test_flow_consistency_keeps_carried_strokes_sharp(content):
    """A slow pan by a fraction of a pixel a frame, painted consistently (each frame the
    picture itself): what is carried is warped again at every frame, so a blurring warp
    would soften it frame after frame. The last frame keeps most of its fine detail: 0.88
    at the default strength, 0.93 (0.87 at 0.9); bilinear warps along a half-size flow
    kept 0.71 at strength 0.6 and 0.37 at 0.9."""
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((320, 240)))
    steady = FlowConsistency(Media().consistency_strength)
    for t in range(10):
        move = np.float32([[1, 0, -1.5 * t], [0, 1, -0.5 * t]])
        frame = cv2.warpAffine(photo, move, (240, 180), flags=cv2.INTER_CUBIC)
        shown = steady(frame, frame.astype(np.float32))

    def detail(image):
        image = image.astype(np.float32)[10:-10, 10:-10]
        return np.abs(image - cv2.GaussianBlur(image, (0, 0), 1.0)).mean()

    assert detail(shown) > 0.8 * detail(frame)


def test_motion_at_the_features_of_a_frame_painted_with_a_margin(content):
    """What the one-pass method carries its features by: a pan of 8 px a frame is one cell
    of its relu4_1 features (8 px each), and the cells of the margin painted around the
    frame (reflected photo, not the scene) keep nothing of the last frame."""
    pytest.importorskip("cv2")
    from PIL import Image

    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((400, 300)))
    first, second = (np.ascontiguousarray(photo[50:178, x : x + 192]) for x in (0, 8))
    steady = FlowConsistency(0.9)
    assert steady.motion((20, 28), 16) is None  # nothing painted yet
    steady(first, first.astype(np.float32))
    steady.expect(second)
    map_x, map_y, keep = steady.motion((20, 28), 16)  # (128 + 32) / 8 by (192 + 32) / 8
    inner = (slice(3, -3), slice(3, -4))  # the frame's cells, less those new at its right
    cells_y, cells_x = np.mgrid[:20, :28]
    assert np.median((map_x - cells_x)[inner]) == pytest.approx(1, abs=0.05)
    assert np.abs(map_y - cells_y)[inner].max() < 0.25
    assert np.median(keep[inner]) == pytest.approx(0.9, abs=0.01)
    assert keep[:2].max() == keep[:, :2].max() == 0  # the margin's


@pytest.mark.parametrize("memory", ["channels_last", "contiguous_format"])
def test_carried_features_keep_the_frames_own_statistics(memory):
    """A frame's features blended with the last frame's keep the last frame's layout, and
    are given back their own mean and covariance: averaging over frames would narrow
    their spread, and the picture would lose the painting's texture with it. They come
    back in the memory format they came in (torch's networks run channels-last,
    onnxruntime takes plain arrays)."""
    import torch

    from impasto.methods.carried import Carried
    from impasto.methods.transforms import moments

    torch.manual_seed(0)
    memory = getattr(torch, memory)
    cells_x, cells_y = np.meshgrid(np.arange(12, dtype=np.float32), np.arange(10, dtype=np.float32))
    carried = Carried(lambda shape, margin: (cells_x, cells_y, np.full(shape, 0.9, np.float32)))
    first = (torch.randn(1, 8, 10, 12) * 3 + 1).contiguous(memory_format=memory)
    assert carried(first, 0) is first  # the first frame: nothing to carry
    second = torch.randn(1, 8, 10, 12).contiguous(memory_format=memory)
    out = carried(second, 0)
    assert out.is_contiguous(memory_format=memory)
    mine, wanted = moments([out[0].flatten(1)]), moments([second[0].flatten(1)])
    torch.testing.assert_close(mine.mean, wanted.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.covariance(), wanted.covariance(), atol=1e-4, rtol=0)
    layout = np.corrcoef(out.flatten().numpy(), first.flatten().numpy())[0, 1]
    assert layout > 0.9


@pytest.mark.parametrize("layout", ["channels_last", "contiguous_format"])
def test_features_warp_bicubically_as_grid_sample_does(layout):
    """The sparse warp of carried features gives grid_sample's bicubic result, borders
    repeated, for motion that leaves the grid too."""
    import torch
    import torch.nn.functional as F

    from impasto.methods.carried import warp_bicubic

    torch.manual_seed(0)
    features = torch.randn(1, 5, 9, 13).contiguous(memory_format=getattr(torch, layout))
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(13.0), indexing="ij")
    map_x, map_y = xs + torch.randn(9, 13) * 3, ys + torch.randn(9, 13) * 3
    grid = torch.stack([map_x * 2 / 12 - 1, map_y * 2 / 8 - 1], -1)[None]
    wanted = F.grid_sample(features, grid, "bicubic", "border", align_corners=True)
    torch.testing.assert_close(warp_bicubic(features, map_x, map_y), wanted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method, share", [("arbitrary", 0.75), ("fast", 0.95)])
def test_video_carries_the_networks_features_where_the_scene_is_still(
    content, style, method, share
):
    """A still camera whose frames differ by sensor noise alone: the network (one-pass or
    fast) paints each frame anew, and flow consistency blends the pictures. Carrying the
    network's features along the flow as well (what `impasto video` does) paints the
    same strokes frame after frame: steadier, and with more of the fine detail that the
    blend of the pictures alone averages away."""
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    import impasto
    from impasto.methods.temporal import FlowConsistency

    photo = np.asarray(Image.open(content).convert("RGB").resize((224, 160)), np.float32)
    rng = np.random.default_rng(0)
    noisy = [photo + rng.normal(0, 6, photo.shape) for _ in range(8)]
    frames = [np.clip(f, 0, 255).astype(np.uint8) for f in noisy]
    look = style if method == "arbitrary" else "candy"
    paint = impasto.painter(method, look, size=224)
    painted = [paint(Image.fromarray(f)) for f in frames]
    # pixel by pixel in memory, as the flow's warps and the encoder take them
    assert all(p.shape == (160, 224, 3) and p.flags.c_contiguous for p in painted)
    blended = FlowConsistency(0.9)
    pictures = [blended(f, p) for f, p in zip(frames, painted, strict=True)]
    steady = FlowConsistency(0.9)
    carrying = impasto.painter(method, look, size=224, steady=steady)
    carried = [steady.steadied(lambda f: carrying(Image.fromarray(f)))(f) for f in frames]

    def flicker(shown):
        return np.mean(
            [np.abs(b - a)[8:-8, 8:-8].mean() for a, b in zip(shown[:-1], shown[1:], strict=True)]
        )

    def detail(shown):
        return np.mean(
            [np.abs(x - cv2.GaussianBlur(x, (0, 0), 1.0))[8:-8, 8:-8].mean() for x in shown[1:]]
        )

    assert flicker(carried) < 0.95 * flicker(pictures) < 0.5 * flicker(painted)
    # of the detail each frame painted alone has, the blend of the pictures loses 8 % (one
    # pass, fast); carrying the features too, 5 % (one pass) and 8 % (fast)
    lost = detail(painted) - detail(pictures)
    assert lost > 0.03 * detail(painted)
    assert detail(painted) - detail(carried) < share * lost  # of what the pictures' blend loses


def test_carried_features_of_flat_frames_stay_finite(model_file):
    """Frames of two flat colours give the fast network's features a covariance that
    rounding leaves a little short of positive: carried, they are whitened by it, and
    must come out as pictures, not NaN."""
    pytest.importorskip("cv2")
    from PIL import Image

    import impasto
    from impasto.methods.temporal import FlowConsistency

    steady = FlowConsistency(0.9)
    painter = impasto.painter("fast", model=model_file, steady=steady, size=64)
    paint = steady.steadied(lambda f: painter(Image.fromarray(f)))
    for i in range(12):  # a bar that grows over black, as the test clip's
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, : 5 * (i + 1)] = (200, 80, 40)
        shown = paint(frame)
        assert np.isfinite(shown).all() and shown.std() > 1, i


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


def _clip(path, frames=6, size=(64, 48), rotation=None):
    """A clip of `frames` frames with a white band along its top edge, optionally with a
    display rotation (counter-clockwise degrees), as phones record."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for _ in range(frames):
            frame = np.full((size[1], size[0], 3), 60, np.uint8)
            frame[:10] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_rotated_clip_comes_out_upright(tmp_path):
    rotated = _clip(tmp_path / "phone.mp4", rotation=90)
    assert (probe(rotated)["width"], probe(rotated)["height"]) == (48, 64)
    out = tmp_path / "out.mp4"
    stylize_video(rotated, out, lambda rgb: rgb.astype(np.float32), progress=False)
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        rgb = frame.to_ndarray(format="rgb24")
    assert rgb.shape == (64, 48, 3) and frame.rotation == 0
    assert rgb[:, :8].mean() > 200 and rgb[:, 12:].mean() < 100  # the band turned left


def test_ctrl_c_keeps_a_playable_video_of_the_frames_so_far(clip, tmp_path):
    from impasto.errors import VideoInterrupted

    def stop_at_five(done, total, frame):
        if done == 5:
            raise KeyboardInterrupt

    out = tmp_path / "partial.mp4"
    with pytest.raises(VideoInterrupted) as stopped:
        stylize_video(clip, out, lambda x: x, progress=False, on_frame=stop_at_five)
    assert stopped.value.frames == 5 and probe(out)["frames"] == 5

    def fail(done, total, frame):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):  # any other stop leaves nothing behind
        stylize_video(clip, tmp_path / "none.mp4", lambda x: x, progress=False, on_frame=fail)
    assert not (tmp_path / "none.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial.mp4"]


def test_audio_only_and_bytes(tmp_path, clip, capsys, model_file):
    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as out:
        audio = out.add_stream("aac", rate=44100, layout="mono")
        for start in range(0, 44100, 1024):
            samples = np.zeros((1, 1024), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    code = main(["video", str(sound), "--model", str(model_file), "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "has no video stream" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()
    assert probe(clip.read_bytes())["frames"] == 12  # an upload's bytes, not a file
    with pytest.raises(VideoError, match="the video: cannot read"):
        probe(b"not a video at all" * 100)


def test_cli_video_like_a_painting(clip, tmp_path, capsys, style):
    """--painting paints the video in one pass like any painting; the frames move the
    photo towards the painting, and a trained network's flag is refused."""
    out = tmp_path / "painted.mp4"
    flags = ["--size", "32", "--quiet", "--consistency", "off"]
    code = main(["video", str(clip), "--painting", str(style), "-o", str(out), *flags])
    assert code == 0 and probe(out)["frames"] == 12
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    assert first.std() > 5  # painted, not blank
    code = main(["video", str(clip), "--painting", str(style), "--tile", "512", *flags])
    assert code == 2 and "--tile: not an option of --painting" in capsys.readouterr().err


def test_api_video_reports_frames(clip, tmp_path, style):
    import impasto

    seen = []
    frames = impasto.video(
        clip,
        tmp_path / "api.mp4",
        style,
        method="arbitrary",
        size=32,
        on_frame=lambda done, total, frame: seen.append((done, total, frame.shape)),
    )
    assert frames == 12 and [s[0] for s in seen] == list(range(1, 13))
    assert seen[-1][2] == (24, 32, 3)
    with pytest.raises(impasto.ImpastoError, match="fast or arbitrary"):
        impasto.video(clip, tmp_path / "x.mp4", style, method="optimize")


def test_cli_webcam_paints_with_a_network_or_a_painting(monkeypatch, content, style, model_file):
    """The webcam's painting function, with the camera's loop replaced: each key's style,
    the blend of all, and a painting, on frames carried along by flow consistency."""
    pytest.importorskip("cv2")
    from PIL import Image

    import impasto.io.webcam

    photo = Image.open(content).convert("RGB").resize((64, 48))
    shown = {}

    def camera(paint, styles, camera, size, first):
        shown[tuple(styles)] = [paint(photo, first), paint(photo, None), paint(photo, 1)]

    monkeypatch.setattr(impasto.io.webcam, "run_webcam", camera)
    assert main(["webcam", "--model", str(model_file), "--size", "32"]) == 0
    assert main(["webcam", "--painting", str(style), "--size", "32"]) == 0
    (names, frames), (painting, looks) = shown.items()
    assert len(names) == 3 and painting == ("starry_night",)
    assert all(f.size == (32, 24) for f in frames + looks)
    assert np.abs(np.asarray(frames[0], float) - np.asarray(frames[2], float)).mean() > 1


def test_variable_frame_rate_and_webm_audio(clip, tmp_path):
    """Timestamps 100 and 33 ms apart come out as they went in; AAC audio, which WebM
    cannot hold, is encoded again (Opus) rather than refused."""
    from fractions import Fraction

    uneven = tmp_path / "uneven.mp4"
    with av.open(str(uneven), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        t = 0
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), "rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(stream.encode(frame))
            t += 33 if i % 2 else 100
        out.mux(stream.encode())

    def times(path):
        with av.open(str(path)) as container:
            return [round(float(f.time), 3) for f in container.decode(video=0)]

    out = tmp_path / "out.mp4"
    stylize_video(uneven, out, lambda rgb: rgb.astype(np.float32), progress=False)
    assert times(out) == times(uneven) and times(uneven)[:3] == [0.0, 0.1, 0.133]
    webm = tmp_path / "out.webm"
    assert stylize_video(clip, webm, lambda rgb: rgb.astype(np.float32), progress=False) == 12
    with av.open(str(webm)) as container:
        audio = container.streams.audio[0]
        seconds = sum(f.samples for f in container.decode(audio)) / audio.rate
    assert audio.codec_context.name == "opus" and abs(seconds - 1.0) < 0.1
