"""The skeleton maths behind the scene builder (numpy only; Blender's side is checked in test_addon_blender)."""

from __future__ import annotations

import numpy as np

from blender_addon import rig


def _random_rotations(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rig.axis_angle_to_matrix(rng.normal(0.0, 1.2, size=shape + (3,)))


def test_quaternion_and_axis_angle_round_trips() -> None:
    rng = np.random.default_rng(1)
    rot = _random_rotations(rng, (500,))
    rot = np.concatenate([rot, rig.axis_angle_to_matrix(np.array([[np.pi, 0, 0], [0, np.pi - 1e-7, 0], [0, 0, 0]]))])
    assert np.allclose(rig.quaternion_to_matrix(rig.matrix_to_quaternion(rot)), rot, atol=1e-9)
    assert np.allclose(rig.axis_angle_to_matrix(rig.matrix_to_axis_angle(rot)), rot, atol=1e-6)
    assert np.allclose(np.einsum("nij,nkj->nik", rot, rot), np.eye(3), atol=1e-12)


def test_continuous_quaternions_never_jump_hemispheres() -> None:
    rng = np.random.default_rng(2)
    quat = rig.matrix_to_quaternion(_random_rotations(rng, (50, 24)))
    quat[::3] *= -1.0
    fixed = rig.continuous_quaternions(quat)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], axis=-1) >= 0.0)
    assert np.allclose(np.abs(np.sum(fixed * quat, axis=-1)), 1.0)  # same rotations


def test_bone_keys_invert_exactly_for_any_bone_frames() -> None:
    """pose -> Blender bone values -> pose is the identity (the AMASS export relies on it)."""
    rng = np.random.default_rng(3)
    poses = rng.normal(0.0, 0.8, size=(20, 24, 3))
    transl = rng.normal(0.0, 2.0, size=(20, 3))
    rest = rng.normal(0.0, 0.4, size=(24, 3))
    bone_rest = _random_rotations(rng, (24,))
    quat, location = rig.pose_to_bone_keys(poses, transl, rest, bone_rest)
    back_poses, back_transl = rig.bone_keys_to_pose(quat, location, rest, bone_rest)
    assert np.allclose(rig.axis_angle_to_matrix(back_poses), rig.axis_angle_to_matrix(poses), atol=1e-9)
    assert np.allclose(back_transl, transl, atol=1e-9)


def test_world_frame_parameters_pose_the_body_where_the_camera_frame_does() -> None:
    rng = np.random.default_rng(4)
    poses = rng.normal(0.0, 0.6, size=(5, 24, 3))
    transl = rng.normal(0.0, 2.0, size=(5, 3))
    rest = rng.normal(0.0, 0.4, size=(24, 3))
    world_poses, world_transl = rig.to_world_frame(poses, transl, rest)
    expected = rig.forward_kinematics(poses, rest, transl) @ rig.CAM_TO_WORLD.T
    assert np.allclose(rig.forward_kinematics(world_poses, rest, world_transl), expected, atol=1e-9)


def test_bone_layout_points_at_children_and_has_no_degenerate_bones() -> None:
    rest = np.random.default_rng(5).normal(0.0, 0.4, size=(24, 3))
    rest[15] = rest[12]  # a head on top of the neck must still give a usable bone
    heads, tails = rig.bone_layout(rest)
    assert np.allclose(heads, rest @ rig.MODEL_TO_ARMATURE.T)
    assert np.allclose(tails[0], heads[3]) and np.allclose(tails[18], heads[20])
    assert np.all(np.linalg.norm(tails - heads, axis=1) >= rig.MIN_BONE_LENGTH - 1e-12)


def test_frames_are_proper_rotations() -> None:
    for matrix in (rig.CAM_TO_WORLD, rig.MODEL_TO_ARMATURE):
        assert np.allclose(matrix @ matrix.T, np.eye(3)) and np.isclose(np.linalg.det(matrix), 1.0)
    # An upright person facing the camera stands upright, facing -Y, in Blender's world.
    facing_camera = rig.axis_angle_to_matrix(np.array([np.pi, 0.0, 0.0]))
    assert np.allclose(rig.CAM_TO_WORLD @ facing_camera @ rig.MODEL_TO_ARMATURE.T, np.eye(3), atol=1e-12)
