"""Plant feet and find the floor, in real Blender, on a synthetic walk whose stance foot slides 5 mm per frame.

Bounds: after planting, the stance ankle (as Blender evaluates the armature) moves less than 1 mm per frame inside
each stance (away from the fade at its edges), the knee keeps bending forward, and the ankles' largest
frame-to-frame acceleration stays under 1.5 times the original walk's (no pop where a plant fades out). Finding
the floor under a camera pitched 15 degrees gives the pitch back within 2.5 degrees, puts the stance soles at
z = 0 within 2 cm, and (without the per-person snap) every joint still projects where it did through the moved
camera.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_addon_fixtures import fixture_result, isolate_blender

isolate_blender()
bpy = pytest.importorskip("bpy")
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402

from blender_addon import rig  # noqa: E402

FRAMES = 90
SLIDE = 0.005  # metres per frame the stance foot slides in the raw walk


def _rot(axis: int, angle: float) -> np.ndarray:
    m = np.eye(3)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    c, s = np.cos(angle), np.sin(angle)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def walk(rest: np.ndarray, tilt_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses, translations (camera frame) and the stance side per frame (0: left) of a walk to the right.

    The root is moved so that the stance ankle slides exactly ``SLIDE`` per frame; ``tilt_deg`` pitches the
    camera (the whole scene turns about the camera's x axis)."""
    t = np.arange(FRAMES)
    phase = 2 * np.pi * t / 30.0
    poses = np.zeros((FRAMES, 24, 3))
    poses[:, 0] = rig.matrix_to_axis_angle(_rot(1, -np.pi / 2) @ _rot(0, np.pi))  # upright, facing +x (camera)
    poses[:, 1, 0], poses[:, 2, 0] = 0.35 * np.sin(phase), -0.35 * np.sin(phase)
    poses[:, 4, 0] = 0.9 * np.maximum(0.0, np.cos(phase)) ** 2 + 0.05  # left knee bends while it swings
    poses[:, 5, 0] = 0.9 * np.maximum(0.0, -np.cos(phase)) ** 2 + 0.05
    joints = rig.forward_kinematics(poses, rest, np.zeros((FRAMES, 3)))
    stance = np.where(joints[:, 7, 1] > joints[:, 8, 1], 0, 1)  # camera y points down: the lower ankle
    ankle_x = joints[np.arange(FRAMES), 7 + stance, 0]
    step = -np.diff(ankle_x, prepend=ankle_x[:1]) + SLIDE
    step[np.concatenate([[True], stance[1:] != stance[:-1]])] = SLIDE  # no jump when the stance foot changes
    transl = np.stack([np.cumsum(step) - 1.0, np.full(FRAMES, 0.6), np.full(FRAMES, 5.0)], axis=-1)
    if tilt_deg:
        tilt = _rot(0, np.radians(tilt_deg))
        poses[:, 0] = rig.matrix_to_axis_angle(tilt @ rig.axis_angle_to_matrix(poses[:, 0]))
        transl = (transl + rest[0]) @ tilt.T - rest[0]
    return poses, transl, stance


@pytest.fixture(scope="module")
def rest() -> np.ndarray:
    with np.load(fixture_result()) as npz:
        return np.asarray(npz["rest_joints"][0], dtype=np.float64)


def _person(addon, rest: np.ndarray, tilt_deg: float = 0.0):
    from blender_addon.result_data import Track

    poses, transl, stance = walk(rest, tilt_deg)
    collection = bpy.data.collections.new("Walk")
    bpy.context.scene.collection.children.link(collection)
    person = addon.scene.build_armature("Walker", rest, collection)
    person[addon.scene.PROP_TRACK] = 1
    track = Track(index=0, track_id=1, frames=np.arange(FRAMES), poses=poses, transl=transl,
                  joints2d=np.zeros((FRAMES, 24, 2)), betas=np.zeros(10), rest_joints=rest, rest_vertices=None)
    addon.scene.key_track(person, track)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, FRAMES
    scene.render.fps, scene.render.fps_base = 30, 1.0
    return person, stance


def _joints(person, names: list[str]) -> np.ndarray:
    scene = bpy.context.scene
    out = []
    for frame in range(1, FRAMES + 1):
        scene.frame_set(frame)
        out.append([list(person.matrix_world @ person.pose.bones[n].head) for n in names])
    return np.array(out)


def _stance_sliding(ankles: np.ndarray, stance: np.ndarray, margin: int = 3) -> float:
    """Mean horizontal ankle movement (mm/frame) inside each stance, ``margin`` frames in from its edges."""
    steps = []
    edges = np.flatnonzero(np.diff(stance)) + 1
    for run in np.split(np.arange(FRAMES), edges):
        inner = run[margin:len(run) - margin]
        if len(inner) > 1:
            positions = ankles[inner, stance[inner[0]], :2]
            steps.append(np.linalg.norm(np.diff(positions, axis=0), axis=-1))
    return 1000.0 * float(np.concatenate(steps).mean())


def test_planted_feet_stop_sliding_without_breaking_legs(addon, rest: np.ndarray) -> None:
    person, stance = _person(addon, rest)
    names = ["L_Ankle", "R_Ankle", "L_Hip", "L_Knee", "R_Hip", "R_Knee"]
    before = _joints(person, names)
    assert _stance_sliding(before, stance) == pytest.approx(1000 * SLIDE, rel=0.3)
    assert bpy.ops.troupe.plant_feet(scope="ALL") == {"FINISHED"}
    after = _joints(person, names)
    assert _stance_sliding(after, stance) < 1.0
    for side, (hip, knee, ankle) in enumerate(((2, 3, 0), (4, 5, 1))):
        thigh = np.linalg.norm(after[:, knee] - after[:, hip], axis=-1)
        assert np.ptp(thigh) < 1e-4  # bones keep their length (a rigid armature), and the knee bends forward:
        axis = after[:, ankle] - after[:, hip]
        offset = after[:, knee] - after[:, hip]
        offset -= np.sum(offset * axis, -1, keepdims=True) / np.sum(axis * axis, -1, keepdims=True) * axis
        assert np.all(offset[:, 0] > -0.005), side  # walking along +x: knees never point backwards
    accel_before = np.linalg.norm(np.diff(before[:, :2], 2, axis=0), axis=-1).max()
    accel_after = np.linalg.norm(np.diff(after[:, :2], 2, axis=0), axis=-1).max()
    assert accel_after < 1.5 * accel_before  # faded in and out: no pop (acceleration spike) at the contact edges


def test_contacts_have_hysteresis() -> None:
    from blender_addon import contacts

    heights = np.array([0.1, 0.04, 0.06, 0.08, 0.04, 0.12, 0.04, 0.04, 0.04, 0.2])
    speeds = np.zeros(10)
    flags = contacts.detect_contacts(heights, speeds, height_on=0.05, speed_on=0.3, min_frames=2)
    # enters at 0.04, stays through 0.06 and 0.08 (below twice the threshold), leaves at 0.12
    assert flags.tolist() == [False, True, True, True, True, False, True, True, True, False]


def test_find_floor_levels_a_tilted_camera_and_keeps_the_footage_aligned(addon, rest: np.ndarray) -> None:
    person, stance = _person(addon, rest, tilt_deg=15.0)
    scene = bpy.context.scene
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(camera)
    camera.rotation_euler = (np.pi / 2, 0.0, 0.0)  # the scene builder's camera: at the origin, looking along +Y
    scene.camera = camera
    names = list(rig.JOINT_NAMES)

    def projected() -> np.ndarray:
        out = []
        for frame in (1, 30, 60, 90):
            scene.frame_set(frame)
            out.append([list(world_to_camera_view(scene, camera, person.matrix_world @ person.pose.bones[n].head))
                        for n in names])
        return np.array(out)

    before = projected()
    assert bpy.ops.troupe.find_floor(snap=False) == {"FINISHED"}
    assert np.abs(projected() - before).max() < 1e-4  # people and camera moved together
    # Pitched down again: one person walking a line shows the floor's pitch only through their upright body
    # (the mean pelvis-to-neck direction), which leans by about 1.5 degrees in SMPL's rest.
    assert abs(camera.matrix_world.to_euler().x - np.radians(90 - 15)) < np.radians(2.5)
    assert bpy.ops.troupe.find_floor(snap=True) == {"FINISHED"}
    assert abs(float(np.median(_soles(person, stance)))) < 0.02


def _soles(person, stance: np.ndarray) -> np.ndarray:
    """Height of the stance foot's sole per frame: the lower of ankle joint - 8 cm and toe joint - 3 cm (the
    default clearances of a body without a mesh)."""
    joints = _joints(person, ["L_Ankle", "R_Ankle", "L_Foot", "R_Foot"])
    rows = np.arange(FRAMES)
    return np.minimum(joints[rows, stance, 2] - 0.08, joints[rows, 2 + stance, 2] - 0.03)


def test_plant_feet_refuses_an_empty_scene(addon) -> None:
    with pytest.raises(RuntimeError, match="no people"):
        bpy.ops.troupe.plant_feet()
    with pytest.raises(RuntimeError, match="no people"):
        bpy.ops.troupe.find_floor()
