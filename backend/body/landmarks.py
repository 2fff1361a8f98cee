"""Vertex landmarks of SMPL-topology meshes (face and feet keypoints that joints do not cover)."""

from __future__ import annotations

import numpy as np

# The vertex ids used by smplx (vertex_ids['smplh']), SPIN, ROMP and others for SMPL's 6890-vertex mesh.
SMPL_VERTEX_LANDMARKS: dict[str, int] = {
    "nose": 332,
    "right_eye": 6260,
    "left_eye": 2800,
    "right_ear": 4071,
    "left_ear": 583,
    "left_big_toe": 3216,
    "left_small_toe": 3226,
    "left_heel": 3387,
    "right_big_toe": 6617,
    "right_small_toe": 6624,
    "right_heel": 6787,
}


def mouth_corners(vertices: np.ndarray, nose: int, left_eye: int, right_eye: int) -> dict[str, int]:
    """Mouth-corner vertices picked by geometry, for meshes without a published id.

    Average facial proportions: the corners are about 0.8 of the eye spacing apart and as far below the nose
    tip as the eyes are above it (0.85 of it). Seen from the front (the template faces +z), the frontmost
    vertex within a centimetre of that spot is taken, so the pick lies on the face whatever its depth.
    """
    tip, eyes = vertices[nose], vertices[[left_eye, right_eye]]
    eye_height = eyes[:, 1].mean() - tip[1]
    mouth_y = tip[1] - 0.85 * eye_height
    face = (np.abs(vertices[:, 1] - mouth_y) < 0.04) & (vertices[:, 2] > tip[2] - 0.08)
    candidates = np.flatnonzero(face) if face.any() else np.arange(len(vertices))
    out = {}
    for name, eye in (("left_mouth", eyes[0]), ("right_mouth", eyes[1])):
        spot = np.array([tip[0] + 0.8 * (eye[0] - tip[0]), mouth_y])
        off_axis = np.linalg.norm(vertices[candidates, :2] - spot, axis=1)
        near = candidates[off_axis <= off_axis.min() + 0.01]
        out[name] = int(near[np.argmax(vertices[near, 2])])
    return out


def smpl_landmarks(v_template: np.ndarray) -> dict[str, int]:
    """All landmarks of an SMPL template: the published ids plus geometric mouth corners."""
    out = dict(SMPL_VERTEX_LANDMARKS)
    out.update(mouth_corners(v_template, out["nose"], out["left_eye"], out["right_eye"]))
    return out
