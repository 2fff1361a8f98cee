"""How large the detector saw a person compared with how large their estimated body is drawn.

A fitted body is drawn the size of its person (the fit matched the keypoints), so any move along its camera ray
redraws it at another size, off its person; a regressed body can be drawn too small or too large, and then the
depth that draws it the detected size is where it should go. The coherence step bounds its depth moves around
both (``refine._depth_bounds``).
"""

from __future__ import annotations

import numpy as np

# (detected keypoint, SMPL joint) pairs per ``extras["keypoint_layout"]``: shoulders, elbows, wrists, hips,
# knees, ankles (MediaPipe's hips are wider than SMPL's, equally on both sides: the centred scale barely moves).
LIMB_KEYPOINTS: dict[str, tuple[tuple[int, int], ...]] = {
    "mediapipe33": ((11, 16), (12, 17), (13, 18), (14, 19), (15, 20), (16, 21), (23, 1), (24, 2), (25, 4),
                    (26, 5), (27, 7), (28, 8)),
    "smpl24": tuple((j, j) for j in (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)),
}
MIN_PAIRS = 4
MIN_VISIBILITY = 0.5


def detected_scale(extras: dict, joints2d: np.ndarray) -> float | None:
    """Size of the detected keypoints over the size of the drawn joints (``joints2d``, (24, 2) pixels), by least
    squares about their centres; None without enough seen keypoints of a known layout."""
    pairs = LIMB_KEYPOINTS.get(extras.get("keypoint_layout", ""))
    keypoints, visibility = extras.get("keypoints2d"), extras.get("keypoint_visibility")
    if pairs is None or keypoints is None or visibility is None:
        return None
    keypoints, visibility = np.asarray(keypoints, np.float64), np.asarray(visibility, np.float64)
    if len(keypoints) <= max(k for k, _ in pairs) or len(visibility) != len(keypoints):
        return None
    seen = [(k, j) for k, j in pairs if visibility[k] >= MIN_VISIBILITY and np.isfinite(keypoints[k]).all()]
    if len(seen) < MIN_PAIRS:
        return None
    detected = keypoints[[k for k, _ in seen]]
    drawn = np.asarray(joints2d, np.float64)[[j for _, j in seen]]
    detected, drawn = detected - detected.mean(0), drawn - drawn.mean(0)
    spread = float((drawn * drawn).sum())
    if spread < 1.0:
        return None
    scale = float((drawn * detected).sum()) / spread
    return scale if scale > 0 else None
