"""SMPL skeleton maths for the scene builder, in plain numpy (no bpy), so it is testable anywhere.

Frames involved:

- model frame: the body model's rest frame (SMPL: y up, the body faces +z, its left is +x);
- camera frame: OpenCV (x right, y down, z forward); ``poses[:, 0]`` rotates the model frame into it;
- Blender world: ``x_w = x_c, y_w = z_c, z_w = -y_c`` (matrix ``CAM_TO_WORLD``), camera at the origin looking +Y;
- armature space: the model frame turned Z-up (matrix ``MODEL_TO_ARMATURE``), so the rest pose stands upright
  facing -Y, which is what FBX/BVH consumers and retargeting tools expect. The armature object stays at the
  identity, so armature space is also Blender world space.

With bone rest frames ``Rb_j`` (the rotation of ``Bone.matrix_local``), Blender's pose chain reproduces SMPL
forward kinematics exactly when each bone's rotation is the SMPL local rotation conjugated into the bone frame:
``Q_j = Rb_j^T (M R_j M^T) Rb_j`` and for the root ``Q_0 = Rb_0^T (C R_0 M^T) Rb_0`` with the root location
``Rb_0^T (C (t + J_0) - M J_0)`` (``M`` = ``MODEL_TO_ARMATURE``, ``C`` = ``CAM_TO_WORLD``).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
    "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
    "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
)  # fmt: skip
PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_JOINTS = len(JOINT_NAMES)

# The child a bone points at (its tail); joints missing here are leaves that continue their parent's direction.
PRIMARY_CHILD: dict[int, int] = {
    0: 3, 3: 6, 6: 9, 9: 12, 12: 15, 1: 4, 2: 5, 4: 7, 5: 8, 7: 10, 8: 11,
    13: 16, 14: 17, 16: 18, 17: 19, 18: 20, 19: 21, 20: 22, 21: 23,
}  # fmt: skip
MIN_BONE_LENGTH = 0.03  # metres; Blender deletes zero-length bones

CAM_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
MODEL_TO_ARMATURE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for any leading shape: (..., 3) -> (..., 3, 3)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = rotvec / np.where(angle > 1e-12, angle, 1.0)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(axis.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None]
    c = np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (w, x, y, z), with w >= 0.

    Shepperd's method: of the four algebraically equal solutions, each element takes the one whose divisor is
    largest, so rotations near 180 degrees stay accurate.
    """
    m = np.asarray(matrix, dtype=np.float64)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    candidates = np.stack(
        [
            np.stack([1.0 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            np.stack([m21 - m12, 1.0 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
            np.stack([m02 - m20, m10 + m01, 1.0 - m00 + m11 - m22, m21 + m12], -1),
            np.stack([m10 - m01, m02 + m20, m21 + m12, 1.0 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )
    # Candidate k has 4 q_k^2 in slot k: pick the one with the largest.
    best = np.argmax(np.stack([candidates[..., k, k] for k in range(4)], -1), axis=-1)
    quat = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    return np.where(quat[..., :1] < 0.0, -quat, quat)


def quaternion_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) as (w, x, y, z), not necessarily unit -> rotation matrices (..., 3, 3)."""
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return np.stack(rows, axis=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) with angle in [0, pi]."""
    quat = matrix_to_quaternion(matrix)
    vec = quat[..., 1:]
    sin_half = np.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, quat[..., :1])
    return vec * (angle / np.where(sin_half > 1e-12, sin_half, 1.0))


def continuous_quaternions(quat: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 so consecutive quaternions stay in one hemisphere (no interpolation spins)."""
    quat = np.array(quat, dtype=np.float64, copy=True)
    for i in range(1, len(quat)):
        flip = np.sum(quat[i] * quat[i - 1], axis=-1) < 0.0
        quat[i][flip] *= -1.0
    return quat


def forward_kinematics(poses: np.ndarray, rest_joints: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """SMPL joint positions (n, 24, 3) in the camera frame: FK(poses, rest_joints) + transl.

    The reference the scene builder is checked against: the result contract defines the posed joints this way.
    """
    rot = axis_angle_to_matrix(np.asarray(poses).reshape(-1, NUM_JOINTS, 3))
    rest = np.asarray(rest_joints, dtype=np.float64)
    glob_rot = np.empty_like(rot)
    glob_pos = np.empty(rot.shape[:2] + (3,))
    glob_rot[:, 0] = rot[:, 0]
    glob_pos[:, 0] = rest[0]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        glob_rot[:, j] = glob_rot[:, p] @ rot[:, j]
        glob_pos[:, j] = glob_pos[:, p] + np.einsum("nab,b->na", glob_rot[:, p], rest[j] - rest[p])
    return glob_pos + np.asarray(transl, dtype=np.float64).reshape(-1, 1, 3)


def bone_layout(rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heads and tails (24, 3) in armature space: each bone points at its primary child, leaves continue on."""
    heads = np.asarray(rest_joints, dtype=np.float64) @ MODEL_TO_ARMATURE.T
    tails = np.empty_like(heads)
    for j in range(NUM_JOINTS):
        if j in PRIMARY_CHILD:
            tails[j] = heads[PRIMARY_CHILD[j]]
        else:
            direction = heads[j] - heads[PARENTS[j]]
            tails[j] = heads[j] + direction
        if np.linalg.norm(tails[j] - heads[j]) < MIN_BONE_LENGTH:
            direction = tails[j] - heads[j]
            norm = np.linalg.norm(direction)
            unit = direction / norm if norm > 1e-9 else np.array([0.0, 0.0, 1.0])
            tails[j] = heads[j] + unit * MIN_BONE_LENGTH
    return heads, tails


def pose_to_bone_keys(
    poses: np.ndarray, transl: np.ndarray, rest_joints: np.ndarray, bone_rest: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SMPL rows -> Blender pose-bone values: quaternions (n, 24, 4) and root location (n, 3).

    ``bone_rest`` holds the rotation part (24, 3, 3) of each ``Bone.matrix_local``; heads are the rest joints in
    armature space. The quaternions are made sign-continuous along the rows.
    """
    rot = axis_angle_to_matrix(np.asarray(poses).reshape(-1, NUM_JOINTS, 3))
    m, c = MODEL_TO_ARMATURE, CAM_TO_WORLD
    outer = np.concatenate([np.broadcast_to(c, (1, 3, 3)), np.broadcast_to(m, (NUM_JOINTS - 1, 3, 3))])
    rb = np.asarray(bone_rest, dtype=np.float64)
    # Q_j = Rb_j^T (X_j R_j M^T) Rb_j, X_0 = C, X_j = M.
    local = np.swapaxes(rb, -1, -2) @ outer @ rot @ m.T @ rb
    quat = continuous_quaternions(matrix_to_quaternion(local))
    rest = np.asarray(rest_joints, dtype=np.float64)
    offset = (np.asarray(transl, dtype=np.float64) + rest[0]) @ c.T - m @ rest[0]
    location = offset @ rb[0]  # row-vector form of Rb_0^T @ offset
    return quat, location


def bone_keys_to_pose(
    quat: np.ndarray, location: np.ndarray, rest_joints: np.ndarray, bone_rest: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pose_to_bone_keys`: pose-bone values -> SMPL poses (n, 24, 3) and transl (n, 3).

    The root orientation and translation come out in the camera frame, as in a result file.
    """
    m, c = MODEL_TO_ARMATURE, CAM_TO_WORLD
    rb = np.asarray(bone_rest, dtype=np.float64)
    armature_rot = rb @ quaternion_to_matrix(quat) @ np.swapaxes(rb, -1, -2)  # X_j R_j M^T
    outer_t = np.concatenate([np.broadcast_to(c.T, (1, 3, 3)), np.broadcast_to(m.T, (NUM_JOINTS - 1, 3, 3))])
    rot = outer_t @ armature_rot @ m
    rest = np.asarray(rest_joints, dtype=np.float64)
    offset = np.asarray(location, dtype=np.float64) @ rb[0].T  # Rb_0 @ location
    transl = (offset + m @ rest[0]) @ c - rest[0]  # C^T (...) as row vectors
    return matrix_to_axis_angle(rot), transl


def to_world_frame(poses: np.ndarray, transl: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-express camera-frame SMPL parameters in Blender's Z-up world (AMASS convention: a Z-up world).

    Only the root changes: ``R0' = C R0`` and ``t' = C (t + J0) - J0``, so FK(poses', J) + t' = C (FK + t).
    """
    poses = np.array(poses, dtype=np.float64, copy=True).reshape(-1, NUM_JOINTS, 3)
    c = CAM_TO_WORLD
    poses[:, 0] = matrix_to_axis_angle(c @ axis_angle_to_matrix(poses[:, 0]))
    j0 = np.asarray(rest_joints, dtype=np.float64)[0]
    return poses, (np.asarray(transl, dtype=np.float64) + j0) @ c.T - j0
