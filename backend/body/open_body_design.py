"""The open body's design data: skeleton, body parts and landmark targets, all in SMPL's canonical frame.

Metres; y up, the body faces +z, T-pose with palms down; +x is the body's left (as in SMPL). Proportions are
those of an average adult (about 1.71 m); only the left side is written out, the right side is its mirror
image. Plain numbers, no data taken from any licensed model.
"""

from __future__ import annotations

import numpy as np

from backend.body.sdf import Part
from backend.body.skeleton import JOINT_NAMES

# Mirror partner of each joint (left <-> right).
MIRROR: tuple[int, ...] = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)

_LEFT_AND_CENTRE_JOINTS: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, -0.225, 0.020),
    "left_hip": (0.072, -0.310, 0.015),
    "spine1": (0.0, -0.115, 0.000),
    "left_knee": (0.098, -0.690, 0.012),
    "spine2": (0.0, 0.020, 0.005),
    "left_ankle": (0.088, -1.085, -0.030),
    "spine3": (0.0, 0.075, 0.028),
    "left_foot": (0.112, -1.145, 0.095),
    "neck": (0.0, 0.288, -0.015),
    "left_collar": (0.080, 0.195, -0.008),
    "head": (0.0, 0.355, 0.045),
    "left_shoulder": (0.176, 0.234, -0.020),
    "left_elbow": (0.432, 0.222, -0.042),
    "left_wrist": (0.684, 0.228, -0.046),
    "left_hand": (0.770, 0.220, -0.058),
}


def rest_joints() -> np.ndarray:
    """The (24, 3) rest skeleton."""
    joints = np.zeros((len(JOINT_NAMES), 3))
    for name, xyz in _LEFT_AND_CENTRE_JOINTS.items():
        j = JOINT_NAMES.index(name)
        joints[j] = xyz
        joints[MIRROR[j]] = (-xyz[0], xyz[1], xyz[2])
    return joints


_J = {name: JOINT_NAMES.index(name) for name in JOINT_NAMES}
_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def _ellipsoid(name: str, joint: str, centre, radii, axis=_Y, side=_X, blend=0.02, group="core") -> Part:
    """An ellipsoid: radii are (along side, across, along axis)."""
    return Part(name, _J[joint], centre, centre, radii, radii, side=side, axis=axis, blend=blend, group=group)


def _core_parts() -> list[Part]:
    """Trunk and head, symmetric about x = 0 (pectorals and glutes come in pairs)."""
    parts = [
        Part("hips", _J["pelvis"], (0, -0.30, -0.005), (0, -0.19, 0.0), (0.150, 0.100, 0.10), (0.140, 0.095, 0.095),
             blend=0.04),
        Part("belly", _J["spine1"], (0, -0.17, 0.005), (0, -0.02, 0.005), (0.138, 0.095, 0.09),
             (0.132, 0.092, 0.09), blend=0.04),
        Part("lower_chest", _J["spine2"], (0, 0.0, 0.005), (0, 0.09, 0.01), (0.134, 0.095, 0.09),
             (0.150, 0.104, 0.09), blend=0.04),
        Part("chest", _J["spine3"], (0, 0.10, 0.01), (0, 0.20, -0.012), (0.152, 0.104, 0.09), (0.148, 0.088, 0.07),
             blend=0.04),
        Part("neck", _J["neck"], (0, 0.24, -0.015), (0, 0.37, 0.005), (0.058, 0.058, 0.05), (0.052, 0.052, 0.05),
             blend=0.03),
        _ellipsoid("skull", "head", (0, 0.44, 0.015), (0.077, 0.094, 0.100), blend=0.02),
        _ellipsoid("jaw", "head", (0, 0.385, 0.045), (0.058, 0.055, 0.060), blend=0.03),
        _ellipsoid("nose", "head", (0, 0.418, 0.110), (0.012, 0.016, 0.022), blend=0.01),
    ]
    for sign in (1.0, -1.0):
        parts += [
            _ellipsoid("pectoral", "spine3", (sign * 0.07, 0.145, 0.065), (0.070, 0.045, 0.055), blend=0.03),
            _ellipsoid("glute", "pelvis", (sign * 0.07, -0.29, -0.05), (0.080, 0.065, 0.085), blend=0.03),
            _ellipsoid("ear", "head", (sign * 0.076, 0.43, 0.005), (0.012, 0.020, 0.030), blend=0.008),
        ]
    return parts


def _left_limb_parts() -> list[Part]:
    """Left arm and leg, in groups that blend with the trunk but not with each other."""
    arm = [
        Part("trapezius", _J["left_collar"], (0.03, 0.255, -0.025), (0.15, 0.245, -0.02), (0.045, 0.050, 0.045),
             (0.050, 0.050, 0.05), side=_Y, blend=0.04, group="left_arm"),
        _ellipsoid("deltoid", "left_shoulder", (0.18, 0.228, -0.02), (0.062, 0.062, 0.070), axis=_X, side=_Y,
                   blend=0.03, group="left_arm"),
        Part("upper_arm", _J["left_shoulder"], (0.18, 0.232, -0.022), (0.432, 0.222, -0.042), (0.050, 0.050, 0.05),
             (0.038, 0.040, 0.04), side=_Y, blend=0.02, group="left_arm"),
        Part("forearm", _J["left_elbow"], (0.432, 0.222, -0.042), (0.684, 0.228, -0.046), (0.036, 0.042, 0.04),
             (0.022, 0.030, 0.026), side=_Y, blend=0.02, group="left_arm"),
        Part("palm", _J["left_wrist"], (0.695, 0.226, -0.048), (0.775, 0.221, -0.056), (0.016, 0.040, 0.02),
             (0.015, 0.043, 0.02), side=_Y, blend=0.015, group="left_arm"),
        Part("thumb", _J["left_wrist"], (0.71, 0.216, -0.02), (0.77, 0.210, 0.018), (0.016, 0.016, 0.016),
             (0.013, 0.013, 0.013), side=_Y, blend=0.012, group="left_arm"),
        Part("fingers", _J["left_hand"], (0.785, 0.220, -0.058), (0.86, 0.214, -0.060), (0.013, 0.040, 0.02),
             (0.010, 0.032, 0.02), side=_Y, blend=0.012, group="left_arm"),
    ]
    leg = [
        Part("thigh", _J["left_hip"], (0.088, -0.31, 0.012), (0.098, -0.66, 0.012), (0.078, 0.078, 0.078),
             (0.058, 0.058, 0.058), blend=0.04, group="left_leg"),
        Part("shin", _J["left_knee"], (0.098, -0.69, 0.012), (0.088, -1.06, -0.03), (0.052, 0.052, 0.052),
             (0.036, 0.036, 0.036), blend=0.03, group="left_leg"),
        _ellipsoid("calf", "left_knee", (0.095, -0.82, -0.025), (0.048, 0.050, 0.110), blend=0.03, group="left_leg"),
        _ellipsoid("ankle", "left_ankle", (0.088, -1.095, -0.025), (0.036, 0.040, 0.040), blend=0.02,
                   group="left_leg"),
        Part("foot", _J["left_ankle"], (0.088, -1.13, -0.045), (0.108, -1.14, 0.085), (0.032, 0.040, 0.035),
             (0.045, 0.030, 0.03), blend=0.02, group="left_leg"),
        Part("toes", _J["left_foot"], (0.112, -1.148, 0.10), (0.115, -1.152, 0.145), (0.044, 0.022, 0.02),
             (0.036, 0.018, 0.02), blend=0.015, group="left_leg"),
    ]
    return arm + leg


def _mirror(part: Part) -> Part:
    """The same part on the right side."""
    flip = lambda v: (-v[0], v[1], v[2])  # noqa: E731
    return Part(part.name, MIRROR[part.joint], flip(part.a), flip(part.b), part.radii_a, part.radii_b,
                side=flip(part.side), axis=flip(part.axis), blend=part.blend,
                group=part.group.replace("left", "right"))


def parts() -> list[Part]:
    """Every part of the body."""
    left = _left_limb_parts()
    return _core_parts() + left + [_mirror(p) for p in left]


# Where each landmark sits (the nearest surface vertex is taken); left side, mirrored for the right.
LANDMARK_TARGETS: dict[str, tuple[float, float, float]] = {
    "nose": (0.0, 0.418, 0.13),
    "left_eye": (0.033, 0.45, 0.099),
    "left_ear": (0.09, 0.43, 0.005),
    "left_mouth": (0.024, 0.38, 0.097),
    "left_heel": (0.088, -1.14, -0.085),
    "left_big_toe": (0.095, -1.155, 0.17),
    "left_small_toe": (0.15, -1.155, 0.14),
}


def landmark_targets() -> dict[str, np.ndarray]:
    """Target points of every landmark, both sides."""
    out = {}
    for name, xyz in LANDMARK_TARGETS.items():
        out[name] = np.asarray(xyz)
        if name.startswith("left_"):
            out["right_" + name[5:]] = np.asarray((-xyz[0], xyz[1], xyz[2]))
    return out
