"""People sized by their common floor (backend/fitting/floor_height.py): relative sizes come from the image."""

from __future__ import annotations

import numpy as np

from backend.fitting.floor_height import FOOT_POINTS, floor_statures

CAMERA_HEIGHT = 1.6  # metres above the floor; level camera, y down
UPRIGHT = np.array([np.pi, 0.0, 0.0])  # the body's +y (up) onto the camera's -y


def _people(true_heights: list[float], depths: list[float], fitted_height: float = 1.58,
            lean: list[np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
    """People standing on the floor, each fitted ``fitted_height`` tall: the same image, so the fitted body is
    the true one scaled about the camera centre by fitted/true (feet off the floor by as much)."""
    n = len(true_heights)
    poses = np.zeros((n, 24, 3))
    poses[:, 0] = UPRIGHT if lean is None else np.array(lean)
    points = np.zeros((n, 25, 3))
    for i, (height, depth) in enumerate(zip(true_heights, depths)):
        foot = np.array([0.8 * i - 1.0, CAMERA_HEIGHT, depth])
        points[i] = foot + np.array([0.0, -0.9, 0.0])  # the rest of the body above the feet
        points[i, FOOT_POINTS] = foot + np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, -0.2],
                                                  [0.1, 0.0, -0.2]])
        points[i] *= fitted_height / height
    statures = np.full(n, fitted_height)
    return poses, points, statures, np.ones((n, 25)), np.zeros(n, np.int64)


def test_a_child_among_adults_comes_out_as_tall_as_the_image_shows() -> None:
    true = [1.78, 1.70, 1.62, 1.20]  # adults of mean 1.70 m (the prior's typical person) and a child
    targets = floor_statures(*_people(true, [4.0, 6.5, 5.0, 4.5]))
    assert np.allclose(targets, true, atol=0.02)  # exact up to the robust weights: the child is an outlier


def test_the_floor_sets_relative_sizes_only() -> None:
    """Everybody twice a typical size gives typical sizes (no photo says how big a whole group is), in the
    same ratios; the frames of a chunk are sized separately."""
    poses, points, statures, confidence, _ = _people([1.8, 1.7, 1.2, 1.75], [4.0, 5.0, 6.0, 7.0])
    frame_of = np.array([0, 0, 1, 1])
    targets = floor_statures(poses, points, statures, confidence, frame_of)
    assert np.allclose(targets[:2] / targets[1], [1.8 / 1.7, 1.0], atol=1e-6)
    assert abs(targets[:2].mean() - 1.70) < 0.01 and abs(targets[2:].mean() - 1.70) < 0.3
    assert targets[2] < 0.75 * targets[3]


def test_no_target_without_a_floor_to_share() -> None:
    poses, points, statures, confidence, frame_of = _people([1.7, 1.2], [4.0, 5.0])
    one = floor_statures(poses[:1], points[:1], statures[:1], confidence[:1], frame_of[:1])
    assert np.isnan(one).all()  # one person: nothing to compare with
    hidden = confidence.copy()
    hidden[1, FOOT_POINTS] = 0.1
    assert np.isnan(floor_statures(poses, points, statures, hidden, frame_of)).all()  # the other's feet unseen
    lying = [UPRIGHT, np.array([np.pi / 2, 0.0, 0.0])]
    poses3, points3, statures3, confidence3, frame3 = _people([1.7, 1.6, 1.2], [4.0, 5.0, 6.0],
                                                              lean=[UPRIGHT, UPRIGHT, lying[1]])
    targets = floor_statures(poses3, points3, statures3, confidence3, frame3)
    assert np.isfinite(targets[:2]).all() and np.isnan(targets[2])  # a lying person is not sized by the floor
