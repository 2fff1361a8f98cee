"""Shot cuts: where the footage jumps to another camera or scene, so no identity or filter is carried across.

Each frame is reduced to a colour histogram of a small downscaled copy (hue-saturation plus value, in HSV), and
consecutive histograms are compared with the Bhattacharyya distance. A pan or a person walking by changes the
histogram slowly; a cut replaces it. The threshold adapts to the footage: a frame starts a new shot when its
distance exceeds both an absolute floor and a multiple of the recent median distance (compression noise and
busy scenes raise the median). A dissolve yields a run of consecutive cut frames; tracks inside it are then
too short to survive, which is what we want for ghosted double exposures.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

_SIZE = (160, 90)  # downscaled frame: enough pixels for stable histograms, cheap at any resolution
_HS_BINS = (12, 4)
_V_BINS = 8


@dataclass
class ShotSettings:
    min_distance: float = 0.1  # Bhattacharyya distance below which nothing is a cut
    ratio: float = 4.0  # ... and it must exceed this multiple of the recent median distance
    window: int = 30  # frames of recent distances the median is taken over
    warmup_median: float = 0.03  # assumed median before the window has filled


class ShotCutDetector:
    """Feed RGB frames in order to :meth:`update`; it says whether each frame starts a new shot."""

    def __init__(self, settings: ShotSettings | None = None) -> None:
        self.settings = settings or ShotSettings()
        self._previous: np.ndarray | None = None
        self._size: tuple[int, ...] = ()
        self._recent: deque[float] = deque(maxlen=self.settings.window)

    def reset(self) -> None:
        """Forget the previous frame (a new, unrelated source)."""
        self._previous = None
        self._size = ()
        self._recent.clear()

    def update(self, frame: np.ndarray) -> bool:
        """True when ``frame`` (RGB uint8) starts a new shot; the first frame never does."""
        signature = frame_signature(frame)
        previous, self._previous = self._previous, signature
        size, self._size = self._size, frame.shape[:2]
        if previous is None:
            return False
        if size != frame.shape[:2]:
            return True  # a picture of another size (a folder of mixed pictures) is another shot
        distance = signature_distance(previous, signature)
        is_cut = distance > max(self.settings.min_distance, self.settings.ratio * self._median())
        if not is_cut:
            self._recent.append(distance)  # cuts stay out of the statistics of ordinary motion
        return is_cut

    def _median(self) -> float:
        if len(self._recent) < 5:
            return self.settings.warmup_median
        return float(np.median(self._recent))


def frame_signature(frame: np.ndarray) -> np.ndarray:
    """A normalised HSV histogram of the downscaled frame (hue-saturation then value), float32."""
    small = cv2.resize(frame, _SIZE, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hs = cv2.calcHist([hsv], [0, 1], None, list(_HS_BINS), [0, 180, 0, 256]).ravel()
    v = cv2.calcHist([hsv], [2], None, [_V_BINS], [0, 256]).ravel()
    return np.concatenate([hs / max(hs.sum(), 1.0), v / max(v.sum(), 1.0)]).astype(np.float32)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the Bhattacharyya distances of the hue-saturation and the value histograms (0 same, 1 disjoint)."""
    split = _HS_BINS[0] * _HS_BINS[1]
    hs = cv2.compareHist(a[:split], b[:split], cv2.HISTCMP_BHATTACHARYYA)
    v = cv2.compareHist(a[split:], b[split:], cv2.HISTCMP_BHATTACHARYYA)
    return 0.5 * (float(hs) + float(v))


def detect_cuts(frames: Iterable[np.ndarray], settings: ShotSettings | None = None) -> list[int]:
    """Indices (0-based, in iteration order) of the frames that start a new shot."""
    detector = ShotCutDetector(settings)
    return [index for index, frame in enumerate(frames) if detector.update(frame)]


__all__ = ["ShotCutDetector", "ShotSettings", "detect_cuts", "frame_signature", "signature_distance"]
