"""The bone names each engine's humanoid tools expect, for renaming Troupe's SMPL skeleton on export (no bpy).

Engines find a humanoid's bones by name: Unity's Avatar auto-mapping, Unreal's IK Retargeter chains, Mixamo's
uploader and every Mixamo-named asset. Exporting with their names lets those tools take the skeleton as it is.
The retarget side (``rigmap``) recognises the same names, so an exported file retargets back onto itself.
"""

from __future__ import annotations

from .rig import JOINT_NAMES

# Per side: SMPL joint without its L_/R_ prefix -> the scheme's name, {S} = Left/Right, {s} = l/r.
_SIDED = {
    "MIXAMO": {"Hip": "mixamorig:{S}UpLeg", "Knee": "mixamorig:{S}Leg", "Ankle": "mixamorig:{S}Foot",
               "Foot": "mixamorig:{S}ToeBase", "Collar": "mixamorig:{S}Shoulder", "Shoulder": "mixamorig:{S}Arm",
               "Elbow": "mixamorig:{S}ForeArm", "Wrist": "mixamorig:{S}Hand", "Hand": "mixamorig:{S}HandMiddle1"},
    "UE5": {"Hip": "thigh_{s}", "Knee": "calf_{s}", "Ankle": "foot_{s}", "Foot": "ball_{s}", "Collar": "clavicle_{s}",
            "Shoulder": "upperarm_{s}", "Elbow": "lowerarm_{s}", "Wrist": "hand_{s}", "Hand": "middle_01_{s}"},
    "HUMANOID": {"Hip": "{S}UpperLeg", "Knee": "{S}LowerLeg", "Ankle": "{S}Foot", "Foot": "{S}Toes",
                 "Collar": "{S}Shoulder", "Shoulder": "{S}UpperArm", "Elbow": "{S}LowerArm", "Wrist": "{S}Hand",
                 "Hand": "{S}MiddleProximal"},
}  # fmt: skip
# SMPL's three spine joints go to the scheme's lowest, middle and chest bones (UE5 has five: 1, 3 and 5).
_CENTRE = {
    "MIXAMO": {"Pelvis": "mixamorig:Hips", "Spine1": "mixamorig:Spine", "Spine2": "mixamorig:Spine1",
               "Spine3": "mixamorig:Spine2", "Neck": "mixamorig:Neck", "Head": "mixamorig:Head"},
    "UE5": {"Pelvis": "pelvis", "Spine1": "spine_01", "Spine2": "spine_03", "Spine3": "spine_05", "Neck": "neck_01",
            "Head": "head"},
    "HUMANOID": {"Pelvis": "Hips", "Spine1": "Spine", "Spine2": "Chest", "Spine3": "UpperChest", "Neck": "Neck",
                 "Head": "Head"},
}  # fmt: skip
NAMINGS = [
    ("SMPL", "SMPL", "Troupe's own SMPL joint names (Pelvis, L_Hip, ...)"),
    ("HUMANOID", "Unity humanoid", "Unity/VRM humanoid names (Hips, LeftUpperLeg, ...)"),
    ("UE5", "Unreal mannequin", "UE5 mannequin names (pelvis, thigh_l, ...) under a root bone"),
    ("MIXAMO", "Mixamo", "Mixamo names (mixamorig:Hips, mixamorig:LeftUpLeg, ...)"),
]
ROOT_BONE = {"UE5": "root"}  # schemes whose skeletons start with a bone at the origin above the pelvis


def bone_names(scheme: str) -> dict[str, str]:
    """SMPL joint -> the scheme's bone name, for all 24 joints ('SMPL' maps each joint to itself)."""
    if scheme == "SMPL":
        return {joint: joint for joint in JOINT_NAMES}
    if scheme not in _CENTRE:
        raise ValueError(f"unknown bone naming {scheme!r}; expected one of {[n[0] for n in NAMINGS]}")
    names = dict(_CENTRE[scheme])
    for side, word in (("L", "Left"), ("R", "Right")):
        for joint, pattern in _SIDED[scheme].items():
            names[f"{side}_{joint}"] = pattern.format(S=word, s=side.lower())
    return {joint: names[joint] for joint in JOINT_NAMES}
