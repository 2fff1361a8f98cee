"""Retargeting Troupe people onto the user's own rigs (Blender side; the maths is in ``motion.py``).

For each person and target armature: read the person's keys in bulk, run forward kinematics for all frames in
numpy, turn each mapped bone's world rotation into the target bone's (relative to both rests, so T/A-pose, bone
rolls and facing do not matter), solve the target's pose-bone values through its own parent chain, and write
them as a new action with one ``foreach_set`` per F-curve (``keyframes.set_keys``). Root motion is scaled by the
ratio of leg lengths. The mapping lives on the target object (``Object.troupe_bone_map``, shown as a list the
user can edit) and can be saved as a JSON preset in Blender's user presets folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from . import keyframes, motion, rig, rigmap
from .export import VISIBILITY_PATHS, fcurves, keyed_frames
from .rigmap import MappingError, RigMapping
from .scene import PROP_TRACK, _Created

MAP_PROP = "troupe_bone_map"  # Object: CollectionProperty of (joint, bone), registered by finish.py
SCHEME_PROP = "troupe_rig_scheme"
PRESET_FORMAT = "troupe-bone-map/1"
PRESET_SUBDIR = "presets/troupe/retarget"
LEGS = (("L_Hip", "L_Knee", "L_Ankle"), ("R_Hip", "R_Knee", "R_Ankle"))
UP_JOINTS = ("Neck", "Spine3", "Spine2", "Head", "Spine1")
# Rigify: drive the FK controls, and let neck and head inherit the spine's rotation (their defaults half-isolate
# them, which the rest-relative solve cannot see through constraints).
RIGIFY_SETTINGS = {"IK_FK": 1.0, "neck_follow": 1.0, "head_follow": 1.0, "FK_limb_follow": 0.0}


class RetargetError(ValueError):
    """Input the retarget cannot use; the message is one line for the user."""


@dataclass
class Outcome:
    """What one retarget produced, for the operator's report."""

    target: bpy.types.Object
    action: bpy.types.Action
    frames: int
    scheme: str
    notes: list[str] = field(default_factory=list)


# --- reading armatures --------------------------------------------------------------------------------------


def skeleton(obj: bpy.types.Object, order: tuple[str, ...] | None = None) -> motion.Skeleton:
    """The armature's rest state, bones ordered parents first (in ``order`` when given, itself parents first)."""
    bones = obj.data.bones
    if order is not None:
        names = list(order)
        parents = np.array([names.index(bones[n].parent.name) if bones[n].parent else -1 for n in names])
    else:
        names, parents = motion.sort_parents_first([b.name for b in bones],
                                                   [b.parent.name if b.parent else None for b in bones])
    rest = np.array([np.array(bones[name].matrix_local) for name in names])
    return motion.Skeleton(names=names, parents=parents, rest=rest, world=np.array(obj.matrix_world))


def static_basis(obj: bpy.types.Object, skel: motion.Skeleton) -> np.ndarray:
    """Each pose bone's current basis matrix (B, 4, 4): what unmapped bones keep while the mapped ones move."""
    return np.array([np.array(obj.pose.bones[name].matrix_basis) for name in skel.names])


def _curve_values(curve: bpy.types.FCurve | None, frames: np.ndarray, default: float) -> np.ndarray:
    """A curve's values at ``frames``: its keys when they are exactly those frames (Troupe's keys), else linear
    interpolation between its keys (Troupe keys are linear)."""
    if curve is None or len(curve.keyframe_points) == 0:
        return np.full(len(frames), default)
    co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
    curve.keyframe_points.foreach_get("co", co)
    keys, values = co[0::2].astype(np.float64), co[1::2].astype(np.float64)
    if len(keys) == len(frames) and np.array_equal(keys, frames):
        return values
    return np.interp(frames, keys, values)


def read_person(person: bpy.types.Object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Troupe person's keyed frames (n,), bone quaternions (n, 24, 4) and root location (n, 3), in bulk."""
    frames = keyed_frames(person).astype(np.float64)
    curves = {(c.data_path, c.array_index): c for c in fcurves(person)}
    quat = np.empty((len(frames), rig.NUM_JOINTS, 4))
    for j, name in enumerate(rig.JOINT_NAMES):
        for k in range(4):
            curve = curves.get((f'pose.bones["{name}"].rotation_quaternion', k))
            quat[:, j, k] = _curve_values(curve, frames, 1.0 if k == 0 else 0.0)
    root = rig.JOINT_NAMES[0]
    location = np.stack([_curve_values(curves.get((f'pose.bones["{root}"].location', k)), frames, 0.0)
                         for k in range(3)], axis=-1)
    return frames, quat, location


def person_world_pose(person: bpy.types.Object) -> tuple[np.ndarray, np.ndarray, motion.Skeleton]:
    """Frames (n,), world pose matrices (n, 24, 4, 4) of the person's bones, and its skeleton."""
    frames, quat, location = read_person(person)
    if sorted(b.name for b in person.data.bones) != sorted(rig.JOINT_NAMES):
        raise RetargetError(f"'{person.name}' does not have Troupe's SMPL bones")
    skel = skeleton(person, rig.JOINT_NAMES)
    locations = np.zeros(quat.shape[:-1] + (3,))
    locations[:, 0] = location
    pose = motion.forward(skel, motion.basis_matrices(quat, locations))
    return frames, skel.world @ pose, skel


# --- mappings -----------------------------------------------------------------------------------------------


def detect(target: bpy.types.Object) -> RigMapping:
    """Recognise the target's naming scheme (or fall back to heuristics); raises if it is no armature."""
    _check_armature(target)
    bones = target.data.bones
    return rigmap.recognise([b.name for b in bones], {b.name: b.parent.name if b.parent else None for b in bones})


def _check_armature(obj: bpy.types.Object | None) -> None:
    if obj is None:
        raise RetargetError("no target armature chosen")
    if obj.type != "ARMATURE":
        raise RetargetError(f"'{obj.name}' is not an armature (it is a {obj.type.lower()})")
    if PROP_TRACK in obj:
        raise RetargetError(f"'{obj.name}' is a Troupe person, not a target rig")


def stored_mapping(target: bpy.types.Object) -> dict[str, str]:
    """The mapping the user sees in the list on the target (joint -> bone; empty bones left out)."""
    return {item.joint: item.bone for item in getattr(target, MAP_PROP, []) if item.bone}


def store_mapping(target: bpy.types.Object, bones: dict[str, str], scheme: str) -> None:
    """Write the mapping into the target's list: one row per SMPL joint, empty where no bone plays it."""
    items = getattr(target, MAP_PROP)
    items.clear()
    for joint in rig.JOINT_NAMES:
        item = items.add()
        item.joint, item.bone = joint, bones.get(joint, "")
    target[SCHEME_PROP] = scheme


def mapping_for(target: bpy.types.Object) -> tuple[dict[str, str], str]:
    """The target's list if filled in, else a detected mapping (stored on the target so the user sees it)."""
    _check_armature(target)
    bones = stored_mapping(target)
    scheme = str(target.get(SCHEME_PROP, "custom"))
    if not bones:
        found = detect(target)
        bones, scheme = found.bones, found.scheme
    rigmap.check_mapping(bones, [b.name for b in target.data.bones])
    return bones, scheme


def preset_dir(create: bool = False) -> Path:
    """Presets live under Blender's user scripts folder (``presets/troupe/retarget``), never the home directly."""
    return Path(bpy.utils.user_resource("SCRIPTS", path=PRESET_SUBDIR, create=create))


def preset_names() -> list[str]:
    folder = preset_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def _preset_path(name: str, create: bool = False) -> Path:
    clean = re.sub(r"[^\w\- ]+", "_", name).strip()
    if not clean:
        raise RetargetError("a preset needs a name")
    return preset_dir(create) / f"{clean}.json"


def save_preset(name: str, target: bpy.types.Object) -> Path:
    """Save the target's mapping (checked first) as a JSON preset; returns its path."""
    bones, scheme = mapping_for(target)
    path = _preset_path(name, create=True)
    path.write_text(json.dumps({"format": PRESET_FORMAT, "scheme": scheme, "bones": bones}, indent=1),
                    encoding="utf-8")
    return path


def load_preset(name: str, target: bpy.types.Object) -> dict[str, str]:
    """Put a preset's mapping on the target, after checking every bone it names exists there (else nothing
    changes and the error names the missing bones)."""
    _check_armature(target)
    path = _preset_path(name)
    if not path.is_file():
        raise RetargetError(f"no preset '{name}' in {path.parent}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RetargetError(f"preset '{name}' is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT or not isinstance(data.get("bones"), dict):
        raise RetargetError(f"preset '{name}' is not a Troupe bone map")
    bones = {str(k): str(v) for k, v in data["bones"].items()}
    try:
        rigmap.check_mapping(bones, [b.name for b in target.data.bones])
    except MappingError as exc:
        raise RetargetError(f"preset '{name}' does not fit '{target.name}': {exc}") from exc
    store_mapping(target, bones, str(data.get("scheme", "custom")))
    return bones


# --- retargeting --------------------------------------------------------------------------------------------


def plan(person_skel: motion.Skeleton, target: bpy.types.Object, target_skel: motion.Skeleton,
         bones: dict[str, str]) -> motion.RetargetPlan:
    """The fixed part of a retarget: pairs in SMPL order (pelvis first), rest offsets, leg-length scale."""
    joints = rigmap.smpl_order(bones)
    pairs = [(joint, bones[joint]) for joint in joints]
    children = {joint: rigmap.mapped_child(joint, bones) for joint in joints}
    top = next((j for j in UP_JOINTS if j in bones), None)
    if top is None:
        raise RetargetError(f"'{target.name}': map at least one spine, neck or head bone (the body's up)")
    return motion.plan_retarget(person_skel, target_skel, pairs, children, LEGS, top)


def retarget(person: bpy.types.Object, target: bpy.types.Object, created: _Created | None = None) -> Outcome:
    """Bake ``person``'s motion onto ``target`` as a new action (the old one keeps a fake user, so it is not
    lost). Raises :class:`RetargetError` / :class:`MappingError` before changing anything."""
    bones, scheme = mapping_for(target)
    frames, source_world, person_skel = person_world_pose(person)
    target_skel = skeleton(target)
    retarget_plan = plan(person_skel, target, target_skel, bones)
    if not stored_mapping(target):
        store_mapping(target, bones, scheme)  # the user sees (and can edit) what was used
    notes = _prepare_rigify(target) if scheme == "rigify" else []
    rotations, root = motion.retarget_world(retarget_plan, source_world)
    bones_idx = retarget_plan.target_bones
    basis_rot, root_location = motion.local_from_world(
        target_skel, bones_idx, rotations, int(bones_idx[0]), root, static_basis(target, target_skel))
    action = _new_action(target, f"{target.name} | {person.name}", created)
    keys = _Keys(target, target_skel, frames)
    keys.rotations([int(b) for b in bones_idx], basis_rot)
    keys.location(int(bones_idx[0]), root_location)
    constrained = _constrained(target, target_skel, [int(b) for b in bones_idx])
    if constrained:
        joints = [joint for joint in rig.JOINT_NAMES if joint in bones]
        arm_rot = target_skel.world_rotation().T @ rotations
        arm_root = root @ np.linalg.inv(target_skel.world)[:3, :3].T + np.linalg.inv(target_skel.world)[:3, 3]
        _settle(keys, {int(b): (joints[k], arm_rot[:, k]) for k, b in enumerate(bones_idx) if int(b) in constrained},
                int(bones_idx[0]), arm_root)
        notes.append(f"'{target.name}': {len(constrained)} bones sit under constraints; solved frame by frame")
    if retarget_plan.scale < 0.3 or retarget_plan.scale > 3.0:
        notes.append(f"'{target.name}' legs are {retarget_plan.scale:.2f}x the person's: check the rig's scale")
    return Outcome(target=target, action=action, frames=len(frames), scheme=scheme, notes=notes)


class _Keys:
    """Writes one target's pose-bone keys in bulk, in each bone's own rotation mode."""

    def __init__(self, target: bpy.types.Object, skel: motion.Skeleton, frames: np.ndarray) -> None:
        self.target, self.skel, self.frames = target, skel, frames

    def rotations(self, bones: list[int], basis_rot: np.ndarray) -> None:
        """Key ``bones`` with basis rotations (n, K, 3, 3); quaternion bones converted in one batch."""
        modes = []
        for bone in bones:
            pose_bone = self.target.pose.bones[self.skel.names[bone]]
            if pose_bone.rotation_mode == "AXIS_ANGLE":
                pose_bone.rotation_mode = "QUATERNION"
            modes.append(pose_bone.rotation_mode)
        quat_slots = [k for k, mode in enumerate(modes) if mode not in motion.EULER_ORDERS]
        quats = motion.rotation_values(basis_rot[:, quat_slots], "QUATERNION")[1] if quat_slots else None
        for k, bone in enumerate(bones):
            name = self.skel.names[bone]
            if modes[k] in motion.EULER_ORDERS:
                prop, values = motion.rotation_values(basis_rot[:, k], modes[k])
            else:
                prop, values = "rotation_quaternion", quats[:, quat_slots.index(k)]
            keyframes.set_keys(self.target, f'pose.bones["{name}"].{prop}', self.frames, values, group=name)

    def rotation(self, bone: int, basis_rot: np.ndarray) -> None:
        self.rotations([bone], basis_rot[:, None])

    def location(self, bone: int, values: np.ndarray) -> None:
        name = self.skel.names[bone]
        keyframes.set_keys(self.target, f'pose.bones["{name}"].location', self.frames, values, group=name)


def _active_constraints(pose_bone: bpy.types.PoseBone) -> bool:
    return any(c.enabled if hasattr(c, "enabled") else not c.mute for c in pose_bone.constraints
               if c.influence > 0.0 and c.type not in ("COPY_SCALE", "LIMIT_SCALE", "MAINTAIN_VOLUME"))


def _constrained(target: bpy.types.Object, skel: motion.Skeleton, mapped: list[int]) -> set[int]:
    """Mapped bones whose parent chain, up to the nearest mapped ancestor, holds constrained bones (Rigify's
    MCH bones): their parent's pose cannot be predicted from rest matrices, it must be read from Blender."""
    mapped_set, out = set(mapped), set()
    for b in mapped:
        p = int(skel.parents[b])
        while p >= 0 and p not in mapped_set:
            if _active_constraints(target.pose.bones[skel.names[p]]):
                out.add(b)
                break
            p = int(skel.parents[p])
    return out


def _smpl_depth(joint: str) -> int:
    depth, j = 0, rig.JOINT_NAMES.index(joint)
    while rig.PARENTS[j] >= 0:
        depth, j = depth + 1, rig.PARENTS[j]
    return depth


def _settle(keys: _Keys, bones: dict[int, tuple[str, np.ndarray]], root: int, arm_root: np.ndarray) -> None:
    """Re-solve constrained bones against their parents' poses as Blender evaluates them, frame by frame, one
    SMPL depth at a time (a constraint follows bones nearer the body's root, already keyed by then)."""
    scene = bpy.context.scene
    current = scene.frame_current
    skel, target = keys.skel, keys.target
    rest_inv = np.linalg.inv(skel.rest)
    try:
        for depth in sorted({_smpl_depth(joint) for joint, _ in bones.values()}):
            level = [b for b, (joint, _) in bones.items() if _smpl_depth(joint) == depth]
            parents = {b: np.empty((len(keys.frames), 4, 4)) for b in level}
            for f, frame in enumerate(keys.frames):
                scene.frame_set(int(round(frame)))
                for b in level:
                    parent = target.pose.bones[skel.names[b]].parent
                    parents[b][f] = np.array(parent.matrix) if parent is not None else np.eye(4)
            for b in level:
                p = int(skel.parents[b])
                local = skel.rest[b] if p < 0 else rest_inv[p] @ skel.rest[b]
                keys.rotation(b, motion.basis_under(parents[b], local, bones[b][1]))
                if b == root:
                    keys.location(b, motion.location_under(parents[b], local, arm_root))
    finally:
        scene.frame_set(current)


def _new_action(target: bpy.types.Object, name: str, created: _Created | None) -> bpy.types.Action:
    anim = target.animation_data or target.animation_data_create()
    if anim.action is not None:
        anim.action.use_fake_user = True  # the rig's previous action stays in the file
    action = bpy.data.actions.new(name)
    if created is not None:
        created.add(action)
    anim.action = action
    return action


def _prepare_rigify(target: bpy.types.Object) -> list[str]:
    """Switch a generated Rigify rig's limbs to FK (the controls retargeting keys) and make neck and head follow
    the spine; returns what was changed, for the report."""
    changed = set()
    for pose_bone in target.pose.bones:
        for prop, value in RIGIFY_SETTINGS.items():
            if prop in pose_bone.keys() and float(pose_bone[prop]) != value:
                pose_bone[prop] = value
                changed.add(prop)
    return [f"Rigify: set {', '.join(sorted(changed))}"] if changed else []


def copy_for(target: bpy.types.Object, person: bpy.types.Object, created: _Created) -> bpy.types.Object:
    """A copy of the target rig (and its child meshes, sharing their mesh data) for one more person."""
    copy = created.add(target.copy())
    copy.name = f"{target.name} {person.name}"
    copy.animation_data_clear()
    for collection in target.users_collection:
        collection.objects.link(copy)
    for child in target.children:
        child_copy = created.add(child.copy())
        for collection in child.users_collection:
            collection.objects.link(child_copy)
        child_copy.parent = copy
        for modifier in child_copy.modifiers:
            if modifier.type == "ARMATURE" and modifier.object == target:
                modifier.object = copy
    return copy


def copy_visibility(person: bpy.types.Object, copy: bpy.types.Object) -> None:
    """A per-person copy hides where its person does (before they enter, after they leave, in long gaps)."""
    for curve in fcurves(person):
        if curve.data_path in VISIBILITY_PATHS:
            co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
            curve.keyframe_points.foreach_get("co", co)
            keyframes.set_keys(copy, curve.data_path, co[0::2], co[1::2], interpolation="CONSTANT")


def retarget_people(pairs: list[tuple[bpy.types.Object, bpy.types.Object]],
                    created: _Created | None = None) -> list[Outcome]:
    """Retarget each (person, target) pair; all mappings are checked first, and on any failure every action and
    copy made (``created``: the copies from :func:`pairs_for`) is removed again, so the scene is left as it was.
    Copies also take their person's visibility keys."""
    for person, target in pairs:
        _check_armature(target)
        if PROP_TRACK not in person:
            raise RetargetError(f"'{person.name}' is not a Troupe person")
        mapping_for(target)
    created = created or _Created()
    try:
        outcomes = [retarget(person, target, created) for person, target in pairs]
        for person, target in pairs:
            if target in created.ids:
                copy_visibility(person, target)
        return outcomes
    except BaseException:
        created.remove_all()
        raise


def pairs_for(people: list[bpy.types.Object], target: bpy.types.Object | None,
              copies: bool) -> tuple[list[tuple[bpy.types.Object, bpy.types.Object]], _Created]:
    """(person, target) pairs: one chosen target for the first person and, with ``copies``, copies of it for
    the others; without a chosen target, each person's own ``troupe_retarget_target``."""
    created = _Created()
    if target is not None:
        _check_armature(target)
        mapping_for(target)
        if len(people) > 1 and not copies:
            raise RetargetError(f"one target for {len(people)} people: allow copies or pick a target per person")
        pairs = [(people[0], target)] if people else []
        pairs += [(person, copy_for(target, person, created)) for person in people[1:]]
        return pairs, created
    pairs = [(p, p.troupe_retarget_target) for p in people if getattr(p, "troupe_retarget_target", None)]
    if not pairs:
        raise RetargetError("no target: choose a target armature, or one per person")
    return pairs, created
