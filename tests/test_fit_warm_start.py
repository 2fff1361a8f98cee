"""Warm-start matching of new detections to the previous frame's fitted people, and occlusion evidence."""

from __future__ import annotations

import numpy as np

from backend.detection import PoseDetections
from backend.fitting.depth_order import occlusion_pairs, violated
from backend.fitting.warm_start import Previous, assign, box_distance, followed, match, per_person


def _previous() -> Previous:
    boxes = np.array([[100.0, 100.0, 200.0, 400.0], [500.0, 100.0, 600.0, 400.0]])
    poses = np.stack([np.full((24, 3), 0.1), np.full((24, 3), 0.2)])
    return Previous(boxes, poses, np.zeros((2, 6)), np.array([[0.0, 0.0, 5.0], [1.0, 0.0, 7.0]]), (1280, 720))


def test_people_take_the_nearest_previous_person_and_newcomers_start_cold() -> None:
    boxes = np.array([[140.0, 110.0, 240.0, 420.0],  # person A moved 40 px (IoU ~0.5 would be borderline)
                      [135.0, 150.0, 230.0, 410.0],  # a second hypothesis of A
                      [900.0, 100.0, 1000.0, 400.0]])  # somebody new
    init = match(_previous(), boxes, np.array([0, 0, 1]), threshold=0.5)
    np.testing.assert_allclose(init.transl[:2], [[0.0, 0.0, 5.0]] * 2)
    assert np.isnan(init.transl[2]).all() and init.valid.tolist() == [True, True, False]
    nxt = per_person(init, np.array([0, 0, 1]))  # one row per person, in person order; the newcomer stays cold
    assert len(nxt.boxes) == 2 and nxt.transl[0, 2] == 5.0 and np.isnan(nxt.transl[1]).all()
    assert nxt.ids.tolist() == [0, 1]


def _people(boxes: np.ndarray, origin: list[int]) -> PoseDetections:
    n = len(boxes)
    out = PoseDetections.empty(10, 10).select([])
    out.boxes, out.group, out.origin = boxes, np.arange(n), np.array(origin)
    return out


def test_followed_people_start_from_themselves_even_when_their_boxes_moved_far() -> None:
    """The people finder says who is who: identity beats box distance (a fast move, a camera pan)."""
    previous = _previous()
    previous.ids = np.array([3, 7])  # the finder's indices of these two people in their frame
    boxes = np.array([[560.0, 100.0, 660.0, 400.0],  # person 3 after a large pan (beside person 7's old box)
                      [900.0, 100.0, 1000.0, 400.0],  # person 7, moved far too
                      [100.0, 100.0, 200.0, 400.0]])  # a newcomer standing where person 3 stood
    init = followed(previous, _people(boxes, [3, 7, -1]), threshold=0.5)
    np.testing.assert_allclose(init.transl[:2], [[0.0, 0.0, 5.0], [1.0, 0.0, 7.0]])
    assert np.isnan(init.transl[2]).all()  # person 3 is taken: no warm start from their old box
    by_box_alone = match(previous, boxes, np.arange(3), threshold=0.5)
    assert by_box_alone.transl[2, 2] == 5.0  # what box matching alone would have done: the wrong person


def test_assignment_is_one_to_one_and_respects_size() -> None:
    assert assign(np.array([[0.1, 0.2], [0.05, 0.3]]), 0.5).tolist() == [1, 0]
    assert assign(np.array([[0.9]]), 0.5).tolist() == [-1]
    small = np.array([[100.0, 100.0, 120.0, 140.0]])
    assert np.isinf(box_distance(small, _previous().boxes[:1])).all()  # 40 px vs 300 px tall: not the same person


def _landmarks(x: float, y: float, visibility: float) -> tuple[np.ndarray, np.ndarray]:
    points = np.tile([x, y], (33, 1)) + np.random.default_rng(0).normal(0, 3, (33, 2))
    return points, np.full(33, visibility)


def test_occlusion_evidence_needs_hidden_landmarks_on_one_side_only() -> None:
    masks = np.zeros((2, 200, 300), bool)
    masks[0, 50:150, 50:150] = True  # the occluder
    masks[1, 60:160, 120:220] = True  # the occluded one, overlapping at x 120..150
    front, front_vis = _landmarks(100, 100, 0.95)
    back, back_vis = _landmarks(170, 110, 0.9)
    back[:6], back_vis[:6] = [135, 100], 0.1  # six of its landmarks lie in the overlap, predicted hidden
    front[:2] = [135, 110]  # the occluder is seen there
    keypoints, visibility = np.stack([front, back]), np.stack([front_vis, back_vis])
    assert occlusion_pairs(masks, keypoints, visibility).tolist() == [[0, 1]]
    visibility[1, :6] = 0.95  # both seen in the overlap: no evidence
    assert occlusion_pairs(masks, keypoints, visibility).tolist() == []


def test_violations_compare_depths() -> None:
    pairs = np.array([[0, 1], [2, 1]])
    assert violated(pairs, np.array([4.0, 5.0, 6.0])).tolist() == [False, True]
    assert violated(np.zeros((0, 2), int), np.zeros(3)).shape == (0,)
