"""The camera's path over a clip: one segment per shot, each static or moving.

Frames arrive one by one from :class:`backend.world.motion.RotationTracker`; a shot cut starts a new segment whose
first frame is its reference (rotation identity, zoom 1). A segment whose content never moves by more than
``static_px`` pixels is a static shot: it is snapped to identity, so tracking noise never turns a tripod shot
into a trembling one (unless the user said the camera moves); likewise a segment whose focal length stays within
``FIXED_LENS`` keeps its lens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from backend.options import CAMERA_CHOICES as CAMERA_MODES
from backend.world.motion import FrameMotion, MotionSettings, RotationTracker

STATIC_PX = 0.6  # pixels at the tracking width: tracking noise on a still, compressed picture stays below this
# frames before a loop closure that ramp into its correction (at most 1 deg, MotionSettings), so the camera does
# not jump there: the chain's error is known only where the loop closes and does not grow evenly along the chain
# (the synthetic 300-frame pan, people masked, 5 closures: mean / worst error 0.0050 / 0.052 deg not spread,
# 0.0052 / 0.043 over 15 frames, 0.0107 / 0.046 over each whole loop; 0.0067 / 0.044 over 60 before the closures
# left people out; bench_camera_motion.py)
LOOP_SPREAD_FRAMES = 15
FIXED_LENS = 0.005  # a segment whose focal length never strays further (relative) keeps its lens (measured noise:
#                     0.1 % on the synthetic pan), so a pan does not become a trembling zoom


@dataclass
class CameraPath:
    """Per frame: rotation (F, 3, 3) from the segment's reference camera to the frame's, zoom (F,) relative to the
    reference focal length, segment (F,) index; per segment: ``static`` (S,)."""

    rotations: np.ndarray
    zoom: np.ndarray
    segment: np.ndarray
    static: np.ndarray

    @classmethod
    def still(cls, num_frames: int, cuts: list[int] | tuple[int, ...] = ()) -> "CameraPath":
        """A camera that never moves, with a segment per shot."""
        segment = np.zeros(num_frames, np.int64)
        for cut in cuts:
            if 0 < cut < num_frames:
                segment[cut:] += 1
        count = int(segment.max()) + 1 if num_frames else 0
        return cls(np.tile(np.eye(3), (num_frames, 1, 1)), np.ones(num_frames), segment, np.ones(count, bool))

    @property
    def num_frames(self) -> int:
        return len(self.zoom)

    @property
    def num_segments(self) -> int:
        return len(self.static)

    @property
    def moving(self) -> bool:
        return not bool(np.all(self.static))

    def frames_of(self, segment: int) -> np.ndarray:
        return np.flatnonzero(self.segment == segment)


class CameraPathBuilder:
    """Collects one :class:`FrameMotion` per frame, in order; :meth:`build` gives the :class:`CameraPath`."""

    def __init__(self, mode: str = "auto", static_px: float = STATIC_PX) -> None:
        if mode not in CAMERA_MODES:
            raise ValueError(f"camera mode must be one of {', '.join(CAMERA_MODES)}, got {mode!r}")
        self.mode = mode
        self.static_px = static_px
        self._frames: list[FrameMotion] = []

    def add(self, motion: FrameMotion) -> None:
        self._frames.append(motion)

    def __len__(self) -> int:
        return len(self._frames)

    def build(self, num_frames: int | None = None) -> CameraPath:
        """The path of the first ``num_frames`` frames added (all by default)."""
        frames = self._frames[:num_frames]
        if not frames:
            return CameraPath.still(0)
        segment = np.cumsum([motion.new_segment or index == 0 for index, motion in enumerate(frames)]) - 1
        rotations = np.stack([motion.rotation for motion in frames])
        zoom = np.array([motion.zoom for motion in frames], np.float64)
        spread_loop_corrections(frames, rotations, zoom)
        shift = np.array([motion.shift_px for motion in frames])
        static = np.array([self._is_static(shift[segment == s]) for s in range(int(segment[-1]) + 1)])
        for s in range(len(static)):
            if static[s]:
                rotations[segment == s] = np.eye(3)
            if static[s] or (self.mode == "auto" and np.abs(zoom[segment == s] - 1.0).max() < FIXED_LENS):
                zoom[segment == s] = 1.0
        return CameraPath(rotations, zoom, segment.astype(np.int64), static)

    def _is_static(self, shift: np.ndarray) -> bool:
        if self.mode == "static":
            return True
        if self.mode == "moving":
            return False
        return bool(shift.max(initial=0.0) < self.static_px)


def spread_loop_corrections(frames: Sequence[FrameMotion], rotations: np.ndarray, zoom: np.ndarray,
                            window: int = LOOP_SPREAD_FRAMES) -> None:
    """In place: where a frame closed a loop (its camera measured against an older keyframe, not the chain), the
    ``window`` frames before it take on the correction gradually, so the animated camera does not jump there."""
    for end, motion in enumerate(frames):
        if motion.loop_frames <= 0 or motion.loop_correction is None:
            continue
        start = max(0, end - min(motion.loop_frames, window))
        between = np.arange(start + 1, end)
        if not len(between):
            continue
        share = (between - start) / (end - start)
        turn = Rotation.from_matrix(motion.loop_correction).as_rotvec()
        rotations[between] = Rotation.from_rotvec(share[:, None] * turn).as_matrix() @ rotations[between]
        zoom[between] *= motion.loop_zoom ** share


def path_of_frames(frames: Sequence[np.ndarray], focal: float, boxes: Sequence[Sequence[np.ndarray]] | None = None,
                   new_segments: Sequence[int] = (), mode: str = "auto",
                   settings: MotionSettings | None = None) -> CameraPath:
    """The camera path of RGB ``frames`` (principal point at the centre, ``focal`` in pixels), with people's
    ``boxes`` per frame kept out, a new segment at each frame of ``new_segments``: the pipeline's stage on
    frames already in memory (benchmarks, tests)."""
    height, width = frames[0].shape[:2]
    tracker = RotationTracker(width, height, focal, (width / 2, height / 2), settings)
    builder = CameraPathBuilder(mode)
    starts = set(new_segments)
    for index, frame in enumerate(frames):
        builder.add(tracker.update(frame, boxes[index] if boxes is not None else (), index in starts))
    return builder.build()


__all__ = ["CAMERA_MODES", "CameraPath", "CameraPathBuilder", "STATIC_PX", "path_of_frames",
           "spread_loop_corrections"]
