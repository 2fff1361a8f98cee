"""The open body's shape space and joint regressor.

Each shape component is a linear displacement field. Most are "skeletal": every joint j gets a small linear
map A_j (stretch along its bone, scale across it), the joints move hierarchically
(dJ_child = dJ_parent + A_parent (J_child - J_parent)), and every vertex moves by the skin-weighted blend of
dJ_j + A_j (v - J_j). Parts therefore grow where they are without tearing at joints. The belly is a
free-form forward bump designed to leave the skeleton alone.

Each joint is a fixed convex combination of the vertices around it (its mean is exactly the rest joint), so
J(beta) = J_regressor @ shaped_vertices(beta) follows the surface for every beta; it stays within a few
millimetres of the hierarchical joint motion above, which the components are designed around.
"""

from __future__ import annotations

import numpy as np

from backend.body.skeleton import PARENTS, children, joint_index

SHAPE_COMPONENTS: tuple[str, ...] = ("height", "build", "shoulders", "legs", "belly", "hips")
HEIGHT_PER_UNIT = 0.10  # metres of stature per unit of beta0

_TRUNK = [joint_index(n) for n in ("pelvis", "spine1", "spine2", "spine3")]
_EXTREMITIES = [joint_index(n) for n in ("head", "left_wrist", "right_wrist", "left_hand", "right_hand",
                                          "left_ankle", "right_ankle", "left_foot", "right_foot")]


def bone_axes(joints: np.ndarray) -> np.ndarray:
    """Unit direction (24, 3) of the bone each joint drives: towards its child, or its parent's for leaves."""
    axes = np.zeros_like(joints)
    for j in range(len(joints)):
        kids = children(j)
        if j == joint_index("spine3"):
            kids = [joint_index("neck")]
        if j == joint_index("pelvis"):
            kids = [joint_index("spine1")]
        axes[j] = joints[kids[0]] - joints[j] if kids else axes[PARENTS[j]]
        axes[j] /= np.linalg.norm(axes[j])
    axes[joint_index("head")] = (0.0, 1.0, 0.0)
    return axes


def _along(u: np.ndarray) -> np.ndarray:
    return np.outer(u, u)


def _across(u: np.ndarray) -> np.ndarray:
    return np.eye(3) - np.outer(u, u)


def _component_maps(name: str, axes: np.ndarray) -> np.ndarray:
    """The per-joint linear maps (24, 3, 3) of a skeletal component, per unit of beta (before calibration)."""
    maps = np.zeros((len(axes), 3, 3))
    x_only = np.diag([1.0, 0.0, 0.0])
    for j, u in enumerate(axes):
        if name == "height":  # longer bones, slightly wider body
            maps[j] = _along(u) + 0.5 * _across(u)
        elif name == "build":  # girth everywhere, less on head, hands and feet
            maps[j] = (0.3 if j in _EXTREMITIES else 1.0) * 0.08 * _across(u)
    if name == "shoulders":
        maps[joint_index("spine3")] = 0.15 * x_only
        maps[joint_index("spine2")] = 0.07 * x_only
        for side in ("left_collar", "right_collar"):
            maps[joint_index(side)] = 0.15 * _along(axes[joint_index(side)])
    elif name == "legs":
        for side in ("left_hip", "right_hip", "left_knee", "right_knee"):
            maps[joint_index(side)] = 0.06 * _along(axes[joint_index(side)])
    elif name == "hips":
        maps[joint_index("pelvis")] = 0.10 * np.diag([1.0, 0.0, 0.3])
        maps[joint_index("spine1")] = 0.05 * np.diag([1.0, 0.0, 0.3])
        for side in ("left_hip", "right_hip"):
            maps[joint_index(side)] = 0.05 * _across(axes[joint_index(side)])
    return maps


def skeletal_field(
    vertices: np.ndarray, weights: np.ndarray, joints: np.ndarray, maps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex displacements (V, 3) and joint displacements (24, 3) of one skeletal component (root fixed)."""
    d_joints = np.zeros_like(joints)
    for j, p in enumerate(PARENTS):
        if p >= 0:
            d_joints[j] = d_joints[p] + maps[p] @ (joints[j] - joints[p])
    local = np.einsum("jab,vjb->vja", maps, vertices[:, None, :] - joints[None, :, :]) + d_joints[None]
    return np.einsum("vj,vja->va", weights, local), d_joints


def belly_field(vertices: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """A forward bulge of the lower trunk (3 cm at its peak per unit), fading out to the sides and limbs."""
    trunk = weights[:, _TRUNK].sum(axis=1)
    centre_y = 0.5 * (joints[joint_index("spine1"), 1] + joints[joint_index("spine2"), 1])
    x, y, z = vertices.T
    front = np.clip((z - joints[joint_index("spine1"), 2]) / 0.08, 0.0, 1.0)
    bump = np.exp(-(((y - centre_y) / 0.11) ** 2) - (x / 0.12) ** 2) * front**2 * trunk
    field = np.zeros_like(vertices)
    field[:, 2] = 0.03 * bump
    field[:, 0] = 0.01 * bump * np.tanh(x / 0.05)
    return field


def shape_space(
    vertices: np.ndarray, weights: np.ndarray, joints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """shapedirs (V, 3, K) and the matching joint displacements (24, 3, K) of SHAPE_COMPONENTS."""
    axes = bone_axes(joints)
    dirs, d_joints = [], []
    for name in SHAPE_COMPONENTS:
        if name == "belly":
            dirs.append(belly_field(vertices, weights, joints))
            d_joints.append(np.zeros_like(joints))
            continue
        field, dj = skeletal_field(vertices, weights, joints, _component_maps(name, axes))
        if name == "height":
            scale = HEIGHT_PER_UNIT / _stature_change(vertices, field)
            field, dj = field * scale, dj * scale
        dirs.append(field)
        d_joints.append(dj)
    return np.stack(dirs, axis=-1), np.stack(d_joints, axis=-1)


def _stature_change(vertices: np.ndarray, field: np.ndarray) -> float:
    """Change of (top - bottom) per unit of a displacement field (central difference)."""
    def stature(v: np.ndarray) -> float:
        return float(v[:, 1].max() - v[:, 1].min())

    return 0.5 * (stature(vertices + field) - stature(vertices - field))


def joint_regressor(vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Dense (24, V) regressor: each joint a convex combination of nearby vertices whose mean is the joint."""
    regressor = np.zeros((len(joints), len(vertices)))
    for j, joint in enumerate(joints):
        dist = np.linalg.norm(vertices - joint, axis=1)
        radius = max(2.0 * dist.min(), np.sort(dist)[95], 0.04)
        near = np.flatnonzero(dist <= radius)
        prior = np.exp(-2.0 * (dist[near] / radius) ** 2)
        weights = _centred_weights(vertices[near] - joint, prior / prior.sum())
        if np.abs(weights @ vertices[near] - joint).max() > 1e-9:
            raise RuntimeError(f"open body: joint {j} is not surrounded by its vertices")
        regressor[j, near] = weights
    return regressor


def _centred_weights(offsets: np.ndarray, prior: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Positive weights closest to ``prior`` (in relative entropy) whose weighted mean offset is zero.

    The solution is prior * exp(offsets @ lam), normalised; Newton's method on the convex dual finds lam.
    It exists whenever the joint lies strictly inside the convex hull of the vertices, as joints do.
    """
    lam = np.zeros(3)
    for _ in range(iterations):
        logits = offsets @ lam
        w = prior * np.exp(logits - logits.max())
        w /= w.sum()
        mean = w @ offsets
        if np.abs(mean).max() < 1e-13:
            break
        cov = (offsets * w[:, None]).T @ offsets - np.outer(mean, mean)
        lam -= np.linalg.solve(cov + 1e-12 * np.eye(3), mean)
    return w
