"""Keyframing people: the add-on's bulk F-curve path against a naive ``keyframe_insert`` loop, same run.

    python benchmarks/bench_keyframes.py [--people 10] [--frames 1000]

Both paths key the same values (24 bone quaternions + root location per frame, from ``rig.pose_to_bone_keys``)
on freshly built armatures. The bulk timing includes that pose conversion, the naive one does not, so the ratio
is conservative. Prints both times and the ratio. Runs with the bpy module (``.venv/bin/python`` for 4.5,
``.venv-bpy5/bin/python`` for 5.0).
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


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--frames", type=int, default=1000)
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="troupe-bench-") as tmp:
        os.environ.setdefault("XDG_CACHE_HOME", str(Path(tmp) / "cache"))
        for var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS"):
            os.environ[var] = str(Path(tmp) / var.lower())
        return _run(args.people, args.frames)


def _run(num_people: int, num_frames: int) -> int:
    import bpy
    import numpy as np

    from blender_addon import keyframes, rig, scene
    from blender_addon.result_data import Track

    rng = np.random.default_rng(0)
    rest = _rest_joints()
    frames = np.arange(num_frames)
    tracks = [
        Track(index=p, track_id=p, frames=frames, poses=rng.normal(0, 0.3, (num_frames, 24, 3)),
              transl=rng.normal(0, 1, (num_frames, 3)) + [0, 0, 5], joints2d=np.zeros((num_frames, 24, 2)),
              betas=np.zeros(10), rest_joints=rest, rest_vertices=None)
        for p in range(num_people)
    ]  # fmt: skip
    bpy.ops.wm.read_homefile(use_empty=True)
    collection = bpy.data.collections.new("bench")
    bpy.context.scene.collection.children.link(collection)

    bulk_people = [scene.build_armature(f"bulk {p}", rest, collection) for p in range(num_people)]
    start = time.perf_counter()
    for armature, track in zip(bulk_people, tracks, strict=True):
        scene.key_track(armature, track)
    bulk = time.perf_counter() - start

    naive_people = [scene.build_armature(f"naive {p}", rest, collection) for p in range(num_people)]
    paths = [(name, "rotation_quaternion") for name in rig.JOINT_NAMES] + [(rig.JOINT_NAMES[0], "location")]
    values = []
    for armature, track in zip(naive_people, tracks, strict=True):
        quat, location = rig.pose_to_bone_keys(track.poses, track.transl, track.rest_joints,
                                               scene.bone_rest_rotations(armature))
        values.append([[*quat[f].tolist(), location[f].tolist()] for f in range(num_frames)])
    start = time.perf_counter()
    for armature, track, vals in zip(naive_people, tracks, values, strict=True):
        keyframes.insert_keys_naive(armature, paths, track.frames + scene.FRAME_OFFSET, vals)
    naive = time.perf_counter() - start

    _check_same_keys(bulk_people[0], naive_people[0], scene)
    keys = num_people * num_frames * (24 * 4 + 3)
    print(f"blender {bpy.app.version_string}: {num_people} people x {num_frames} frames = {keys:,} keys")
    print(f"bulk F-curve path (key_track):  {bulk:8.2f} s")
    print(f"naive keyframe_insert loop:     {naive:8.2f} s")
    print(f"ratio naive / bulk:             {naive / bulk:8.1f}x")
    return 0


def _check_same_keys(bulk, naive, scene) -> None:
    """Both paths must have produced the same animation, or the comparison means nothing."""
    import numpy as np

    from blender_addon import export

    frames = export.keyed_frames(bulk)
    assert list(frames) == list(export.keyed_frames(naive))
    quat_a, loc_a = export.sample_pose_keys(bulk, frames[:50])
    quat_b, loc_b = export.sample_pose_keys(naive, frames[:50])
    assert np.allclose(quat_a, quat_b, atol=1e-5) and np.allclose(loc_a, loc_b, atol=1e-5)


def _rest_joints():
    """An SMPL-like skeleton (metres, model frame: y up, facing +z)."""
    import numpy as np

    return np.array([
        [0.00, -0.22, 0.02], [0.07, -0.31, 0.02], [-0.07, -0.31, 0.02], [0.00, -0.11, 0.00], [0.10, -0.69, 0.01],
        [-0.10, -0.69, 0.01], [0.00, 0.02, 0.00], [0.09, -1.09, -0.03], [-0.09, -1.09, -0.03], [0.00, 0.08, 0.03],
        [0.11, -1.15, 0.10], [-0.11, -1.15, 0.10], [0.00, 0.29, -0.02], [0.09, 0.20, -0.01], [-0.09, 0.20, -0.01],
        [0.00, 0.36, 0.04], [0.19, 0.24, -0.02], [-0.19, 0.24, -0.02], [0.45, 0.23, -0.04], [-0.45, 0.23, -0.04],
        [0.70, 0.23, -0.05], [-0.70, 0.23, -0.05], [0.79, 0.23, -0.06], [-0.79, 0.23, -0.06],
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
