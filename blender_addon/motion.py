"""Pose maths for any armature, batched over frames, in plain numpy (no bpy): forward kinematics as Blender does
it, pose-bone values back from armature-space matrices, rotation conversions and the retarget step.

Blender's pose chain: a bone's armature-space pose matrix is ``M_b = M_p @ (Rest_p^-1 @ Rest_b) @ Basis_b``
(``M_b = Rest_b @ Basis_b`` for a root), ``Rest`` being ``Bone.matrix_local`` and ``Basis`` the pose bone's
location/rotation/scale. Computing that for every frame at once in numpy, instead of asking Blender to evaluate
the rig frame by frame, is what makes retargeting a whole crowd take about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rig import matrix_to_quaternion, quaternion_to_matrix

EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


@dataclass
class Skeleton:
    """An armature's rest state: bones parents-first, parent indices (-1: root), rest matrices, object matrix."""

    names: list[str]
    parents: np.ndarray  # (B,) int
    rest: np.ndarray  # (B, 4, 4) Bone.matrix_local, armature space
    world: np.ndarray  # (4, 4) the object's matrix_world

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rest_world(self) -> np.ndarray:
        """Rest matrices in world space (B, 4, 4); rotations stay unnormalised if the object is scaled."""
        return self.world @ self.rest

    def world_rotation(self) -> np.ndarray:
        """The object's rotation (3, 3) with its (assumed uniform) scale divided out."""
        return normalised_rotation(self.world[:3, :3])

    def ancestors_first(self, wanted: list[int]) -> list[int]:
        """``wanted`` bones and all their ancestors, each after its parent (the order FK needs)."""
        keep: set[int] = set()
        for b in wanted:
            while b >= 0 and b not in keep:
                keep.add(b)
                b = int(self.parents[b])
        return sorted(keep)  # names are stored parents-first, so index order is a valid order


def normalised_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation of a matrix that may carry scale (columns normalised)."""
    return matrix / np.linalg.norm(matrix, axis=-2, keepdims=True)


def sort_parents_first(names: list[str], parent_names: list[str | None]) -> tuple[list[str], np.ndarray]:
    """Bone names reordered so that every parent comes before its children, with parent indices."""
    position = {name: i for i, name in enumerate(names)}
    order: list[int] = []
    placed: set[int] = set()

    def place(i: int) -> None:
        if i in placed:
            return
        parent = parent_names[i]
        if parent is not None:
            place(position[parent])
        placed.add(i)
        order.append(i)

    for i in range(len(names)):
        place(i)
    sorted_names = [names[i] for i in order]
    new_index = {name: k for k, name in enumerate(sorted_names)}
    parents = np.array([new_index[parent_names[i]] if parent_names[i] is not None else -1 for i in order])
    return sorted_names, parents


def basis_matrices(quat: np.ndarray, location: np.ndarray) -> np.ndarray:
    """Pose-bone basis matrices (..., 4, 4) from quaternions (..., 4) and locations (..., 3), unit scale."""
    out = np.zeros(quat.shape[:-1] + (4, 4))
    out[..., :3, :3] = quaternion_to_matrix(quat)
    out[..., :3, 3] = location
    out[..., 3, 3] = 1.0
    return out


def forward(skeleton: Skeleton, basis: np.ndarray, bones: list[int] | None = None) -> np.ndarray:
    """Armature-space pose matrices (n, B, 4, 4) from basis matrices (n, B, 4, 4), as Blender computes them.

    Only ``bones`` and their ancestors are computed when given (others stay zero).
    """
    order = skeleton.ancestors_first(bones) if bones is not None else range(len(skeleton.names))
    out = np.zeros_like(basis)
    rest_inv = np.linalg.inv(skeleton.rest)
    for b in order:
        p = int(skeleton.parents[b])
        if p < 0:
            out[:, b] = skeleton.rest[b] @ basis[:, b]
        else:
            out[:, b] = out[:, p] @ (rest_inv[p] @ skeleton.rest[b]) @ basis[:, b]
    return out


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) turning direction ``a`` onto direction ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        other = np.eye(3)[np.argmin(np.abs(a))]  # opposite: half a turn about any perpendicular axis
        axis = np.cross(a, other)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def body_frame(left_hip: np.ndarray, right_hip: np.ndarray, pelvis: np.ndarray, top: np.ndarray) -> np.ndarray:
    """An orthonormal frame (3, 3) of a standing body: columns = its left, its forward, its up.

    Rigs face different ways (-Y in Blender, +Y for some game rigs, anything after an import); comparing these
    frames turns the target to move like the source whichever way it was built.
    """
    left = left_hip - right_hip
    left = left / np.linalg.norm(left)
    up = top - pelvis
    up = up - np.dot(up, left) * left
    up = up / np.linalg.norm(up)
    forward = np.cross(up, left)
    return np.stack([left, forward, up], axis=-1)


@dataclass
class RetargetPlan:
    """Everything fixed per source/target pair: which bones, their rest offsets, the root scale.

    ``offsets[k]`` is the constant rotation taking source bone ``source_bones[k]``'s world rotation to the one
    target bone ``target_bones[k]`` must have: ``W_target = W_source @ offsets[k]``. It is
    ``Rs_rest^-1 @ A @ Rt_rest``, where ``A`` turns the target's rest onto the source's (its facing, then the
    bone's direction toward its mapped child), so a T-pose source drives an A-pose target to a T-pose and
    bone rolls do not matter.
    """

    source_bones: np.ndarray  # (K,) indices into the source skeleton
    target_bones: np.ndarray  # (K,) indices into the target skeleton
    offsets: np.ndarray  # (K, 3, 3)
    root: int  # position in the lists of the bone that carries the root motion
    scale: float  # target leg length / source leg length
    source_root_rest: np.ndarray  # (3,) world
    target_root_rest: np.ndarray  # (3,) world


def plan_retarget(
    source: Skeleton,
    target: Skeleton,
    pairs: list[tuple[str, str]],
    children: dict[str, str | None],
    legs: tuple[tuple[str, str, str], tuple[str, str, str]],
    top: str,
) -> RetargetPlan:
    """Rest offsets and scale for ``pairs`` (source bone, target bone), source bones parents first.

    ``children[source bone]`` is the mapped source bone its rest direction is aligned by (None: facing only);
    ``legs`` are the (hip, knee, ankle) source bones of each side; ``top`` a source bone high on the spine (its
    head gives the up direction). The first pair is the root.
    """
    mapping = dict(pairs)
    s_rest, t_rest = source.rest_world(), target.rest_world()

    def head(skel_rest: np.ndarray, skel: Skeleton, name: str) -> np.ndarray:
        return skel_rest[skel.index(name), :3, 3]

    def frame(skel_rest: np.ndarray, skel: Skeleton, names: dict[str, str]) -> np.ndarray:
        return body_frame(head(skel_rest, skel, names[legs[0][0]]), head(skel_rest, skel, names[legs[1][0]]),
                          head(skel_rest, skel, names[pairs[0][0]]), head(skel_rest, skel, names[top]))

    identity = {name: name for name, _ in pairs}
    facing = frame(s_rest, source, identity) @ frame(t_rest, target, mapping).T
    s_rot = normalised_rotation(s_rest[:, :3, :3])
    t_rot = normalised_rotation(t_rest[:, :3, :3])
    offsets = []
    for k, (s_name, t_name) in enumerate(pairs):
        align = facing
        child = children.get(s_name)
        if k > 0 and child is not None:
            d_source = head(s_rest, source, child) - head(s_rest, source, s_name)
            d_target = facing @ (head(t_rest, target, mapping[child]) - head(t_rest, target, t_name))
            if min(np.linalg.norm(d_source), np.linalg.norm(d_target)) > 1e-6:  # Rigify: chest and spine share a head
                align = swing(d_target, d_source) @ facing
        offsets.append(s_rot[source.index(s_name)].T @ align @ t_rot[target.index(t_name)])

    def leg_length(skel_rest: np.ndarray, skel: Skeleton, names: dict[str, str]) -> float:
        total = 0.0
        for hip, knee, ankle in legs:
            a, b, c = (head(skel_rest, skel, names[n]) for n in (hip, knee, ankle))
            total += np.linalg.norm(b - a) + np.linalg.norm(c - b)
        return total / 2.0

    scale = leg_length(t_rest, target, mapping) / leg_length(s_rest, source, identity)
    return RetargetPlan(
        source_bones=np.array([source.index(s) for s, _ in pairs]),
        target_bones=np.array([target.index(t) for _, t in pairs]),
        offsets=np.array(offsets), root=0, scale=float(scale),
        source_root_rest=head(s_rest, source, pairs[0][0]), target_root_rest=head(t_rest, target, pairs[0][1]),
    )  # fmt: skip


def retarget_world(plan: RetargetPlan, source_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Target world rotations (n, K, 3, 3) and root position (n, 3) from source world pose matrices (n, B, 4, 4).

    Root motion is the source root's displacement from its rest, scaled by the leg-length ratio, added to the
    target's rest: a longer-legged character covers more ground in the same steps.
    """
    src = source_world[:, plan.source_bones]
    rotations = normalised_rotation(src[..., :3, :3]) @ plan.offsets
    root = plan.target_root_rest + plan.scale * (src[:, plan.root, :3, 3] - plan.source_root_rest)
    return rotations, root


def local_from_world(
    target: Skeleton,
    bones: np.ndarray,
    rotations: np.ndarray,
    root_bone: int,
    root_position: np.ndarray,
    static_basis: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone values giving ``bones`` the world ``rotations`` (n, K, 3, 3) and ``root_bone`` the world
    ``root_position`` (n, 3): basis rotations (n, K, 3, 3) and the root bone's basis location (n, 3).

    Unmapped bones on the way keep ``static_basis`` (B, 4, 4), their current pose; each mapped bone's basis is
    solved after its parent's pose matrix is known, so the whole chain is exact.
    """
    n = len(rotations)
    object_rot = target.world_rotation()
    object_inv = np.linalg.inv(target.world)
    arm_rot = object_rot.T @ rotations  # world -> armature space
    arm_root = root_position @ object_inv[:3, :3].T + object_inv[:3, 3]
    slot = {int(b): k for k, b in enumerate(bones)}
    rest_inv = np.linalg.inv(target.rest)
    pose = np.zeros((n, len(target.names), 4, 4))
    basis_rot = np.zeros((n, len(bones), 3, 3))
    root_location = np.zeros((n, 3))
    for b in target.ancestors_first([int(x) for x in bones]):
        p = int(target.parents[b])
        local = target.rest[b] if p < 0 else rest_inv[p] @ target.rest[b]  # parent pose -> this bone's rest
        parent = np.broadcast_to(np.eye(4), (n, 4, 4)) if p < 0 else pose[:, p]
        if b not in slot:
            pose[:, b] = parent @ local @ static_basis[b]
            continue
        chain = parent @ local  # where the bone would be with an identity basis
        chain_rot = normalised_rotation(chain[:, :3, :3])
        rot = np.swapaxes(chain_rot, -1, -2) @ arm_rot[:, slot[b]]
        basis = np.broadcast_to(static_basis[b], (n, 4, 4)).copy()
        basis[:, :3, :3] = rot
        if b == root_bone:
            offset = arm_root - chain[:, :3, 3]
            basis[:, :3, 3] = np.einsum("nji,nj->ni", chain_rot, offset)
            root_location = basis[:, :3, 3]
        pose[:, b] = chain @ basis
        basis_rot[:, slot[b]] = rot
    return basis_rot, root_location


def basis_under(parent_pose: np.ndarray, local: np.ndarray, arm_rot: np.ndarray) -> np.ndarray:
    """Basis rotations (n, 3, 3) giving a bone the armature-space rotations ``arm_rot`` under a parent whose
    evaluated pose matrices are ``parent_pose`` (n, 4, 4); ``local`` = ``Rest_parent^-1 @ Rest_bone``."""
    chain_rot = normalised_rotation((parent_pose @ local)[:, :3, :3])
    return np.swapaxes(chain_rot, -1, -2) @ arm_rot


def location_under(parent_pose: np.ndarray, local: np.ndarray, arm_position: np.ndarray) -> np.ndarray:
    """Basis locations (n, 3) putting a bone's head at ``arm_position`` (n, 3) under ``parent_pose``."""
    chain = parent_pose @ local
    chain_rot = normalised_rotation(chain[:, :3, :3])
    return np.einsum("nji,nj->ni", chain_rot, arm_position - chain[:, :3, 3])


# --- rotation conversions -----------------------------------------------------------------------------------


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(np.shape(angle) + (3, 3))
    i, j = (axis + 1) % 3, (axis + 2) % 3
    out[..., axis, axis] = 1.0
    out[..., i, i], out[..., i, j], out[..., j, i], out[..., j, j] = c, -s, s, c
    return out


def euler_to_matrix(euler: np.ndarray, order: str) -> np.ndarray:
    """Blender Euler (..., 3) in ``order`` ('XYZ': X applied first) -> rotation matrices (..., 3, 3)."""
    axes = ["XYZ".index(a) for a in order]
    out = np.broadcast_to(np.eye(3), np.shape(euler)[:-1] + (3, 3))
    for axis in axes:
        out = _axis_rotation(axis, euler[..., axis]) @ out
    return out


def matrix_to_euler(matrix: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices (n, 3, 3) -> Blender Euler angles (n, 3) in ``order``, unwrapped along the frames so
    curves do not jump by a full turn."""
    i, j, k = ("XYZ".index(a) for a in order)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0  # even permutations of XYZ, or odd
    m = np.asarray(matrix, dtype=np.float64)
    a = np.arctan2(sign * m[..., k, j], m[..., k, k])
    b = np.arctan2(-sign * m[..., k, i], np.hypot(m[..., i, i], m[..., j, i]))
    c = np.arctan2(sign * m[..., j, i], m[..., i, i])
    out = np.zeros(m.shape[:-2] + (3,))
    out[..., i], out[..., j], out[..., k] = a, b, c
    return np.unwrap(out, axis=0) if out.ndim > 1 else out


def continuous(quat: np.ndarray) -> np.ndarray:
    """Quaternions (n, K, 4) sign-flipped along the frames so each stays in the previous one's hemisphere."""
    quat = np.array(quat, copy=True)
    dots = np.sum(quat[1:] * quat[:-1], axis=-1)
    # Flip k when an odd number of sign changes happened up to it (vectorised hemisphere walk).
    flips = np.concatenate([np.zeros((1,) + dots.shape[1:], bool), np.cumsum(dots < 0, axis=0) % 2 == 1])
    quat[flips] *= -1.0
    return quat


def rotation_values(rotation: np.ndarray, mode: str) -> tuple[str, np.ndarray]:
    """Pose-bone property and values for a bone's rotation mode: quaternions, or Euler angles in its order."""
    if mode in EULER_ORDERS:
        return "rotation_euler", matrix_to_euler(rotation, mode)
    return "rotation_quaternion", continuous(matrix_to_quaternion(rotation))
