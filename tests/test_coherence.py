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
        out = body(torch.tensor(poses[None], dtype=torch.float32), transl=torch.tensor([transl], dtype=torch.float32))
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
