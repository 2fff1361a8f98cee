"""Which bone of a user's rig plays which SMPL joint: rig recognition and name heuristics (plain Python, no bpy).

Retargeting needs, for each of Troupe's 24 SMPL joints, the bone of the target rig that should follow it. Known
naming schemes (Mixamo, the Unreal Engine 5 mannequin, Unity/VRM humanoid, Rigify's metarig and generated rig)
are matched by table; anything else by heuristics on tokens of the bone names (side, keyword synonyms) and the
hierarchy (the spine is the chain between the pelvis and the neck). A mapping may leave joints out: the target
bone then keeps its parent's motion, which is what an animator expects for a rig with fewer spine bones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .rig import JOINT_NAMES, PRIMARY_CHILD

LEG_JOINTS = ("L_Hip", "L_Knee", "L_Ankle", "R_Hip", "R_Knee", "R_Ankle")
REQUIRED_JOINTS = ("Pelvis", *LEG_JOINTS)
SPINE_JOINTS = ("Spine1", "Spine2", "Spine3")

# Per side: SMPL joint (without its L_/R_ prefix) -> the name the scheme gives it, with {s} for the side word.
_SIDED = {
    "mixamo": {"Hip": "{S}UpLeg", "Knee": "{S}Leg", "Ankle": "{S}Foot", "Foot": "{S}ToeBase",
               "Collar": "{S}Shoulder", "Shoulder": "{S}Arm", "Elbow": "{S}ForeArm", "Wrist": "{S}Hand"},
    "ue5": {"Hip": "thigh_{s}", "Knee": "calf_{s}", "Ankle": "foot_{s}", "Foot": "ball_{s}",
            "Collar": "clavicle_{s}", "Shoulder": "upperarm_{s}", "Elbow": "lowerarm_{s}", "Wrist": "hand_{s}"},
    "humanoid": {"Hip": "{S}UpperLeg", "Knee": "{S}LowerLeg", "Ankle": "{S}Foot", "Foot": "{S}Toes",
                 "Collar": "{S}Shoulder", "Shoulder": "{S}UpperArm", "Elbow": "{S}LowerArm", "Wrist": "{S}Hand"},
    "rigify": {"Hip": "thigh_fk.{X}", "Knee": "shin_fk.{X}", "Ankle": "foot_fk.{X}", "Foot": "toe_fk.{X}",
               "Collar": "shoulder.{X}", "Shoulder": "upper_arm_fk.{X}", "Elbow": "forearm_fk.{X}",
               "Wrist": "hand_fk.{X}"},
    "rigify_metarig": {"Hip": "thigh.{X}", "Knee": "shin.{X}", "Ankle": "foot.{X}", "Foot": "toe.{X}",
                       "Collar": "shoulder.{X}", "Shoulder": "upper_arm.{X}", "Elbow": "forearm.{X}",
                       "Wrist": "hand.{X}"},
}  # fmt: skip
# Centre joints: candidates in order of preference; spine joints are filled from the chain (see _fill_spine).
_CENTRE = {
    "mixamo": {"Pelvis": ["Hips"], "Neck": ["Neck"], "Head": ["Head"]},
    "ue5": {"Pelvis": ["pelvis"], "Neck": ["neck_01"], "Head": ["head"]},
    "humanoid": {"Pelvis": ["Hips"], "Neck": ["Neck"], "Head": ["Head"]},
    "rigify_metarig": {"Pelvis": ["spine"], "Neck": ["spine.004"], "Head": ["spine.006", "spine.005"]},
    "rigify": {"Pelvis": ["torso"], "Neck": ["neck"], "Head": ["head"]},
}
_SPINE_CHAINS = {  # explicit spine bones where the scheme names them; others use the pelvis-to-neck chain
    "rigify": ["spine_fk.001", "spine_fk.002", "chest"],
    "rigify_metarig": ["spine.001", "spine.002", "spine.003"],
}
SCHEME_LABELS = {
    "mixamo": "Mixamo", "ue5": "Unreal Engine mannequin", "humanoid": "Unity/VRM humanoid",
    "rigify_metarig": "Rigify metarig", "rigify": "Rigify rig (FK controls)", "heuristic": "bone-name heuristics",
}  # fmt: skip

_PREFIX = re.compile(r"^(?:mixamorig\d*[:_]|j_bip_[clr]_|bip0?1[ _]?)", re.IGNORECASE)
_SKIP_TOKENS = {"twist", "ik", "pole", "target", "mch", "org", "roll", "end", "nub", "tip", "helper", "jiggle",
                "corrective", "ctrl", "def", "tweak", "parent", "socket", "attach", "weapon", "prop", "null", "vb",
                "finger", "index", "middle", "ring", "pinky", "thumb", "metacarpal"}  # fmt: skip
# Keyword synonyms per joint kind (lower-case tokens, or token pairs written "a b").
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "Pelvis": ("hips", "pelvis", "hip"),
    "Hip": ("upleg", "upperleg", "thigh", "upper leg", "leg upper", "femur"),
    "Knee": ("lowerleg", "calf", "shin", "knee", "lower leg", "leg lower", "crus", "leg"),
    "Ankle": ("foot", "ankle"),
    "Foot": ("toebase", "toes", "toe", "ball"),
    "Collar": ("clavicle", "collar", "shoulder"),
    "Shoulder": ("upperarm", "upper arm", "arm upper", "humerus", "arm"),
    "Elbow": ("forearm", "lowerarm", "lower arm", "arm lower", "elbow"),
    "Wrist": ("hand", "wrist"),
    "Neck": ("neck",),
    "Head": ("head",),
    "Spine": ("spine", "chest", "upperchest", "abdomen", "torso", "waist"),
}


@dataclass
class RigMapping:
    """A recognised rig: the scheme's name and SMPL joint -> target bone (joints it lacks are left out)."""

    scheme: str
    bones: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return SCHEME_LABELS.get(self.scheme, self.scheme)

    def missing_legs(self) -> list[str]:
        """Required joints (pelvis and both legs) without a bone: retargeting refuses such a mapping."""
        return [joint for joint in REQUIRED_JOINTS if not self.bones.get(joint)]


class MappingError(ValueError):
    """A mapping that cannot drive the rig; the message is one line for the user."""


def recognise(bone_names: Sequence[str], parents: Mapping[str, str | None]) -> RigMapping:
    """The best mapping for a rig with these bones (``parents``: bone -> parent bone or None).

    Known schemes are tried first; the one that names the most joints wins if it has the legs. Otherwise the
    name heuristics decide. The result may still miss joints: check :meth:`RigMapping.missing_legs`.
    """
    lookup = _NameLookup(bone_names)
    best: RigMapping | None = None
    for scheme in _SIDED:
        mapping = RigMapping(scheme, _scheme_bones(scheme, lookup, parents))
        if not mapping.missing_legs() and (best is None or len(mapping.bones) > len(best.bones)):
            best = mapping
    if best is not None:
        return best
    return RigMapping("heuristic", heuristic_bones(bone_names, parents))


class _NameLookup:
    """Bone names found case-insensitively and with a rig-wide prefix (``mixamorig:``, ``mixamorig1:``) ignored."""

    def __init__(self, names: Sequence[str]) -> None:
        self.exact = {name: name for name in names}
        self.loose: dict[str, str] = {}
        for name in names:
            self.loose.setdefault(_PREFIX.sub("", name).lower(), name)

    def find(self, wanted: str) -> str | None:
        return self.exact.get(wanted) or self.loose.get(wanted.lower())


def _scheme_bones(scheme: str, lookup: _NameLookup, parents: Mapping[str, str | None]) -> dict[str, str]:
    bones: dict[str, str] = {}
    for side, word in (("L", "left"), ("R", "right")):
        for joint, pattern in _SIDED[scheme].items():
            name = lookup.find(pattern.format(S=word.capitalize(), s=side.lower(), X=side))
            if name is None and "{S}" in pattern:  # VRM 1.0 writes leftUpperLeg
                name = lookup.find(pattern.format(S=word))
            if name:
                bones[f"{side}_{joint}"] = name
    for joint, candidates in _CENTRE[scheme].items():
        name = next((n for n in (lookup.find(c) for c in candidates) if n), None)
        if name:
            bones[joint] = name
    explicit = [lookup.find(name) for name in _SPINE_CHAINS.get(scheme, [])]
    if explicit and all(explicit):
        bones.update(zip(SPINE_JOINTS, explicit, strict=True))
    else:
        _fill_spine(bones, parents)
    return bones


def _chain(parents: Mapping[str, str | None], top: str, bottom: str) -> list[str] | None:
    """Bones strictly between ``bottom`` (an ancestor) and ``top``, from the bottom up; None if not related."""
    chain, bone = [], parents.get(top)
    while bone is not None and bone != bottom:
        chain.append(bone)
        bone = parents.get(bone)
    return chain[::-1] if bone == bottom else None


def _fill_spine(bones: dict[str, str], parents: Mapping[str, str | None]) -> None:
    """Spine1..3 from the chain between the pelvis and the neck (or the collar's parent): first, middle, last.

    A chain of two maps Spine1 and Spine3 (the upper bone takes the chest's world rotation); of one, Spine3.
    """
    pelvis = bones.get("Pelvis")
    top = bones.get("Neck") or bones.get("L_Collar") or bones.get("L_Shoulder")
    if not pelvis or not top:
        return
    chain = _chain(parents, top, pelvis)
    if chain is None:
        return
    if not chain:
        return
    picks = {1: [None, None, 0], 2: [0, None, 1]}.get(len(chain))
    if picks is None:
        last = len(chain) - 1
        picks = [0, round(last / 2), last]
    for joint, index in zip(SPINE_JOINTS, picks, strict=True):
        if index is not None:
            bones[joint] = chain[index]


# --- heuristics ---------------------------------------------------------------------------------------------


def tokens(name: str) -> list[str]:
    """Lower-case words of a bone name: camelCase, separators and digits split (``LeftUpLeg`` -> left, up, leg)."""
    name = _PREFIX.sub("", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name)
    return [t for t in re.split(r"[^A-Za-z]+", name.lower()) if t]


def side_of(name: str) -> str | None:
    """'L', 'R' or None from left/right words or single-letter tokens (``thigh.L``, ``L_Hip``, ``hand_r``)."""
    words = tokens(name)
    if "left" in words or "l" in words:
        return None if ("right" in words or "r" in words) else "L"
    if "right" in words or "r" in words:
        return "R"
    return None


def _joint_kind(words: list[str]) -> str | None:
    """The joint kind a bone's words name, preferring the most specific keyword (``upperleg`` over ``leg``)."""
    joined = " ".join(words)
    compact = "".join(words)
    best, best_len = None, 0
    for kind, keys in _KEYWORDS.items():
        for key in keys:
            hit = (key in words) if " " not in key else (f" {key} " in f" {joined} ")
            hit = hit or (" " not in key and len(key) > 4 and key in compact)
            if hit and len(key) > best_len:
                best, best_len = kind, len(key)
    return best


def heuristic_bones(bone_names: Sequence[str], parents: Mapping[str, str | None]) -> dict[str, str]:
    """SMPL joint -> bone from name tokens; among several candidates, the one nearest the root wins.

    Bones whose names mark helpers (twist, IK, pole, MCH, fingers, ...) are ignored, so the deforming chain is
    found even in rigs with many controls.
    """
    depth = {name: _depth(name, parents) for name in bone_names}
    candidates: dict[str, list[str]] = {}
    for name in bone_names:
        words = tokens(name)
        if _SKIP_TOKENS.intersection(words):
            continue
        kind = _joint_kind(words)
        if kind is None:
            continue
        side = side_of(name)
        if kind in ("Pelvis", "Neck", "Head", "Spine"):
            if kind == "Pelvis" and side is not None:  # "LeftHip" is a thigh in some rigs
                kind, joint = "Hip", f"{side}_Hip"
            else:
                joint = kind if side is None else ""
        else:
            joint = f"{side}_{kind}" if side else ""
        if joint:
            candidates.setdefault(joint, []).append(name)
    bones = {joint: min(names, key=lambda n: (depth[n], len(n))) for joint, names in candidates.items()}
    _legs_from_chain(bones, parents)
    spine = bones.pop("Spine", None)
    if "Pelvis" not in bones and spine is not None:
        bones["Pelvis"] = spine
    _fill_spine(bones, parents)
    return {joint: bone for joint, bone in bones.items() if joint in JOINT_NAMES}


def _legs_from_chain(bones: dict[str, str], parents: Mapping[str, str | None]) -> None:
    """A rig naming its legs Leg/LegLower/... gives ambiguous candidates: keep thigh -> knee -> ankle parent links."""
    for side in ("L", "R"):
        ankle = bones.get(f"{side}_Ankle")
        if ankle is None:
            continue
        knee = parents.get(ankle)
        hip = parents.get(knee) if knee else None
        if knee and hip and bones.get(f"{side}_Knee") in (None, hip):
            bones[f"{side}_Knee"], bones[f"{side}_Hip"] = knee, hip


def _depth(name: str, parents: Mapping[str, str | None]) -> int:
    depth, bone = 0, parents.get(name)
    while bone is not None and depth < 1000:
        depth, bone = depth + 1, parents.get(bone)
    return depth


def mapped_child(joint: str, bones: Mapping[str, str]) -> str | None:
    """The mapped SMPL joint a joint's bone points at (its primary child in SMPL), for aligning rest directions."""
    index = JOINT_NAMES.index(joint)
    child = PRIMARY_CHILD.get(index)
    while child is not None:
        name = JOINT_NAMES[child]
        if bones.get(name):
            return name
        child = PRIMARY_CHILD.get(child)
    return None


def smpl_order(bones: Mapping[str, str]) -> list[str]:
    """Mapped joints in SMPL order (parents before children)."""
    return [joint for joint in JOINT_NAMES if bones.get(joint)]


def check_mapping(bones: Mapping[str, str], bone_names: Sequence[str]) -> None:
    """Raise :class:`MappingError` for unknown joints, bones the rig lacks, a bone used twice, or missing legs."""
    unknown = sorted(set(bones) - set(JOINT_NAMES))
    if unknown:
        raise MappingError(f"the mapping names joints SMPL does not have: {', '.join(unknown)}")
    existing = set(bone_names)
    missing = sorted({bone for bone in bones.values() if bone and bone not in existing})
    if missing:
        raise MappingError(f"the mapping names bones the rig does not have: {', '.join(missing)}")
    used = [bone for bone in bones.values() if bone]
    twice = sorted({bone for bone in used if used.count(bone) > 1})
    if twice:
        raise MappingError(f"the mapping uses a bone for two joints: {', '.join(twice)}")
    legs = [joint for joint in REQUIRED_JOINTS if not bones.get(joint)]
    if legs:
        raise MappingError(f"no recognisable legs: no bone for {', '.join(legs)} (map them in the list)")

