"""Coherence refinement: collisions separate, wrong depth orders swap, coherent scenes stay put, clips."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from backend.camera import Camera
from backend.coherence import CoherenceOptions, refine_clip, refine_people
from backend.coherence.fields import penetration_field
from backend.coherence.losses import disagreement_pairs, ordinal_depth_loss
from backend.estimators.base import PersonEstimate
from backend.evaluation.metrics import collisions
from backend.render import project, rasterize

CAMERA = Camera.from_fov(320, 240)


@pytest.fixture(scope="module")
def body():
    from backend.body import load_body_model

    torch.set_num_threads(1)
    return load_body_model("open-body")


def _person(body, transl, yaw: float = 0.0) -> PersonEstimate:
    from backend.evaluation.poses import upright_orientation

    poses = np.zeros((24, 3))
    poses[0] = upright_orientation(yaw)
    poses[16, 2], poses[17, 2] = -1.2, 1.2  # arms down
    with torch.no_grad():
        out = body(torch.tensor(poses[None], dtype=torch.float32), transl=torch.as_tensor(np.asarray(transl, np.float32)[None]))
    joints2d = project(out.joints[0], CAMERA).numpy()
    return PersonEstimate(poses, np.zeros(body.num_betas), np.asarray(transl, float), joints2d, 1.0)


def _vertices(body, people):
    with torch.no_grad():
        return body(*(torch.tensor(np.stack([getattr(p, k) for p in people]), dtype=torch.float32)
                      for k in ("poses", "betas", "transl"))).vertices


def _masks(body, people):
    index = rasterize(_vertices(body, people), body.faces, CAMERA).index_map.numpy()
    return [index == i for i in range(len(people))]


def test_penetration_field_is_positive_inside_only(body) -> None:
    verts = _vertices(body, [_person(body, [0.0, 0.0, 5.0])])[0]
    field = penetration_field(verts, body.faces, 32)
    pelvis = verts.mean(0, keepdim=True)
    assert field.sample(pelvis).item() > 0.03
    assert field.sample(pelvis + torch.tensor([0.0, 0.0, 1.0])).item() == 0.0
    shifted = field.sample(pelvis + 2.0, shift=torch.tensor([2.0, 2.0, 2.0]))
    assert torch.isclose(shifted, field.sample(pelvis))


def test_people_inside_each_other_separate(body) -> None:
    people = [_person(body, [0.0, 0.0, 5.0]), _person(body, [0.1, 0.0, 5.12])]
    assert collisions(_vertices(body, people).numpy(), body.faces)[0] == 1
    refined = refine_people(people, body, CAMERA)
    assert collisions(_vertices(body, refined).numpy(), body.faces)[0] == 0
    # they moved apart mostly in depth, and their 2D stayed close
    assert refined[1].transl[2] - refined[0].transl[2] > 0.2
    for before, after in zip(people, refined):
        assert np.abs(after.joints2d - before.joints2d).max() < 15.0


def test_wrong_depth_order_swaps_against_masks(body) -> None:
    truth = [_person(body, [0.0, 0.0, 5.0]), _person(body, [0.3, 0.0, 4.2])]  # person 1 in front
    masks = _masks(body, truth)
    estimate = [_person(body, [0.0, 0.0, 4.2]), _person(body, [0.3, 0.0, 5.0])]  # depths swapped
    refined = refine_people(estimate, body, CAMERA, masks)
    assert refined[1].transl[2] < refined[0].transl[2]
    assert collisions(_vertices(body, refined).numpy(), body.faces)[0] == 0


def test_empty_and_single_person_frames(body) -> None:
    assert refine_people([], body, CAMERA) == []
    alone = _person(body, [0.0, 0.0, 5.0])
    np.testing.assert_array_equal(refine_people([alone], body, CAMERA)[0].transl, alone.transl)


def test_coherent_scene_does_not_move(body) -> None:
    people = [_person(body, [0.0, 0.0, 4.2]), _person(body, [0.3, 0.0, 5.0]), _person(body, [-1.5, 0.0, 6.0])]
    refined = refine_people(people, body, CAMERA, _masks(body, people))
    for before, after in zip(people, refined):
        np.testing.assert_allclose(after.transl, before.transl, atol=1e-6)
        np.testing.assert_allclose(after.joints2d, before.joints2d, atol=1e-6)


def test_clip_keeps_a_track_smooth(body) -> None:
    colliding = [_person(body, [0.0, 0.0, 5.0]), _person(body, [0.1, 0.0, 5.12])]
    apart = [_person(body, [0.0, 0.0, 5.0]), _person(body, [1.2, 0.0, 5.12])]
    frames = [apart, colliding, apart]
    ids = [[0, 1]] * 3
    options = CoherenceOptions(iterations=30)
    coupled = refine_clip(frames, ids, body, CAMERA, options=options)
    alone = refine_clip(frames, None, body, CAMERA, options=options)
    moved = lambda out, f: np.linalg.norm(out[f][1].transl - frames[f][1].transl)  # noqa: E731
    assert moved(alone, 0) == 0.0 and moved(coupled, 0) > 0.01  # the correction spreads to neighbours
    assert moved(coupled, 1) > 0.1


def test_ordinal_loss_pushes_both_people() -> None:
    depth = torch.tensor([[[5.0, 5.0]], [[4.0, 4.0]]], requires_grad=True)  # person 0 behind person 1
    observed = torch.tensor([[0, 0]])  # but person 0 is what the mask shows
    rendered = torch.tensor([[1, 1]])
    pairs = disagreement_pairs(rendered, observed, torch.isfinite(depth.detach()), min_pixels=1, touch_radius=0)
    assert pairs == []  # the masks do not touch: no evidence that 0 and 1 overlap at all
    ordinal_depth_loss(depth, observed, [(0, 1)], temperature=0.1).backward()
    assert (depth.grad[0] > 0).all() and (depth.grad[1] < 0).all()


def _standing(body, x: float, z: float, floor_y: float, yaw: float = 0.0) -> PersonEstimate:
    """A person whose soles touch the floor y = floor_y (camera axes, y down)."""
    probe = _person(body, [0.0, 0.0, 5.0], yaw)
    lowest = float(_vertices(body, [probe])[0][:, 1].max())
    return _person(body, [x, floor_y - lowest, z], yaw)


def test_floor_gate_rejects_people_at_several_heights(body) -> None:
    from backend.coherence.ground import fit_floor, ground_targets

    flat = [_standing(body, x, z, 1.6) for x, z in [(-1.5, 5.0), (1.5, 6.0), (0.0, 8.0), (-2.0, 9.0)]]
    steps = [_standing(body, x, z, y) for x, z, y in [(-1.5, 5.0, 1.6), (1.5, 6.0, 0.9), (0.0, 8.0, 1.6),
                                                      (-2.0, 9.0, 0.9), (2.0, 10.0, 1.6)]]
    for people, accepted in ((flat, True), (steps, False)):
        out = body(*(torch.tensor(np.stack([getattr(p, k) for p in people]), dtype=torch.float32)
                     for k in ("poses", "betas", "transl")))
        j2d = torch.tensor(np.stack([p.joints2d for p in people]), dtype=torch.float32)
        assert (fit_floor(out.joints.detach(), j2d, CAMERA) is not None) == accepted
        _, weight = ground_targets(out.joints.detach(), out.vertices.detach(), j2d, CAMERA, _masks(body, people))
        assert bool((weight > 0).any()) == accepted
    refined = refine_people(steps, body, CAMERA, _masks(body, steps), CoherenceOptions(ground_weight=100.0))
    for before, after in zip(steps, refined):  # no floor, no overlaps: nothing moves
        np.testing.assert_array_equal(after.transl, before.transl)


def test_floor_orders_people_that_never_overlap(body) -> None:
    truth = [_standing(body, -1.6, 5.0, 1.6), _standing(body, 1.6, 6.5, 1.6), _standing(body, 0.0, 9.0, 1.6)]
    masks = _masks(body, truth)
    assert all(m.any() for m in masks)
    # persons 0 and 1 (side by side, never overlapping) with their depths wrong the other way round
    estimate = [_person(body, truth[0].transl * 1.25, 0.0), _person(body, truth[1].transl * 0.85, 0.0), truth[2]]
    assert estimate[0].transl[2] > estimate[1].transl[2]
    refined = refine_people(estimate, body, CAMERA, masks, CoherenceOptions(ground_weight=100.0))
    assert refined[0].transl[2] < refined[1].transl[2] < refined[2].transl[2]
    assert abs(refined[0].transl[2] - 5.0) < 0.35 and abs(refined[1].transl[2] - 6.5) < 0.45
    # the paper's terms alone have no evidence here
    plain = refine_people(estimate, body, CAMERA, masks)
    assert plain[0].transl[2] > plain[1].transl[2]


def test_coherent_scene_on_a_floor_does_not_move(body) -> None:
    people = [_standing(body, -1.6, 5.0, 1.6), _standing(body, 1.6, 6.5, 1.6), _standing(body, 0.0, 9.0, 1.6)]
    refined = refine_people(people, body, CAMERA, _masks(body, people), CoherenceOptions(ground_weight=100.0))
    for before, after in zip(people, refined):
        np.testing.assert_array_equal(after.transl, before.transl)
