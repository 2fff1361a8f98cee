"""Forward kinematics, skinning and BodyModel semantics, checked against hand-computed expectations."""

from __future__ import annotations

import math

import pytest
import torch

from backend.body import BodyModel, load_body_model
from backend.body.kinematics import forward_kinematics, linear_blend_skinning
from backend.body.rotations import axis_angle_to_matrix
from backend.body.skeleton import JOINT_NAMES, PARENTS, joint_index


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("open-body", dtype=torch.float64)


def _rot_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


def test_model_metadata(body: BodyModel) -> None:
    assert body.name == "open-body"
    assert body.num_joints == 24 and body.joint_names == list(JOINT_NAMES)
    assert body.parents.tolist() == list(PARENTS) and body.parents.dtype == torch.long
    assert body.faces.dtype == torch.long and body.faces.shape[1] == 3
    assert body.posedirs is None and body.extra_regressors == {}
    assert body.shapedirs.shape == (body.num_vertices, 3, body.num_betas) and body.num_betas >= 2


def test_zero_pose_reproduces_rest_joints(body: BodyModel) -> None:
    betas = torch.randn(3, body.num_betas, dtype=torch.float64)
    out = body(torch.zeros(3, 24, 3, dtype=torch.float64), betas)
    rest = body.rest_joints(betas)
    torch.testing.assert_close(out.joints, rest)
    torch.testing.assert_close(out.rest_joints, rest)
    torch.testing.assert_close(out.vertices, body.shaped_vertices(betas))
    torch.testing.assert_close(out.transforms, torch.eye(4, dtype=torch.float64).expand(3, 24, 4, 4))


def test_elbow_rotation_moves_wrist_by_known_amount(body: BodyModel) -> None:
    poses = torch.zeros(1, 24, 3, dtype=torch.float64)
    poses[0, joint_index("left_elbow")] = torch.tensor([0.0, math.pi / 2, 0.0])
    out = body(poses)
    rest = out.rest_joints[0]
    elbow, wrist, hand = (joint_index(n) for n in ("left_elbow", "left_wrist", "left_hand"))
    dx, dy, dz = (rest[wrist] - rest[elbow]).tolist()
    # 90 degrees about +y maps (dx, dy, dz) to (dz, dy, -dx).
    expected_wrist = rest[elbow] + torch.tensor([dz, dy, -dx], dtype=torch.float64)
    torch.testing.assert_close(out.joints[0, wrist], expected_wrist)
    torch.testing.assert_close(out.joints[0, hand] - out.joints[0, elbow],
                               _rot_y(math.pi / 2) @ (rest[hand] - rest[elbow]))
    untouched = [j for j in range(24) if j not in (wrist, hand)]
    torch.testing.assert_close(out.joints[0, untouched], rest[untouched])


def _rot_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_chained_rotations_compose_parent_first(body: BodyModel) -> None:
    poses = torch.zeros(1, 24, 3, dtype=torch.float64)
    poses[0, joint_index("left_shoulder")] = torch.tensor([0.0, 0.0, -1.0])  # arm down, about z
    poses[0, joint_index("left_elbow")] = torch.tensor([0.0, 0.7, 0.0])  # then bend, about the local y
    out = body(poses)
    rest = out.rest_joints[0]
    sh, el, wr = (joint_index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))
    r_shoulder = _rot_z(-1.0)
    expected = rest[sh] + r_shoulder @ (rest[el] - rest[sh]) + r_shoulder @ _rot_y(0.7) @ (rest[wr] - rest[el])
    torch.testing.assert_close(out.joints[0, wr], expected)


def test_root_rotation_is_rigid_about_pelvis(body: BodyModel) -> None:
    betas = torch.randn(2, body.num_betas, dtype=torch.float64)
    poses = torch.zeros(2, 24, 3, dtype=torch.float64)
    poses[:, 0] = torch.tensor([[0.3, -1.2, 2.0], [math.pi, 0.0, 0.0]], dtype=torch.float64)
    transl = torch.tensor([[0.1, 0.2, 3.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    out = body(poses, betas, transl)
    rmat = axis_angle_to_matrix(poses[:, 0])
    shaped = body.shaped_vertices(betas)
    pelvis = body.rest_joints(betas)[:, :1]
    expected = (shaped - pelvis) @ rmat.transpose(1, 2) + pelvis + transl[:, None]
    torch.testing.assert_close(out.vertices, expected)
    torch.testing.assert_close(out.joints[:, 0], pelvis[:, 0] + transl)


def test_transforms_skin_the_rest_mesh(body: BodyModel) -> None:
    gen = torch.Generator().manual_seed(0)
    poses = 0.5 * torch.randn(2, 24, 3, generator=gen, dtype=torch.float64)
    betas = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    transl = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    out = body(poses, betas, transl)
    skinned = linear_blend_skinning(body.shaped_vertices(betas), out.transforms, body.skin_weights)
    torch.testing.assert_close(skinned, out.vertices)
    # A transform maps its joint's rest position onto the posed joint.
    rest_h = torch.cat([out.rest_joints, torch.ones(2, 24, 1, dtype=torch.float64)], -1)
    torch.testing.assert_close((out.transforms @ rest_h[..., None])[..., :3, 0], out.joints)


def test_input_forms_agree(body: BodyModel) -> None:
    gen = torch.Generator().manual_seed(1)
    poses = 0.4 * torch.randn(2, 24, 3, generator=gen, dtype=torch.float64)
    betas = torch.randn(2, 2, generator=gen, dtype=torch.float64)
    padded = torch.nn.functional.pad(betas, (0, body.num_betas - 2))
    ref = body(poses, padded)
    for other in (body(axis_angle_to_matrix(poses), betas), body(poses.reshape(2, 72), betas)):
        torch.testing.assert_close(other.vertices, ref.vertices)
        torch.testing.assert_close(other.joints, ref.joints)
    with pytest.raises(ValueError):
        body(poses, torch.zeros(2, body.num_betas + 1, dtype=torch.float64))
    with pytest.raises(ValueError):
        body(torch.zeros(2, 23, 3, dtype=torch.float64))


def test_gradients_reach_poses_betas_and_transl(body: BodyModel) -> None:
    poses = torch.zeros(2, 24, 3, dtype=torch.float64, requires_grad=True)  # zero pose: the delicate case
    betas = torch.zeros(2, body.num_betas, dtype=torch.float64, requires_grad=True)
    transl = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    out = body(poses, betas, transl)
    (out.vertices.pow(2).sum() + out.vertices[:, :, 0].sum() + out.joints.sum()).backward()
    for grad in (poses.grad, betas.grad, transl.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert (poses.grad.abs().sum(-1) > 0).all()  # every joint moves some vertices


def test_fk_on_a_chain() -> None:
    """A 3-joint chain along x, each joint rotated 90 degrees about z, ends where geometry says."""
    rest = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]], dtype=torch.float64)
    rz = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    posed, transforms = forward_kinematics(rz.expand(1, 3, 3, 3), rest, [-1, 0, 1])
    torch.testing.assert_close(posed[0], torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 1.0, 0.0]],
                                                      dtype=torch.float64))
    point = torch.tensor([[[2.5, 0.0, 0.0]]], dtype=torch.float64)  # beyond the last joint
    weights = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    moved = linear_blend_skinning(point, transforms, weights)
    torch.testing.assert_close(moved[0, 0], torch.tensor([-1.0, 0.5, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        forward_kinematics(rz.expand(1, 3, 3, 3), rest, [-1, 2, 0])


def _chain_one_joint_at_a_time(rotmats: torch.Tensor, rest: torch.Tensor, parents: list[int]):
    """The textbook recursion (SMPL's ``batch_rigid_transform``), one joint after another."""
    rot, pos = [rotmats[..., 0, :, :]], [rest[..., 0, :]]
    for j in range(1, len(parents)):
        p = parents[j]
        rot.append(rot[p] @ rotmats[..., j, :, :])
        pos.append(pos[p] + (rot[p] @ (rest[..., j, :] - rest[..., p, :])[..., None])[..., 0])
    rot, pos = torch.stack(rot, -3), torch.stack(pos, -2)
    return pos, rot, pos - (rot @ rest[..., None])[..., 0]


@pytest.mark.parametrize("parents", [list(PARENTS), [-1, 0, 0, 1, 1, 2, 4, 3, 6, 6, 2]],
                         ids=["smpl", "uneven-tree"])
def test_fk_levels_match_the_joint_by_joint_recursion_values_and_gradients(parents: list[int]) -> None:
    """The tree posed a depth at a time (joints of one depth gathered from their parents) gives the recursion's
    joints and transforms, and the same gradients, for leading batch dimensions; the uneven tree has levels
    whose parents are shared, skipped and out of order."""
    generator = torch.Generator().manual_seed(3)
    count = len(parents)
    axis_angle = torch.randn(2, 3, count, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    rest = torch.randn(2, 3, count, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    weights = torch.randn(2, 3, count, 3, dtype=torch.float64, generator=generator)
    outputs = []
    for chain in (forward_kinematics, None):
        rotmats = axis_angle_to_matrix(axis_angle)
        if chain is None:
            posed, rot, trans = _chain_one_joint_at_a_time(rotmats, rest, parents)
        else:
            posed, transforms = chain(rotmats, rest, parents)
            rot, trans = transforms[..., :3, :3], transforms[..., :3, 3]
            torch.testing.assert_close(transforms[..., 3, :], torch.tensor([0.0, 0.0, 0.0, 1.0],
                                                                          dtype=torch.float64).expand(2, 3, count, 4))
        loss = (posed * weights).sum() + rot.sin().sum() + (trans * weights).cos().sum()
        outputs.append((posed, rot, trans, *torch.autograd.grad(loss, (axis_angle, rest))))
    for mine, reference in zip(*outputs):
        torch.testing.assert_close(mine, reference)


def test_a_skeleton_first_posed_under_inference_mode_can_be_posed_with_gradients_later() -> None:
    """The tree's index tensors and the cross-product basis are cached on first use: made under
    ``torch.inference_mode`` (a detector's or an estimator's pass), they must still serve a fit's backward pass."""
    from backend.body import kinematics, rotations

    kinematics._level_plan.cache_clear()
    rotations._skew_basis.cache_clear()
    with torch.inference_mode():
        forward_kinematics(axis_angle_to_matrix(torch.randn(2, 24, 3)), torch.randn(2, 24, 3), PARENTS)
    axis_angle = torch.randn(2, 24, 3, requires_grad=True)
    rest = torch.randn(2, 24, 3, requires_grad=True)
    joints, _ = forward_kinematics(axis_angle_to_matrix(axis_angle), rest, PARENTS)
    joints.square().sum().backward()
    assert torch.isfinite(axis_angle.grad).all() and axis_angle.grad.abs().sum() > 0 and rest.grad is not None
