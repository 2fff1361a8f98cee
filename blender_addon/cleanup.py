"""Plant feet and find the floor on Troupe people (Blender side; the maths is in ``contacts.py``).

Both read each person's keys in bulk (as retargeting does), work on world joint positions and bone rotations for
all frames at once, and write the 24 bone rotations and the root location back with one ``foreach_set`` per
F-curve. Finding the floor moves the camera with the people (the same rigid transform), so the footage still
lines up with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from . import contacts, keyframes, motion, rig
from .retarget import person_world_pose

DEFAULT_CLEARANCE = {7: 0.08, 8: 0.08, 10: 0.03, 11: 0.03}  # ankle and toe joints above the sole, metres
FLOOR_PROP = "troupe_floor"  # Scene: the floor found last, as (normal x, y, z, offset) in the current world


@dataclass
class PersonMotion:
    """One person's motion as world joints and bone rotations, for all keyed frames."""

    person: bpy.types.Object
    frames: np.ndarray
    joints: np.ndarray  # (n, 24, 3)
    world_rot: np.ndarray  # (n, 24, 3, 3)
    skeleton: motion.Skeleton

    @classmethod
    def read(cls, person: bpy.types.Object) -> PersonMotion:
        frames, world, skel = person_world_pose(person)
        return cls(person, frames, world[:, :, :3, 3], motion.normalised_rotation(world[:, :, :3, :3]), skel)

    def write(self, world_rot: np.ndarray, root: np.ndarray) -> None:
        """Key the bones so they take these world rotations (n, 24, 3, 3) and the root this position (n, 3)."""
        identity = np.broadcast_to(np.eye(4), (rig.NUM_JOINTS, 4, 4))
        basis_rot, location = motion.local_from_world(self.skeleton, np.arange(rig.NUM_JOINTS), world_rot, 0, root,
                                                      identity)
        quat = motion.continuous(rig.matrix_to_quaternion(basis_rot))
        for j, name in enumerate(rig.JOINT_NAMES):
            keyframes.set_keys(self.person, f'pose.bones["{name}"].rotation_quaternion', self.frames, quat[:, j],
                               group=name)
        root_name = rig.JOINT_NAMES[0]
        keyframes.set_keys(self.person, f'pose.bones["{root_name}"].location', self.frames, location, group=root_name)


def clearance(person: bpy.types.Object) -> dict[int, float]:
    """How high the ankle and toe joints sit above the sole at rest: from the body mesh when there is one (the
    lowest rest vertex), else typical adult values."""
    body = next((c for c in person.children if c.type == "MESH" and len(c.data.vertices)), None)
    if body is None:
        return dict(DEFAULT_CLEARANCE)
    co = np.empty(3 * len(body.data.vertices))
    body.data.vertices.foreach_get("co", co)
    sole = float(co[2::3].min())
    return {j: max(0.0, float(person.data.bones[rig.JOINT_NAMES[j]].head_local.z) - sole) for j in DEFAULT_CLEARANCE}


def lowest_foot_points(motions: list[PersonMotion]) -> np.ndarray:
    """Per person and frame, the lower foot's sole point: the candidates a floor is fitted to."""
    out = []
    for m in motions:
        feet = contacts.foot_points(m.joints, clearance(m.person))
        out.append(np.where((feet["L"][:, 2] < feet["R"][:, 2])[:, None], feet["L"], feet["R"]))
    return np.concatenate(out) if out else np.zeros((0, 3))


def body_up(motions: list[PersonMotion]) -> np.ndarray:
    """The mean pelvis-to-neck direction over everyone and every frame: people stand upright on average, so this
    is the floor's normal wherever their feet do not spread enough to show it (one person walking a line)."""
    spans = np.concatenate([m.joints[:, 12] - m.joints[:, 0] for m in motions])
    up = (spans / np.linalg.norm(spans, axis=-1, keepdims=True)).mean(axis=0)
    return up / np.linalg.norm(up)


def scene_floor(scene: bpy.types.Scene, motions: list[PersonMotion]) -> contacts.Floor:
    """The floor found by Find Floor if it ran, else one fitted to these people's feet now."""
    stored = scene.get(FLOOR_PROP)
    if stored is not None and len(stored) == 4:
        return contacts.Floor(normal=np.array(stored[:3], dtype=np.float64), offset=float(stored[3]))
    return contacts.fit_floor(lowest_foot_points(motions), up=body_up(motions))


@dataclass
class PlantReport:
    person: str
    contact_frames: int
    before_mm: float
    after_mm: float


def plant_feet(scene: bpy.types.Scene, people: list[bpy.types.Object], *, height: float = 0.05,
               speed: float = 0.35, blend: int = 4) -> list[PlantReport]:
    """Remove foot sliding during contacts for each person; returns the sliding before and after (mm/frame)."""
    motions = [PersonMotion.read(p) for p in people]
    floor = scene_floor(scene, motions)
    fps = scene.render.fps / scene.render.fps_base
    reports = []
    for m in motions:
        result = contacts.plant(m.joints, m.world_rot, floor, clearance(m.person), fps, m.frames, height_on=height,
                                speed_on=speed, blend=blend)
        m.write(result.world_rot, result.root)
        reports.append(PlantReport(m.person.name, int(sum(c.sum() for c in result.contact.values())),
                                   result.before_mm, result.after_mm))
    return reports


def find_floor(scene: bpy.types.Scene, people: list[bpy.types.Object], camera: bpy.types.Object | None,
               snap: bool = True) -> contacts.Floor:
    """Fit the floor to everyone's feet and move people and camera together so it lies on z = 0.

    With ``snap``, each person is then slid along the camera ray through them until their own feet meet the floor
    (monocular depth puts people a little above or below it); along the ray, they stay where the footage shows
    them. Returns the floor as it was found (before the move).
    """
    motions = [PersonMotion.read(p) for p in people]
    floor = contacts.fit_floor(lowest_foot_points(motions), up=body_up(motions))
    ground = floor.to_ground()
    camera_position = np.array(camera.matrix_world.translation) if camera is not None else np.zeros(3)
    new_camera = ground[:3, :3] @ camera_position + ground[:3, 3]
    for m in motions:
        rot = ground[:3, :3] @ m.world_rot
        joints = m.joints @ ground[:3, :3].T + ground[:3, 3]
        root = joints[:, 0]
        if snap:
            root = root + _snap_shift(joints, clearance(m.person), new_camera)
        m.write(rot, root)
    if camera is not None:
        from mathutils import Matrix

        camera.matrix_world = Matrix(ground.tolist()) @ camera.matrix_world
    scene[FLOOR_PROP] = [0.0, 0.0, 1.0, 0.0]
    return floor


def _snap_shift(joints: np.ndarray, clear: dict[int, float], camera: np.ndarray, limit: float = 1.0) -> np.ndarray:
    """A constant move (3,) along the camera ray through the person bringing their planted feet (the lowest fifth
    of frames) to z = 0; vertical if the ray runs nearly along the floor, at most ``limit`` metres."""
    feet = contacts.foot_points(joints, clear)
    lowest = np.minimum(feet["L"][:, 2], feet["R"][:, 2])
    height = float(np.percentile(lowest, 20))
    ray = joints[:, 0].mean(axis=0) - camera
    ray /= max(np.linalg.norm(ray), 1e-9)
    if abs(ray[2]) < 0.15:
        return np.array([0.0, 0.0, -np.clip(height, -limit, limit)])
    step = -height / ray[2]
    shift = step * ray
    norm = np.linalg.norm(shift)
    return shift if norm <= limit else shift * (limit / norm)
