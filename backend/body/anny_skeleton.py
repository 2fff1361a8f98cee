"""How Anny's 104-bone skeleton (its default ``anny`` rig, from MakeHuman) maps onto SMPL's 24 joints.

Each Anny bone drives exactly one SMPL joint: its skinning weights are added to that joint's column. A bone with
no SMPL counterpart (twist bones, toes, fingers, eyes, the extra spine and neck segments) is given to the joint
its parent maps to, so it follows that joint rigidly: posing the 24 joints with these summed weights is exactly
Anny's own skinning with every unmapped bone left at its rest rotation relative to its parent.

Where a joint sits: the head of one Anny bone (``JOINT_BONE``), or the mean of several bone heads for the two
joints SMPL puts between bones (the ball of the foot, the knuckles).
"""

from __future__ import annotations

from backend.body.skeleton import JOINT_NAMES

_SIDES = {"L": "left", "R": "right"}


def _side_bones(side: str) -> dict[str, str]:
    s, name = side, _SIDES[side]
    bones = {
        f"pelvis.{s}": "pelvis",
        f"upperleg01.{s}": f"{name}_hip", f"upperleg02.{s}": f"{name}_hip",
        f"lowerleg01.{s}": f"{name}_knee", f"lowerleg02.{s}": f"{name}_knee",
        f"foot.{s}": f"{name}_ankle",
        f"clavicle.{s}": f"{name}_collar", f"shoulder01.{s}": f"{name}_collar",
        f"upperarm01.{s}": f"{name}_shoulder", f"upperarm02.{s}": f"{name}_shoulder",
        f"lowerarm01.{s}": f"{name}_elbow", f"lowerarm02.{s}": f"{name}_elbow",
        f"wrist.{s}": f"{name}_wrist",
        f"eye.{s}": "head",
    }
    for toe in range(1, 6):
        for segment in range(1, 4):
            bones[f"toe{toe}-{segment}.{s}"] = f"{name}_foot"
    for finger in range(1, 6):
        bones[f"metacarpal{finger}.{s}"] = f"{name}_hand"
        for segment in range(1, 4):
            bones[f"finger{finger}-{segment}.{s}"] = f"{name}_hand"
    return bones


# Anny bone -> SMPL joint. The spine: Anny's spine05 starts at the root, spine04..spine01 climb to the chest.
BONE_TO_JOINT: dict[str, str] = {
    "root": "pelvis", "spine05": "pelvis",
    "spine04": "spine1", "spine03": "spine1",
    "spine02": "spine2",
    "spine01": "spine3",
    "neck01": "neck", "neck02": "neck", "neck03": "neck",
    "head": "head",
    **_side_bones("L"), **_side_bones("R"),
}

# SMPL joint -> the Anny bone heads whose mean is its rest position.
JOINT_BONE: dict[str, tuple[str, ...]] = {
    "pelvis": ("root",), "spine1": ("spine04",), "spine2": ("spine02",), "spine3": ("spine01",),
    "neck": ("neck01",), "head": ("head",),
}
for _s, _name in _SIDES.items():
    JOINT_BONE.update({
        f"{_name}_hip": (f"upperleg01.{_s}",), f"{_name}_knee": (f"lowerleg01.{_s}",),
        f"{_name}_ankle": (f"foot.{_s}",), f"{_name}_foot": tuple(f"toe{t}-1.{_s}" for t in range(1, 6)),
        f"{_name}_collar": (f"clavicle.{_s}",), f"{_name}_shoulder": (f"upperarm01.{_s}",),
        f"{_name}_elbow": (f"lowerarm01.{_s}",), f"{_name}_wrist": (f"wrist.{_s}",),
        f"{_name}_hand": tuple(f"finger{f}-1.{_s}" for f in range(2, 6)),
    })

assert set(JOINT_BONE) == set(JOINT_NAMES)  # every SMPL joint is placed
assert set(BONE_TO_JOINT.values()) == set(JOINT_NAMES)  # and drives some of the skin


def joint_of_bones(bone_labels: list[str]) -> list[int]:
    """For Anny's bones (in its order), the index of the SMPL joint each one drives.

    Raises ``KeyError`` naming the bone when Anny's rig has a bone this map does not know (a newer rig)."""
    unknown = [bone for bone in bone_labels if bone not in BONE_TO_JOINT]
    if unknown:
        raise KeyError(f"Anny bones without an SMPL joint: {', '.join(unknown)}")
    return [JOINT_NAMES.index(BONE_TO_JOINT[bone]) for bone in bone_labels]
