"""Coherence refinement: collisions separate, wrong depth orders swap, coherent scenes stay put, clips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from backend.coherence import CoherenceOptions, refine as refine_module, refine_clip, refine_people
from backend.coherence.fields import penetration_field
from backend.coherence.losses import disagreement_pairs, ordinal_depth_loss
from backend.estimators.base import PersonEstimate
from backend.evaluation.metrics import collisions
from backend.geometry.camera import Camera
from backend.geometry.render import rasterize

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
        out = body(torch.tensor(poses[None], dtype=torch.float32),
                   transl=torch.as_tensor(np.asarray(transl, np.float32)[None]))
    joints2d = CAMERA.project(out.joints[0]).numpy()
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
    # a swap of 17 % depth each way redraws both people at another size: only without the drift bound
    refined = refine_people(estimate, body, CAMERA, masks, CoherenceOptions(max_depth_drift=None))
    assert refined[1].transl[2] < refined[0].transl[2]
    assert collisions(_vertices(body, refined).numpy(), body.faces)[0] == 0


def test_depth_moves_keep_the_drawing_on_its_person(body) -> None:
    """By default a depth correction may not move any joint's drawing by more than ``max_depth_drift`` (plus
    ``max_lateral``) of the person's size: the fitted bodies stay on the people they were fitted to."""
    truth = [_person(body, [0.0, 0.0, 5.0]), _person(body, [0.3, 0.0, 4.2])]
    estimate = [_person(body, [0.0, 0.0, 4.2]), _person(body, [0.3, 0.0, 5.0])]
    options = CoherenceOptions()
    refined = refine_people(estimate, body, CAMERA, _masks(body, truth), options)
    unbounded = refine_people(estimate, body, CAMERA, _masks(body, truth), CoherenceOptions(max_depth_drift=None))
    for before, after, free in zip(estimate, refined, unbounded):
        size = np.ptp(before.joints2d, axis=0).max()
        moved = np.linalg.norm(after.joints2d - before.joints2d, axis=-1).max()
        assert moved <= (options.max_depth_drift + 2 * options.max_lateral) * size
        assert np.linalg.norm(free.joints2d - before.joints2d, axis=-1).max() > moved  # the bound did bind
    # the order moved the right way, as far as the bound allows
    assert refined[1].transl[2] - refined[0].transl[2] < estimate[1].transl[2] - estimate[0].transl[2]


def test_a_descent_that_can_move_nobody_further_ends_early(body, monkeypatch) -> None:
    """People held at their depth bounds with the order still wrong: the descent stops once nothing changes
    (not after its whole budget), where the whole budget would have left them."""
    truth = [_person(body, [0.0, 0.0, 5.0]), _person(body, [0.3, 0.0, 4.2])]
    estimate = [_person(body, [0.0, 0.0, 4.2]), _person(body, [0.3, 0.0, 5.0])]
    steps = []
    loss = refine_module._Problem.loss
    monkeypatch.setattr(refine_module._Problem, "loss", lambda self, *a, **k: steps.append(1) or loss(self, *a, **k))
    early = refine_people(estimate, body, CAMERA, _masks(body, truth))
    early_steps, steps[:] = len(steps), []
    whole = refine_people(estimate, body, CAMERA, _masks(body, truth), CoherenceOptions(min_progress=-1.0))
    assert len(steps) == CoherenceOptions().order_iterations + CoherenceOptions().iterations  # never stuck
    assert early_steps <= len(steps) // 2
    for a, b in zip(early, whole):
        assert np.abs(a.transl - b.transl).max() < 0.02
        assert np.abs(a.joints2d - b.joints2d).max() < 1.0


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
    assert collisions(_vertices(body, frames[1]).numpy(), body.faces)[0] == 1
    assert collisions(_vertices(body, coupled[1]).numpy(), body.faces)[0] == 0  # the collision is resolved


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
    refined = refine_people(estimate, body, CAMERA, masks, CoherenceOptions(ground_weight=100.0, max_depth_drift=None))
    assert refined[0].transl[2] < refined[1].transl[2] < refined[2].transl[2]
    assert abs(refined[0].transl[2] - 5.0) < 0.35 and abs(refined[1].transl[2] - 6.5) < 0.45
    # the paper's terms alone have no evidence here
    plain = refine_people(estimate, body, CAMERA, masks, CoherenceOptions(contact_order_weight=0.0))
    assert plain[0].transl[2] > plain[1].transl[2]


def test_coherent_scene_on_a_floor_does_not_move(body) -> None:
    people = [_standing(body, -1.6, 5.0, 1.6), _standing(body, 1.6, 6.5, 1.6), _standing(body, 0.0, 9.0, 1.6)]
    refined = refine_people(people, body, CAMERA, _masks(body, people), CoherenceOptions(ground_weight=100.0))
    for before, after in zip(people, refined):
        np.testing.assert_array_equal(after.transl, before.transl)


# --- contact order (backend.coherence.contact): feet lower in the image are nearer -------------------------


def _seen_by_detector(person: PersonEstimate, keypoints: np.ndarray, hidden: tuple[int, ...] = ()) -> PersonEstimate:
    """``person`` carrying detected keypoints (SMPL-24 layout), NaN and invisible at ``hidden`` joints."""
    keypoints = np.array(keypoints, dtype=np.float64, copy=True)
    visibility = np.ones(24)
    keypoints[list(hidden)], visibility[list(hidden)] = np.nan, 0.0
    extras = {"keypoints2d": keypoints, "keypoint_visibility": visibility, "keypoint_layout": "smpl24"}
    return dataclasses.replace(person, extras=extras)


def _rescaled(body, person: PersonEstimate, factor: float) -> PersonEstimate:
    """The same body moved along its pelvis ray by ``factor`` (a monocular depth error), drawn where it lands."""
    with torch.no_grad():
        pelvis = body(torch.tensor(person.poses[None], dtype=torch.float32),
                      transl=torch.tensor(person.transl[None], dtype=torch.float32)).joints[0, 0].numpy()
    return _person(body, person.transl + pelvis * (factor - 1.0))


def test_contact_rows_order_people_that_never_overlap(body) -> None:
    truth = [_standing(body, -1.6, 5.0, 1.6), _standing(body, 1.6, 6.5, 1.6), _standing(body, 0.0, 9.0, 1.6)]
    masks = _masks(body, truth)
    estimate = [_seen_by_detector(_rescaled(body, p, f), p.joints2d) for p, f in zip(truth, (1.25, 0.85, 1.0))]
    assert estimate[0].transl[2] > estimate[1].transl[2]  # side by side, the depth order wrong
    # depth errors of 25 % and 15 %, drawn at the wrong size: the detected keypoints say where they are drawn
    # right, so the default bound on depth moves lets them go there
    refined = refine_people(estimate, body, CAMERA, masks)
    assert refined[0].transl[2] < refined[1].transl[2] < refined[2].transl[2]
    assert refined[2].transl[2] == estimate[2].transl[2]  # already in order with both: untouched
    off = refine_people(estimate, body, CAMERA, masks, CoherenceOptions(contact_order_weight=0.0))
    assert off[0].transl[2] > off[1].transl[2]
    # the same bodies drawn the size the detector saw them (fitted bodies): an order 47 % away is out of reach
    # of the bounded moves, so it is not enforced and nobody is pushed to the bounds for it
    fitted = [_seen_by_detector(p, p.joints2d) for p in estimate]
    for before, after in zip(fitted, refine_people(fitted, body, CAMERA, masks)):
        np.testing.assert_array_equal(after.transl, before.transl)


def test_coherent_scene_with_detected_feet_does_not_move(body) -> None:
    people = [_standing(body, -1.6, 5.0, 1.6), _standing(body, 1.6, 6.5, 1.6), _standing(body, 0.0, 9.0, 1.6)]
    people = [_seen_by_detector(p, p.joints2d) for p in people]
    for before, after in zip(people, refine_people(people, body, CAMERA, _masks(body, people))):
        np.testing.assert_array_equal(after.transl, before.transl)


def _contact_inputs(body, people):
    from backend.coherence.contact import detected_contact_row, foot_vertices, lowest_seen_row

    with torch.no_grad():
        out = body(*(torch.tensor(np.stack([getattr(p, k) for p in people]), dtype=torch.float32)
                     for k in ("poses", "betas", "transl")))
    feet = foot_vertices(body.skin_weights)
    drawn = [CAMERA.project(v).numpy() for v in out.vertices]
    detected = [detected_contact_row(p.extras, p.joints2d, d, feet) for p, d in zip(people, drawn)]
    bounds = [lowest_seen_row(p.extras, p.joints2d, d, feet) for p, d in zip(people, drawn)]
    return out, detected, bounds


def test_detected_contact_is_where_the_planted_foot_is_drawn(body) -> None:
    poses = _standing(body, 0.0, 5.0, 1.6).poses.copy()
    poses[1, 0] = -0.9  # left hip flexed: the left foot is lifted
    transl = _standing(body, 0.0, 5.0, 1.6).transl
    with torch.no_grad():
        out = body(torch.tensor(poses[None], dtype=torch.float32),
                   transl=torch.tensor(transl[None], dtype=torch.float32))
    joints2d = CAMERA.project(out.joints[0]).numpy()
    sole_row = float(CAMERA.project(out.vertices[0])[:, 1].max())
    person = PersonEstimate(poses, np.zeros(body.num_betas), transl, joints2d, 1.0)
    both = _seen_by_detector(person, joints2d + [0.0, 3.0])  # the detector sees the feet 3 px lower than drawn
    shins = _seen_by_detector(person, joints2d, hidden=(8, 11))  # right ankle and foot hidden: knee and hip left
    left_only = _seen_by_detector(person, joints2d, hidden=(2, 5, 8, 11))  # the planted right leg hidden
    no_legs = _seen_by_detector(person, joints2d, hidden=(4, 5, 7, 8, 10, 11))
    _, detected, bounds = _contact_inputs(body, [both, shins, left_only, no_legs])
    assert abs(detected[0][0] - (sole_row + 3.0)) < 0.5
    assert abs(detected[1][0] - sole_row) < 0.5 and detected[1][1] > detected[0][1]  # extrapolated: less sure
    assert np.isnan(detected[2][0]) and np.isnan(detected[3][0])  # a lifted foot says nothing about the ground
    assert bounds[3] <= sole_row  # hidden legs: only a bound, and a true one
    assert _contact_inputs(body, [_person(body, [0.0, 0.0, 5.0])])[1] == [None]  # no keypoints: the mask decides
    short = dataclasses.replace(both, extras={**both.extras, "keypoint_layout": "mediapipe33"})  # 24 < 33 points
    assert _contact_inputs(body, [short])[1] == [None]


def test_feet_cut_by_the_picture_are_nearer_than_everyone_standing_in_view(body) -> None:
    from backend.coherence.contact import contact_order

    people = [_standing(body, 0.0, 2.6, 1.6), _standing(body, 1.0, 7.0, 1.6)]  # feet of 0 below the picture
    people = [_seen_by_detector(p, p.joints2d, hidden=tuple(j for j in range(24)
                                                            if not 0 <= p.joints2d[j, 1] < CAMERA.height))
              for p in people]
    out, detected, bounds = _contact_inputs(body, people)
    assert np.isnan(detected[0][0]) and np.isfinite(detected[1][0])
    assert contact_order(out.joints, out.vertices, CAMERA, _masks(body, people), detected, bounds) == [(0, 1)]


def test_no_contact_order_when_the_camera_is_below_the_feet(body) -> None:
    from backend.coherence.contact import contact_order

    stage = [_standing(body, -1.0, 6.0, -1.0), _standing(body, 1.0, 8.0, -1.0)]  # on a stage, seen from below
    stage = [_seen_by_detector(p, p.joints2d) for p in stage]
    out, detected, bounds = _contact_inputs(body, stage)
    assert contact_order(out.joints, out.vertices, CAMERA, _masks(body, stage), detected, bounds) == []
    floor = [_standing(body, -1.0, 6.0, 1.6), _standing(body, 1.0, 8.0, 1.6)]
    floor = [_seen_by_detector(p, p.joints2d) for p in floor]
    out, detected, bounds = _contact_inputs(body, floor)
    assert contact_order(out.joints, out.vertices, CAMERA, _masks(body, floor), detected, bounds) == [(0, 1)]


def test_masks_outrank_contact_rows(body) -> None:
    truth = [_standing(body, 0.0, 6.0, 1.6), _standing(body, 0.35, 5.0, 1.6)]  # 1 in front, overlapping 0
    masks = _masks(body, truth)
    estimate = [_standing(body, 0.0, 5.0, 1.6), _standing(body, 0.35 * 6.0 / 5.0, 6.0, 1.6)]  # order wrong
    # a detector that (wrongly) sees person 0's feet lower than person 1's agrees with the wrong estimate
    estimate = [_seen_by_detector(estimate[0], estimate[0].joints2d), _seen_by_detector(estimate[1], truth[1].joints2d
                                                                                       - [0.0, 40.0])]
    refined = refine_people(estimate, body, CAMERA, masks, CoherenceOptions(max_depth_drift=None))  # 20 % apart
    assert refined[1].transl[2] < refined[0].transl[2]


def test_someone_lying_down_does_not_switch_off_the_contact_order(body) -> None:
    from backend.coherence.contact import contact_order

    people = [_standing(body, -1.0, 6.0, 1.6), _standing(body, 1.0, 8.0, 1.6)]
    lying = _person(body, [0.0, 1.2, 7.0])
    lying.poses[0] = [0.0, 0.0, -np.pi / 2]  # spine along the picture's x (joints2d are not used here)
    people = [_seen_by_detector(p, p.joints2d) for p in people] + [lying]
    out, detected, bounds = _contact_inputs(body, people)
    assert contact_order(out.joints, out.vertices, CAMERA, _masks(body, people), detected, bounds) == [(0, 1)]


def test_masks_give_the_contact_when_there_are_no_keypoints(body) -> None:
    from backend.coherence.contact import contact_order

    people = [_standing(body, -1.0, 6.0, 1.6), _standing(body, 1.0, 8.0, 1.6)]  # no detector keypoints
    out, detected, bounds = _contact_inputs(body, people)
    masks = _masks(body, people)
    assert contact_order(out.joints, out.vertices, CAMERA, masks, detected, bounds) == [(0, 1)]
    halved = [m[::2, ::2] for m in masks]  # masks of another resolution are not read
    assert contact_order(out.joints, out.vertices, CAMERA, halved, detected, bounds) == []
