"""Retargeting people onto rigs: the add-on's batched path against a naive per-frame pose-bone loop, same run.

    python benchmarks/bench_retarget.py [--people 10] [--frames 1000] [--naive-frames 60]

Builds ``people`` Troupe armatures keyed over ``frames`` frames and one Mixamo-named rig per person (A-pose,
rolled bones), then times ``retarget.retarget_people`` (read keys in bulk, numpy FK and solve, one
``foreach_set`` per F-curve). The baseline is what retarget scripts usually do: per frame, ``frame_set``, then
for each mapped bone parents-first set ``pose_bone.matrix`` from the source bone's evaluated world matrix times
the same rest offset, update the view layer, ``keyframe_insert``. It is too slow to run on everything, so it runs
on one person over ``naive-frames`` frames and the ratio compares time per person-frame. Both must produce the
same pose (checked). Runs with the bpy module (``.venv/bin/python``, ``.venv-bpy5/bin/python``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

MIXAMO_SIDE = {"Hip": "UpLeg", "Knee": "Leg", "Ankle": "Foot", "Foot": "ToeBase", "Collar": "Shoulder",
               "Shoulder": "Arm", "Elbow": "ForeArm", "Wrist": "Hand"}
MIXAMO = {"Pelvis": "Hips", "Spine1": "Spine", "Spine2": "Spine1", "Spine3": "Spine2", "Neck": "Neck", "Head": "Head",
          **{f"{s}_{j}": f"mixamorig:{side}{b}" for s, side in (("L", "Left"), ("R", "Right"))
             for j, b in MIXAMO_SIDE.items()}}
MIXAMO.update({k: f"mixamorig:{v}" for k, v in MIXAMO.items() if not v.startswith("mixamorig:")})


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--naive-frames", type=int, default=60)
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="troupe-bench-") as tmp:
        os.environ.setdefault("XDG_CACHE_HOME", str(Path(tmp) / "cache"))
        for var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS"):
            os.environ[var] = str(Path(tmp) / var.lower())
        return _run(args.people, args.frames, args.naive_frames)


def build_target(name: str, person, collection):
    """A Mixamo-named rig with the person's joint positions, arms lowered 40 degrees (A-pose), bones rolled."""
    import bpy
    import numpy as np

    from blender_addon import rig

    heads = np.array([list(person.data.bones[j].head_local) for j in rig.JOINT_NAMES])
    for arm, sign in (((16, 18, 20, 22), 1.0), ((17, 19, 21, 23), -1.0)):
        pivot, a = heads[arm[0]], np.radians(40.0) * sign
        turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        heads[list(arm)] = pivot + (heads[list(arm)] - pivot) @ turn.T
    obj = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    made = {}
    for j, joint in enumerate(rig.JOINT_NAMES):
        if joint not in MIXAMO:
            continue
        bone = obj.data.edit_bones.new(MIXAMO[joint])
        child = rig.PRIMARY_CHILD.get(j)
        tail = heads[child] if child is not None else heads[j] + (heads[j] - heads[rig.PARENTS[j]])
        bone.head, bone.tail, bone.roll = heads[j], tail, 0.3 * j
        parent = rig.PARENTS[j]
        while parent >= 0 and rig.JOINT_NAMES[parent] not in MIXAMO:
            parent = rig.PARENTS[parent]
        if parent >= 0:
            bone.parent = made[parent]
        made[j] = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    return obj


def naive_retarget(person, target, plan, frames) -> None:
    """The usual script: evaluate the source each frame, set each target bone's matrix, update, insert keys."""
    import bpy
    from mathutils import Matrix

    from blender_addon import rig

    scene = bpy.context.scene
    view_layer = bpy.context.view_layer
    pairs = [(rig.JOINT_NAMES[int(s)], plan.target_names[k], Matrix(plan.offsets[k].tolist()))
             for k, s in enumerate(plan.source_bones)]
    target_inv = target.matrix_world.inverted()
    for frame in frames:
        scene.frame_set(int(frame))
        for k, (joint, bone_name, offset) in enumerate(pairs):
            source = person.matrix_world @ person.pose.bones[joint].matrix
            rotation = (source.to_3x3().normalized() @ offset).to_4x4()
            pose_bone = target.pose.bones[bone_name]
            if k == 0:
                head = plan.target_root_rest + plan.scale * (source.translation - Matrix.Translation(
                    plan.source_root_rest).translation)
                rotation.translation = head
            else:
                rotation.translation = (target.matrix_world @ pose_bone.matrix).translation
            pose_bone.matrix = target_inv @ rotation
            view_layer.update()
            pose_bone.keyframe_insert("rotation_quaternion", frame=float(frame), group=bone_name)
            if k == 0:
                pose_bone.keyframe_insert("location", frame=float(frame), group=bone_name)


def _run(num_people: int, num_frames: int, naive_frames: int) -> int:
    import bpy
    import numpy as np
    from bench_keyframes import _rest_joints

    from blender_addon import export, retarget, scene
    from blender_addon.result_data import Track

    rng = np.random.default_rng(0)
    rest = _rest_joints()
    frames = np.arange(num_frames)
    bpy.ops.wm.read_homefile(use_empty=True)
    _register_map_property()
    collection = bpy.data.collections.new("bench")
    bpy.context.scene.collection.children.link(collection)
    people, targets = [], []
    for p in range(num_people):
        poses = rng.normal(0, 0.25, (num_frames, 24, 3))
        poses[:, 0] = [np.pi, 0, 0]  # upright, facing the camera
        track = Track(index=p, track_id=p, frames=frames, poses=poses,
                      transl=rng.normal(0, 0.5, (num_frames, 3)) + [p, 0, 5], joints2d=np.zeros((num_frames, 24, 2)),
                      betas=np.zeros(10), rest_joints=rest, rest_vertices=None)
        person = scene.build_armature(f"Person {p}", rest, collection)
        person[scene.PROP_TRACK] = p
        scene.key_track(person, track)
        people.append(person)
        targets.append(build_target(f"Rig {p}", person, collection))
    bpy.context.scene.frame_end = num_frames
    start = time.perf_counter()
    retarget.retarget_people(list(zip(people, targets, strict=True)))
    bulk = time.perf_counter() - start

    naive_target = build_target("Naive", people[0], collection)
    bones, _scheme = retarget.mapping_for(naive_target)
    plan = retarget.plan(retarget.skeleton(people[0], retarget.rig.JOINT_NAMES), naive_target,
                         retarget.skeleton(naive_target), bones)
    skel = retarget.skeleton(naive_target)
    plan.target_names = [skel.names[int(b)] for b in plan.target_bones]
    naive_frames = min(naive_frames, num_frames)
    keyed = export.keyed_frames(people[0])[:naive_frames]
    start = time.perf_counter()
    naive_retarget(people[0], naive_target, plan, keyed)
    naive = time.perf_counter() - start

    _check_same_pose(targets[0], naive_target, keyed[[0, len(keyed) // 2, -1]])
    bulk_per = bulk / (num_people * num_frames)
    naive_per = naive / naive_frames
    print(f"blender {bpy.app.version_string}: {num_people} people x {num_frames} frames, Mixamo-named A-pose rigs")
    print(f"batched retarget (retarget_people):       {bulk:8.2f} s  ({1e6 * bulk_per:7.1f} us per person-frame)")
    print(f"naive per-frame pose-bone loop ({naive_frames} frames): {naive:8.2f} s  "
          f"({1e6 * naive_per:7.1f} us per person-frame)")
    print(f"ratio naive / batched per person-frame:   {naive_per / bulk_per:8.1f}x")
    return 0


def _register_map_property() -> None:
    """The bone-map list lives on objects; outside the installed add-on, register it here."""
    import bpy

    from blender_addon import finish

    if not hasattr(bpy.types.Object, "troupe_bone_map"):
        bpy.utils.register_class(finish.TroupeBoneMapItem)
        bpy.types.Object.troupe_bone_map = bpy.props.CollectionProperty(type=finish.TroupeBoneMapItem)


def _check_same_pose(bulk, naive, frames) -> None:
    """Both paths must pose the rig the same way, or the comparison means nothing."""
    import bpy
    import numpy as np

    scene = bpy.context.scene
    for frame in frames:
        scene.frame_set(int(frame))
        a = np.array([list(bulk.matrix_world @ b.head) for b in bulk.pose.bones])
        b = np.array([list(naive.matrix_world @ b.head) for b in naive.pose.bones])
        a -= a[0]
        b -= b[0]
        assert np.abs(a - b).max() < 1e-3, f"frame {frame}: paths differ by {np.abs(a - b).max():.4f} m"


if __name__ == "__main__":
    sys.exit(main())
