"""Video without flicker: each new stylized frame keeps what the last one painted, carried
along the motion, wherever the motion is known.

Optical flow between consecutive photos (OpenCV's DIS, tens of milliseconds a frame on a
CPU) says where each pixel of the new frame was in the last one. The last *output* is
warped there and blended into the new one, except where the flow is unreliable: pixels
that the forward and backward flows do not agree on (occlusions, disocclusions, fast
motion) keep the new frame as painted. Blending outputs, not photos, carries strokes from
frame to frame, so they stay put on still and moving things alike (Ruder et al. 2016 at
inference; Lai et al. 2018's warping error measures it: benchmarks/video.py).

The two flows also disagree where there is little to follow: a white wall, bare asphalt.
There a pixel whose photo did not change, and where the flow finds no motion, keeps the
last frame as it stands, unwarped, by the same strength: what flickered most (a
network paints flat areas anew at every frame) holds still, and nothing that moves
leaves a trail. Any other such pixel follows the motion of the reliable pixels around
it, as far as the photos agree along that motion and where that motion is one: the
asphalt between moving cars, seen by a camera whose frames differ by noise and
compression, is carried too; what came into view is not, nor is a still shadow beside a
moving car (following the mean of the two motions would drag its strokes along).

What is carried is blended again at the next frame, so its sharpness compounds: the
output is warped bicubically (bilinear resampling, a blur, softened strokes frame after
frame), so that a frame can keep most of the last one without smearing it.

The flows, and how far they are trusted, are found on a grid of half the frame's size
(`Flow.grid`) and scaled up to the frame's: DIS matches its patches down to that size
anyway and only scales its flow up from there (the backward flow is the same, value for
value), and the trust's arithmetic over a quarter of the pixels costs a quarter as much.

The networks blend their features too (`motion`, used by methods.carried.Carried):
before a frame is painted from them (the one-pass network's painted features, the fast
network's after its residual blocks), they keep as much of the last frame's, carried
along the same flow, so the network paints its strokes where they were, and the
pictures' blend then averages strokes that agree instead of fading ones that do not.

The flow is found before the frame is painted (`FlowConsistency.expect(photo)`), so the
network can carry its features along it; its two directions are found one after the
other, as DIS's own threads keep both cores busy. It is not found while the frame is
painted: on 2 CPU cores a flow thread beside the network slowed the network by more
than the flow's own time (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ..errors import OptionError

CONSISTENCY = ("off", "flow")
# Sizes below are in px of the flow's grid, half the frame's (`Flow.grid`).
# A pixel is still where its photo changed by well under STILL_CHANGE grey levels and the
# flow moves it by well under STILL_MOTION px (each takes the weight to 1/e)
STILL_CHANGE, STILL_MOTION = 8.0, 1.0
# `followed`: cells (px), their blur (cells), photos' agreement (grey levels), motions' spread (px)
FOLLOW_CELL, FOLLOW_REACH, FOLLOW_AGREE, FOLLOW_SPREAD = 4, 1.5, 6.0, 1.0
BLUR = 0.75  # px: trust and photos' differences are blurred so, and no seams show
SMALLEST = 12  # px: DIS finds no flow on a grid narrower (a frame under 23 px)
# A video's motion at a grid of features (FlowConsistency.motion): given the grid's (h, w)
# and the px of margin painted around the frame, where each cell was in the last frame
# (x and y maps, in cells) and how much of it to keep; None: nothing to carry
Motion = Callable[[tuple[int, int], int], tuple[np.ndarray, np.ndarray, np.ndarray] | None]


def _cv2():
    try:
        import cv2
    except ImportError:
        raise OptionError("flow consistency needs OpenCV: pip install 'impasto[video]'") from None
    return cv2


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> np.ndarray:
    """Each pixel's x and y, (h, w, 2) float32: made once per frame size, not per frame."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = np.dstack([xs, ys])
    grid.flags.writeable = False  # shared between calls
    return grid


def moved_grid(back: np.ndarray) -> np.ndarray:
    """Where each pixel was in the last frame, by its (h, w, 2) backward flow: an (h, w, 2)
    map of x and y, the one map `cv2.remap` takes (as fast as two, and one contiguous
    sum instead of two strided ones: ~0.1 ms against ~1.3 at 640x360)."""
    return _pixel_grid(*back.shape[:2]) + back


def inside(moved: np.ndarray) -> np.ndarray:
    """Which points of an (h, w, 2) map of x and y (`moved_grid`) lie inside an (h, w)
    frame, (h, w) bool."""
    h, w = moved.shape[:2]
    return _cv2().inRange(moved, (0, 0), (w - 1, h - 1)) > 0


def round_trip(back: np.ndarray, ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel was in the last frame (`moved_grid` of the backward flow `back`),
    and whether that can be trusted, (h, w) bool: going back then ahead (the forward flow
    `ahead`, from the last frame) returns to within ~10 % of the motion, or ~0.35 px
    (the flow's grid: ~0.7 px of the frame), of the start (a forward-backward check:
    occlusions, disocclusions and fast motion fail it), and where it came from is inside
    the frame."""
    cv2 = _cv2()
    moved = moved_grid(back)
    there = cv2.remap(ahead, moved, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mismatch = _squared(back + there)
    scale = _squared(back) + _squared(there)
    return moved, (mismatch < 0.01 * scale + 0.125) & inside(moved)


def _weighted(values: np.ndarray, weight: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(h, w, c) `values` times an (h, w, 1) `weight`, pixel by pixel (into `out` if
    given): numpy's broadcast over so short a last axis is 3-5x slower than OpenCV's
    product with the weight repeated per channel."""
    cv2 = _cv2()
    return cv2.multiply(values, cv2.merge([weight] * values.shape[-1]), dst=out)


def _squared(flow: np.ndarray) -> np.ndarray:
    """|v|² of each (h, w, 2) flow vector (20x faster than numpy's .sum(-1) over an axis of 2)."""
    x, y = flow[..., 0], flow[..., 1]
    return x * x + y * y


class Flow:
    """Optical flow between consecutive frames, and what it carries from one to the next:
    found from photos in grey on the flow's grid (`grey`), handed back at the frame's size."""

    def __init__(self):
        self.cv2 = _cv2()
        # The backward flow carries the pictures and features: patches every 5 px, refined
        # 3 times, on the grid. The forward flow only checks it (`reliable`): unrefined, its
        # patches matched down to half the grid's size, in a fraction of the backward one's
        # time. Slower settings flicker a little less (docs/benchmarks.md)
        self.back = self._dis(stride=5, refine=3, finest=0)
        self.ahead = self._dis(stride=4, refine=0, finest=1)

    def _dis(self, stride: int, refine: int, finest: int):
        """DIS's medium preset with 12 gradient-descent iterations instead of 25, patches
        every `stride` px instead of 3, `refine` variational refinement iterations
        instead of 5 (at each scale), and patches matched down to the scale `finest`
        (0: the grid's size, half the frame's, as the preset matches them; 1: half the
        grid's), from where the flow is scaled up to the grid's size. The fast preset, or
        a backward flow matched down to a quarter of the frame's size, misplaced strokes
        enough to smear them when blended strongly."""
        dis = self.cv2.DISOpticalFlow_create(self.cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setGradientDescentIterations(12)
        dis.setPatchStride(stride)
        dis.setVariationalRefinementIterations(refine)
        dis.setFinestScale(finest)
        return dis

    @staticmethod
    def grid(shape: tuple[int, int]) -> tuple[int, int]:
        """The (h, w) of the flow's grid for a frame of (h, w) `shape`: half its size."""
        return (shape[0] + 1) // 2, (shape[1] + 1) // 2

    def follows(self, shape: tuple[int, int]) -> bool:
        """Whether a flow can be found for frames of (h, w) `shape`: DIS needs `SMALLEST` px
        of grid each way; smaller frames are painted each alone."""
        return min(self.grid(shape)) >= SMALLEST

    def grey(self, photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The photo in grey on the flow's grid, for a frame of (h, w) `shape`: what the
        flow is found on."""
        return self.on_grid(self.cv2.cvtColor(photo, self.cv2.COLOR_RGB2GRAY), shape)

    def on_grid(self, image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """`image` (a grey photo) scaled to the flow's grid for a frame of (h, w) `shape`."""
        cv2 = self.cv2
        return cv2.resize(image, self.grid(shape)[::-1], interpolation=cv2.INTER_AREA)

    def to_frame(
        self, flow: np.ndarray, trust: np.ndarray, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A flow (h, w, 2) and its trust (h, w, 1) on the grid, scaled up bilinearly to a
        frame of (H, W) `shape`, the flow in the frame's px (as DIS scales its own up)."""
        return self.flow_to_frame(flow, shape), self.cv2.resize(trust, shape[::-1])[..., None]

    def flow_to_frame(self, flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """A flow (h, w, 2) on the grid, scaled up bilinearly to the frame's (H, W) `shape`."""
        cv2, (h, w) = self.cv2, shape
        return cv2.multiply(cv2.resize(flow, (w, h)), (w / flow.shape[1], h / flow.shape[0], 0, 0))

    def carry(
        self, grey: np.ndarray, last_grey: np.ndarray, last: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`last` (h, w, c float32, the last frame's picture) carried along the motion from
        `last_grey` to `grey` (both made by `grey`) to where its pixels are in this frame,
        and how far each pixel can be trusted, (h, w, 1) in [0, 1]: 0 where the forward
        and backward flows disagree (occlusions, disocclusions, fast motion) or the pixel
        came from outside the frame."""
        back, ahead = self.flows(grey, last_grey)
        flow, trust = self.to_frame(back, self.reliable(back, ahead), last.shape[:2])
        return self.warp(last, flow), trust

    def warp(self, last: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """`last` (h, w, c float32) carried along the backward `flow`, bicubically."""
        cv2 = self.cv2
        moved = moved_grid(flow)
        warped = cv2.remap(last, moved, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return warped.reshape(last.shape)

    def trusted(
        self, grey: np.ndarray, last_grey: np.ndarray, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """What flow consistency carries each pixel of a frame of (h, w) `shape` along, from
        `last_grey` to `grey` (both made by `grey`), and how far it trusts that (`followed`)."""
        back, ahead = self.flows(grey, last_grey)
        reliable = self.reliable(back, ahead)
        still = self.still(grey, last_grey, back)
        return self.to_frame(*self.followed(grey, last_grey, back, reliable, still), shape)

    def reliable(self, back: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """How far each pixel's backward flow can be trusted, (h, w, 1) in [0, 1]: going
        back then ahead must return to the start, and where it came from must be inside
        the frame (`round_trip`)."""
        reliable = round_trip(back, ahead)[1].astype(np.float32)
        return self.cv2.GaussianBlur(reliable, (0, 0), BLUR)[..., None]

    def still(self, grey: np.ndarray, last_grey: np.ndarray, back: np.ndarray) -> np.ndarray:
        """How still each pixel is, (h, w, 1) in (0, 1]: 1 where the grey photo did not
        change from the last one and the backward flow `back` does not move it."""
        cv2 = self.cv2
        change = cv2.GaussianBlur(cv2.absdiff(grey, last_grey).astype(np.float32), (0, 0), BLUR)
        motion = cv2.GaussianBlur(np.sqrt(_squared(back)), (0, 0), BLUR)
        still = np.exp(-change / STILL_CHANGE - (motion / STILL_MOTION) ** 2)
        return still[..., None]

    def followed(
        self,
        grey: np.ndarray,
        last_grey: np.ndarray,
        back: np.ndarray,
        reliable: np.ndarray,
        still: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The flow each pixel is carried along, (h, w, 2), and how far it is trusted, (h, w,
        1) in [0, 1]: the backward flow `back` where it is `reliable`; elsewhere none where
        the pixel is `still`, and otherwise the motion of the reliable pixels around it
        (`FOLLOW_CELL`-px cells, blurred over `FOLLOW_REACH` of them), trusted as far as
        the photos agree along it (within ~`FOLLOW_AGREE` grey levels) and the motions
        around are one (spread by under ~`FOLLOW_SPREAD` px): a flat wall or bare
        asphalt, where DIS's two flows disagree for want of texture, moves with what
        surrounds it, but the shadow beside a moving car is not dragged along by the
        mean of the car's motion and its own."""
        cv2 = self.cv2
        h, w = back.shape[:2]
        cells = (max(1, w // FOLLOW_CELL), max(1, h // FOLLOW_CELL))

        def nearby(weighted) -> np.ndarray:  # summed over the reliable pixels around
            summed = cv2.resize(weighted, cells, interpolation=cv2.INTER_AREA)
            return cv2.GaussianBlur(summed, (0, 0), FOLLOW_REACH)

        reliable_back = _weighted(back, reliable)
        weight = nearby(reliable)[..., None] + 1e-4  # how many reliable pixels
        mean = nearby(reliable_back) / weight
        spread = nearby(_squared(back)[..., None] * reliable)[..., None] / weight
        spread -= _squared(mean)[..., None]
        # one motion around (a pan, a still camera), not two (a car beside its shadow)
        single = np.exp(-np.maximum(spread[..., 0], 0) / FOLLOW_SPREAD**2) * (weight[..., 0] > 0.05)
        around = cv2.resize(mean, (w, h))
        single = cv2.resize(single, (w, h))
        moved = moved_grid(around)
        there = cv2.remap(last_grey, moved, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        differ = cv2.GaussianBlur(cv2.absdiff(grey, there).astype(np.float32), (0, 0), BLUR)
        agree = np.exp(-((differ / FOLLOW_AGREE) ** 2)) * inside(moved) * single
        loose = (1 - reliable) * (1 - still)  # neither reliable nor still: follow around
        flow = reliable_back + _weighted(around, loose)
        trust = reliable + (1 - reliable) * still + loose * agree[..., None]
        return flow, trust

    def flows(self, grey: np.ndarray, last_grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward (new pixel -> where it was) and forward flow."""
        return self.back.calc(grey, last_grey, None), self.ahead.calc(last_grey, grey, None)


class FlowConsistency:
    """Call with each photo (H, W, 3 uint8) and its stylized frame (h, w, 3, float 0-255),
    in order; returns the frame to show. `strength` in [0, 1): how much of the last frame
    a pixel keeps, carried along the flow where the flow is reliable, as it stands where
    the flow is not but the pixel is still, and along the motion around it elsewhere, as
    far as the photos agree along it (`Flow.followed`)."""

    def __init__(self, strength: float):
        if not 0.0 <= strength < 1.0:
            raise OptionError(f"consistency strength must be in [0, 1), not {strength}")
        self.flow = Flow()
        self.strength = strength
        self.last: tuple[np.ndarray, np.ndarray] | None = None  # grey photo (`Flow.grey`), output
        # the next photo, its grey, and what it is carried along from the last (the flow
        # and its trust at the last output's size, `Flow.trusted`), found before it is painted
        self.pending: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]] | None = None

    def expect(self, photo: np.ndarray) -> None:
        """Find how `photo`, the next one, moved from the last photo, before it is
        painted: the network's features are carried along it (`motion`), and the frame's
        call blends the pictures along it."""
        if self.last is None or self.strength == 0:
            return
        last_grey, shape = self.last[0], self.last[1].shape[:2]  # the output's size
        if not self.flow.follows(shape):
            return
        grey = self.flow.grey(photo, shape)
        self.pending = (photo, grey, self.flow.trusted(grey, last_grey, shape))

    def motion(
        self, shape: tuple[int, int], margin: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For a network's features of the frame being painted (the photo last given to
        `expect`), an (h, w) `shape` grid over the frame painted with `margin` px of
        reflected photo around it: where each cell was in the last frame, x and y maps in
        cells, and how much of the last frame's cell it keeps (the pictures' trust, times
        the strength; none in the margin). None when nothing is to be carried (the first
        frame, or no flow expected)."""
        if self.pending is None or self.last is None:
            return None
        flow, trust = self.pending[2]
        cv2, (h, w) = self.flow.cv2, shape
        flow = cv2.copyMakeBorder(flow, *[margin] * 4, cv2.BORDER_REFLECT_101)
        trust = cv2.copyMakeBorder(trust[..., 0], *[margin] * 4, cv2.BORDER_CONSTANT, value=0)
        scale = np.array([w / flow.shape[1], h / flow.shape[0]], np.float32)
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) * scale
        trust = cv2.resize(trust, (w, h), interpolation=cv2.INTER_AREA) * self.strength
        moved = moved_grid(flow)
        return moved[..., 0], moved[..., 1], trust

    def steadied(
        self, paint: Callable[[np.ndarray], np.ndarray]
    ) -> Callable[[np.ndarray], np.ndarray]:
        """`paint` (photo -> stylized frame) with its frames made steady, the flow found
        before each one is painted."""

        def steady(photo: np.ndarray) -> np.ndarray:
            self.expect(photo)
            return self(photo, paint(photo))

        return steady

    def __call__(self, photo: np.ndarray, styled: np.ndarray) -> np.ndarray:
        styled = styled.astype(np.float32)
        shape, grey, found = styled.shape[:2], None, None
        if self.pending is not None:
            expected, grey, found = self.pending
            self.pending = None
            # found for another photo, or at the last output's size, differing: of no use
            if expected is not photo or found[0].shape[:2] != shape:
                grey = found = None
        if grey is None:
            grey = self.flow.grey(photo, shape)
        if (
            self.last is None
            or self.last[1].shape != styled.shape
            or self.strength == 0
            or not self.flow.follows(shape)
        ):
            self.last = (grey, styled)
            return styled
        last_grey, last = self.last
        flow, trust = found or self.flow.trusted(grey, last_grey, shape)
        out = self.flow.warp(last, flow)  # each pixel keeps the last frame carried along
        out -= styled  # its flow, as far as that is trusted
        _weighted(out, trust * self.strength, out=out)
        out += styled
        # clipped: bicubic warping overshoots at edges, and what is kept is warped again
        np.clip(out, 0, 255, out=out)
        self.last = (grey, out)
        return out


def consistency(media) -> FlowConsistency | None:
    """The frame-to-frame consistency `media` (options.Media) asks for, or None."""
    if media.consistency == "off":
        return None
    return FlowConsistency(media.consistency_strength)
