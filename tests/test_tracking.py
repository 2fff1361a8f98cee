"""Identities across frames on synthetic people with known ground truth."""

from __future__ import annotations

import numpy as np

from backend.estimators.base import PersonEstimate
from backend.tracking import Tracker


def person(x: float, z: float, bbox_x: float) -> PersonEstimate:
    return PersonEstimate(
        poses=np.zeros((24, 3)),
        betas=np.zeros(10),
        transl=np.array([x, 0.0, z]),
        joints2d=np.zeros((24, 2)),
        confidence=1.0,
        bbox=np.array([bbox_x, 100.0, bbox_x + 80.0, 400.0]),
    )


def test_two_people_crossing_at_different_depths_keep_their_identities():
    tracker = Tracker()
    frames = 40
    for frame in range(frames):
        t = frame / (frames - 1)
        a = person(-1.0 + 2.0 * t, 4.0, 300 + 400 * t)  # walks right, near
        b = person(1.0 - 2.0 * t, 6.0, 700 - 400 * t)  # walks left, far; their boxes overlap mid-way
        people = [b, a] if frame % 2 else [a, b]  # detection order carries no identity
        tracker.update(frame, people)
    tracks = tracker.finished_tracks(is_clip=True)
    assert len(tracks) == 2
    for track in tracks:
        depths = {float(p.transl[2]) for p in track.people}
        assert len(depths) == 1, "a track switched between the near and the far person"
        assert track.frames == list(range(frames))


def test_short_gap_continues_the_track_and_flicker_is_dropped():
    tracker = Tracker()
    for frame in range(30):
        people = [] if 10 <= frame < 15 else [person(0.01 * frame, 5.0, 500)]
        if frame == 20:
            people.append(person(3.0, 9.0, 1100))  # a one-frame false detection
        tracker.update(frame, people)
    tracks = tracker.finished_tracks(is_clip=True)
    assert len(tracks) == 1
    assert len(tracks[0].frames) == 25


def test_a_still_image_keeps_every_detection():
    tracker = Tracker()
    tracker.update(0, [person(0, 5, 100), person(1, 5, 600)])
    assert len(tracker.finished_tracks(is_clip=False)) == 2
