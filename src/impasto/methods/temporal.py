"""Video without flicker: each new stylized frame keeps what the last one painted, carried
along the motion, wherever the motion is known.

Optical flow between consecutive photos (OpenCV's DIS, tens of milliseconds a frame on a
CPU) says where each pixel of the new frame was in the last one. The last *output* is
warped there and blended into the new one, except where the flow is unreliable: pixels
that the forward and backward flows do not agree on (occlusions, disocclusions, fast
motion) keep the new frame as painted. Blending outputs, not photos, carries strokes from
frame to frame, so they stay put on still and moving things alike (Ruder et al. 2016 at
inference; Lai et al. 2018's warping error measures it: benchmarks/video.py).

The two flows also disagree where there is nothing to follow: a white wall, bare asphalt.
There a pixel whose photo did not change, and where the flow finds no motion, keeps the
last frame as it stands, unwarped, by the same strength: what flickered most (a
network paints flat areas anew at every frame) holds still, and nothing that moves
leaves a trail.

What is carried is blended again at the next frame, so its sharpness compounds: the
output is warped bicubically (bilinear resampling, a blur, softened strokes frame after
frame) along a flow found at the frame's full size, so that a frame can keep most of the
last one without smearing it.

The one-pass method blends at its network's features too (`motion`, used by
methods.arbitrary.Carried): before a frame is decoded, its painted features keep as much
of the last frame's, carried along the same flow, so the network paints its strokes
where they were, and the pictures' blend then averages strokes that agree instead of
fading ones that do not.

The flow needs only the photos, so it can be found while the frame is painted:
`FlowConsistency.expect(photo)` starts it in a thread (OpenCV and the networks let go of
Python's lock while they compute; on 2 CPU cores this hides about half of its cost).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..errors import OptionError

CONSISTENCY = ("off", "flow")
# A pixel is still where its photo changed by well under STILL_CHANGE grey levels and the
# flow moves it by well under STILL_MOTION px (each takes the weight to 1/e)
STILL_CHANGE, STILL_MOTION = 8.0, 2.0


def _cv2():
    try:
        import cv2
    except ImportError:
        raise OptionError("flow consistency needs OpenCV: pip install 'impasto[video]'") from None
    return cv2


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's x and y, (h, w) float32: made once per frame size, not per frame."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    xs.flags.writeable = ys.flags.writeable = False  # shared between calls
    return xs, ys


def _moved_grid(back: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel was in the last frame, x and y maps, by its (h, w, 2) backward flow."""
    xs, ys = _pixel_grid(*back.shape[:2])
    return xs + back[..., 0], ys + back[..., 1]


def _squared(flow: np.ndarray) -> np.ndarray:
    """|v|² of each (h, w, 2) flow vector (20x faster than numpy's .sum(-1) over an axis of 2)."""
    x, y = flow[..., 0], flow[..., 1]
    return x * x + y * y


class Flow:
    """Optical flow between consecutive frames, and what it carries from one to the next."""

    def __init__(self):
        self.cv2 = _cv2()
        # DIS's medium preset at the frame's size (~11 ms a flow at 640x360 on 2 CPU
        # cores), with 12 gradient-descent iterations instead of 25, patches every 4 px
        # instead of 3 and 3 variational refinement iterations instead of 5: as steady,
        # 1.5x faster. The fast preset, or flow found at half size (~2-8 ms), misplaced
        # strokes enough to smear them when blended strongly (docs/benchmarks.md)
        self.dis = self.cv2.DISOpticalFlow_create(self.cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.dis.setGradientDescentIterations(12)
        self.dis.setPatchStride(4)
        self.dis.setVariationalRefinementIterations(3)

    def grey(self, photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The photo in grey at (h, w) `shape`: what the flow is found on."""
        cv2 = self.cv2
        grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
        if grey.shape != shape:
            grey = cv2.resize(grey, shape[::-1], interpolation=cv2.INTER_AREA)
        return grey

    def carry(
        self,
        grey: np.ndarray,
        last_grey: np.ndarray,
        last: np.ndarray,
        flows: tuple[np.ndarray, np.ndarray] | None = None,
        reliable: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`last` (h, w, c float32, the last frame's picture) carried along the motion to
        where its pixels are in this frame, and how far each pixel can be trusted, (h, w, 1)
        in [0, 1]: 0 where the forward and backward flows disagree (occlusions,
        disocclusions, fast motion) or the pixel came from outside the frame. `flows`:
        the two greys' `flows`, and `reliable` theirs, if already found."""
        cv2 = self.cv2
        back, ahead = flows or self.flows(grey, last_grey)
        map_x, map_y = _moved_grid(back)
        warped = cv2.remap(last, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        if reliable is None:
            reliable = self.reliable(back, ahead)
        return warped.reshape(last.shape), reliable

    def reliable(self, back: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """How far each pixel's backward flow can be trusted, (h, w, 1) in [0, 1]: going
        back then ahead must return to the start (a forward-backward check), and where it
        came from must be inside the frame."""
        cv2 = self.cv2
        h, w = back.shape[:2]
        map_x, map_y = _moved_grid(back)
        there = cv2.remap(ahead, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mismatch = _squared(back + there)
        scale = _squared(back) + _squared(there)
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        reliable = ((mismatch < 0.01 * scale + 0.5) & inside).astype(np.float32)
        return cv2.GaussianBlur(reliable, (0, 0), 1.5)[..., None]  # no seams at edges

    def still(self, grey: np.ndarray, last_grey: np.ndarray, back: np.ndarray) -> np.ndarray:
        """How still each pixel is, (h, w, 1) in (0, 1]: 1 where the grey photo did not
        change from the last one and the backward flow `back` does not move it."""
        cv2 = self.cv2
        change = cv2.GaussianBlur(cv2.absdiff(grey, last_grey).astype(np.float32), (0, 0), 1.5)
        motion = cv2.GaussianBlur(np.sqrt(_squared(back)), (0, 0), 1.5)
        still = np.exp(-change / STILL_CHANGE - (motion / STILL_MOTION) ** 2)
        return still[..., None]

    def flows(self, grey: np.ndarray, last_grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward (new pixel -> where it was) and forward flow."""
        return self.dis.calc(grey, last_grey, None), self.dis.calc(last_grey, grey, None)


class FlowConsistency:
    """Call with each photo (H, W, 3 uint8) and its stylized frame (h, w, 3, float 0-255),
    in order; returns the frame to show. `strength` in [0, 1): how much of the last frame
    a pixel keeps, carried along the flow where the flow is reliable, as it stands where
    the flow is not but the pixel is still."""

    def __init__(self, strength: float):
        if not 0.0 <= strength < 1.0:
            raise OptionError(f"consistency strength must be in [0, 1), not {strength}")
        self.flow = Flow()
        self.strength = strength
        self.last: tuple[np.ndarray, np.ndarray] | None = None  # grey photo, output
        self.worker: ThreadPoolExecutor | None = None
        # the next photo, its grey and its flows from the last, found in a thread
        self.pending: tuple[np.ndarray, np.ndarray, Future] | None = None
        # the photo being painted, and its flow's `reliable` and `still`, if found already
        self.checked: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def expect(self, photo: np.ndarray) -> None:
        """Start finding the flow from the last photo to `photo`, the next one, in a
        thread: the frame's call picks it up, so it runs while the frame is painted."""
        if self.last is None or self.strength == 0:
            return
        if self.worker is None:
            self.worker = ThreadPoolExecutor(1, thread_name_prefix="impasto-flow")
        last_grey = self.last[0]
        grey = self.flow.grey(photo, last_grey.shape)  # the output's size: the last one's
        self.pending = (photo, grey, self.worker.submit(self.flow.flows, grey, last_grey))

    def motion(
        self, shape: tuple[int, int], margin: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For a one-pass network's features of the frame being painted (the photo last
        given to `expect`), an (h, w) `shape` grid over the frame painted with `margin` px
        of reflected photo around it: where each cell was in the last frame, x and y
        maps in cells, and how much of the last frame's cell it keeps (the strength where
        the flow is reliable or the pixels are still, as for the pictures; none in the
        margin). None when nothing is to be carried (the first frame, or no flow
        expected)."""
        if self.pending is None or self.last is None:
            return None
        photo, grey, found = self.pending
        back, ahead = found.result()
        reliable = self.flow.reliable(back, ahead)
        still = self.flow.still(grey, self.last[0], back)
        self.checked = (photo, reliable, still)  # for the pictures' blend, after painting
        # the pictures' rule: carried where the flow is reliable, else kept where still
        trust = (reliable + (1 - reliable) * still)[..., 0]
        cv2, (h, w) = self.flow.cv2, shape
        back = cv2.copyMakeBorder(back, *[margin] * 4, cv2.BORDER_REFLECT_101)
        trust = cv2.copyMakeBorder(trust, *[margin] * 4, cv2.BORDER_CONSTANT, value=0)
        scale = np.array([w / back.shape[1], h / back.shape[0]], np.float32)
        back = cv2.resize(back, (w, h), interpolation=cv2.INTER_AREA) * scale
        trust = cv2.resize(trust, (w, h), interpolation=cv2.INTER_AREA) * self.strength
        return *_moved_grid(back), trust

    def steadied(
        self, paint: Callable[[np.ndarray], np.ndarray]
    ) -> Callable[[np.ndarray], np.ndarray]:
        """`paint` (photo -> stylized frame) with its frames made steady, the flow found
        while each one is painted."""

        def steady(photo: np.ndarray) -> np.ndarray:
            self.expect(photo)
            return self(photo, paint(photo))

        return steady

    def __call__(self, photo: np.ndarray, styled: np.ndarray) -> np.ndarray:
        grey = self.flow.grey(photo, styled.shape[:2])
        styled = styled.astype(np.float32)
        flows, pending, self.pending = None, self.pending, None
        checked, self.checked = self.checked, None
        if pending is not None:
            found = pending[2].result()  # waited for even if not used: DIS is not shared
            # Found at the last output's size: of no use if this one's differs (below)
            flows = found if pending[0] is photo else None
        if self.last is None or self.last[0].shape != grey.shape or self.strength == 0:
            self.last = (grey, styled)
            return styled
        last_grey, last = self.last
        reliable = still = None
        if flows and checked and checked[0] is photo:
            reliable, still = checked[1:]
        flows = flows or self.flow.flows(grey, last_grey)
        warped, reliable = self.flow.carry(grey, last_grey, last, flows, reliable)
        if still is None:
            still = self.flow.still(grey, last_grey, flows[0])
        out = warped - styled  # reliable pixels keep the last frame carried along the flow,
        out *= reliable
        kept = last - styled  # unreliable still ones keep it where it stands
        kept *= (1 - reliable) * still
        out += kept
        out *= self.strength
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
