"""Starting values of the fit from the observations alone: orientation from MediaPipe's 3D torso, depth from
limb lengths (metric body length over pixel length), position from the 2D torso centre."""

from __future__ import annotations

import numpy as np

from backend.body.skeleton import JOINT_NAMES, PARENTS
from backend.fitting.mapping import POINT_INDEX, SCALE_BONES, TORSO_POINTS

_LS, _RS, _LH, _RH = (POINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
# Limb bones aimed at MediaPipe's 3D landmarks by the initial inverse kinematics, parents first:
# (joint whose local rotation is set, child joint giving the rest bone, body points giving the target bone).
IK_BONES: tuple[tuple[str, str, str, str], ...] = (
    ("left_hip", "left_knee", "left_hip", "left_knee"),
    ("right_hip", "right_knee", "right_hip", "right_knee"),
    ("left_knee", "left_ankle", "left_knee", "left_ankle"),
    ("right_knee", "right_ankle", "right_knee", "right_ankle"),
    ("left_shoulder", "left_elbow", "left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow", "right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist", "left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist", "right_elbow", "right_wrist"),
)


def ray_rotations(centres_px: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(B, 2) pixels -> (B, 3, 3) rotations taking the optical axis to the ray through each pixel.

    MediaPipe predicts world landmarks in the frame of its person crop, i.e. of a camera looking at the person;
    rotating them by this turns them into the real camera's axes (matters for people far from the image centre).
    """
    fx, fy, cx, cy = intrinsics
    rays = np.stack([(centres_px[:, 0] - cx) / fx, (centres_px[:, 1] - cy) / fy, np.ones(len(centres_px))], -1)
    return _rotation_between(np.tile([0.0, 0.0, 1.0], (len(rays), 1)), rays)


def orientation_from_world(world: np.ndarray, rest_points: np.ndarray | None = None) -> np.ndarray:
    """(B, 25, 3) camera-aligned 3D points -> (B, 3, 3) global rotations, from the torso frame (x = the person's
    left, y = hips to shoulders, z = front) relative to the same frame of the body's rest points (25, 3), whose
    shoulders are not exactly above its hips. Upright and facing the camera gives diag(1, -1, -1), i.e.
    axis-angle (pi, 0, 0).
    """
    frame = _torso_frame(world)
    if rest_points is None:
        return frame
    return frame @ _torso_frame(rest_points[None])[0].T


def _torso_frame(world: np.ndarray) -> np.ndarray:
    left = (world[:, _LS] - world[:, _RS]) + (world[:, _LH] - world[:, _RH])
    up = 0.5 * (world[:, _LS] + world[:, _RS]) - 0.5 * (world[:, _LH] + world[:, _RH])
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    left = left - (left * up).sum(-1, keepdims=True) * up
    left /= np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-9)
    front = np.cross(left, up)
    return np.stack([left, up, front], axis=-1)


def depth_from_limbs(
    keypoints: np.ndarray, world: np.ndarray, confidence: np.ndarray, rest_points: np.ndarray, focal: float,
    fallback_height_px: np.ndarray,
) -> np.ndarray:
    """(B,) depth z = f * L_metric / L_pixels, the weighted median over torso, leg and arm bones.

    L_metric is the body model's bone length foreshortened as MediaPipe's 3D landmarks say the bone is tilted
    (|xy| / |xyz| of the world bone), so a limb pointing at the camera does not inflate the depth; bones that lie
    in the image plane, are long and are confidently seen weigh most. Without usable bones the person is taken
    to be 1.7 m tall over ``fallback_height_px``.
    """
    a, b = (np.array(idx) for idx in zip(*SCALE_BONES))
    pixels = np.linalg.norm(keypoints[:, a] - keypoints[:, b], axis=-1)
    bone3d = world[:, a] - world[:, b]
    in_plane = np.linalg.norm(bone3d[..., :2], axis=-1) / np.maximum(np.linalg.norm(bone3d, axis=-1), 1e-6)
    metric = np.linalg.norm(rest_points[:, a] - rest_points[:, b], axis=-1) * np.clip(in_plane, 0.2, 1.0)
    depths = focal * metric / np.maximum(pixels, 1e-3)
    weights = confidence[:, a] * confidence[:, b] * in_plane**2 * metric * (pixels > 2.0)
    out = focal * 1.7 / np.maximum(fallback_height_px, 1.0)
    for i in range(len(depths)):
        if weights[i].sum() > 1e-3:
            out[i] = _weighted_median(depths[i], weights[i])
    return out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def torso_centre(keypoints: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(B, 2) confidence-weighted centre of shoulders and hips in pixels (all points when the torso is unseen)."""
    torso = list(TORSO_POINTS)
    w = confidence[:, torso] + 1e-6
    centre = (keypoints[:, torso] * w[..., None]).sum(1) / w.sum(1)[:, None]
    unseen = confidence[:, torso].sum(1) < 0.2
    if unseen.any():
        wa = confidence[unseen] + 1e-6
        centre[unseen] = (keypoints[unseen] * wa[..., None]).sum(1) / wa.sum(1)[:, None]
    return centre


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B, 3), (B, 3) -> (B, 3, 3): the smallest rotation turning direction a into direction b."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-9)
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis, axis=-1), (a * b).sum(-1)
    # antiparallel: any axis perpendicular to a
    fallback = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    axis = np.where((sin < 1e-6)[:, None], fallback, axis)
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    angle = np.arctan2(sin, cos)
    k = np.zeros((len(a), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    return np.eye(3) + np.sin(angle)[:, None, None] * k + (1 - np.cos(angle))[:, None, None] * (k @ k)


def ik_body_pose(glob: np.ndarray, world: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """(B, 23) x 3 local rotation matrices, (B, 23, 3, 3), aiming thighs, shins, upper arms and forearms along
    MediaPipe's 3D bones (smallest rotations, so twists stay at rest). The optimiser starts near the answer
    instead of having to swing a leg from standing to sitting (which Adam does slowly and may not finish).
    """
    b = len(glob)
    local = np.tile(np.eye(3), (b, 24, 1, 1))
    world_rot = np.tile(np.eye(3), (b, 24, 1, 1))
    world_rot[:, 0] = glob
    done = {0}
    for joint, child, src, dst in IK_BONES:
        j, c = JOINT_NAMES.index(joint), JOINT_NAMES.index(child)
        _propagate(world_rot, local, j, done)
        parent = world_rot[:, PARENTS[j]]
        rest_dir = np.einsum("bij,j->bi", parent, rest_joints[c] - rest_joints[j])
        target = world[:, POINT_INDEX[dst]] - world[:, POINT_INDEX[src]]
        turn = _rotation_between(rest_dir, target)
        local[:, j] = parent.transpose(0, 2, 1) @ turn @ parent
        world_rot[:, j] = parent @ local[:, j]
        done.add(j)
    return local[:, 1:]


def _propagate(world_rot: np.ndarray, local: np.ndarray, joint: int, done: set[int]) -> None:
    """Fill the global rotations of ``joint``'s ancestors that have not been set (they keep local identity)."""
    chain, j = [], PARENTS[joint]
    while j not in done:
        chain.append(j)
        j = PARENTS[j]
    for k in reversed(chain):
        world_rot[:, k] = world_rot[:, PARENTS[k]] @ local[:, k]
        done.add(k)
