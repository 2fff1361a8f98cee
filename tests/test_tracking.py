"""Identities across frames on synthetic people with known ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.estimators.base import PersonEstimate
from backend.tracking.tracker import Tracker


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


def test_a_two_frame_clip_keeps_everyone_seen_in_either_frame():
    tracker = Tracker()
    tracker.update(0, [person(-1, 5, 100), person(0, 5, 500), person(1, 5, 900)])
    tracker.update(1, [person(-1, 5, 100), person(1, 5, 900)])  # the middle one missed in the second frame
    tracks = tracker.finished_tracks(is_clip=True)
    assert [len(t.frames) for t in tracks] == [2, 1, 2]


def test_the_one_frame_shots_of_a_wipe_in_a_long_clip_are_still_flicker():
    tracker = Tracker()
    for frame in range(40):
        if frame in (20, 21, 22):  # a wipe read as three one-frame shots
            tracker.cut()
        tracker.update(frame, [person(0.01 * frame, 5.0, 500)])
    tracks = tracker.finished_tracks(is_clip=True)
    assert [(t.frames[0], len(t.frames)) for t in tracks] == [(0, 20), (22, 18)]


def test_a_still_image_keeps_every_detection():
    tracker = Tracker()
    tracker.update(0, [person(0, 5, 100), person(1, 5, 600)])
    assert len(tracker.finished_tracks(is_clip=False)) == 2


# ------------------------------------------------------------------------------- cues, gaps, cuts, memory

import cv2  # noqa: E402
import pytest  # noqa: E402

from backend.geometry.camera import Camera  # noqa: E402
from backend.tracking.tracker import TrackerSettings  # noqa: E402

CAMERA = Camera.from_fov(1280, 720)
COLOURS = {"red": (200, 30, 30), "blue": (30, 60, 200)}


def placed(x: float, z: float, rng: np.random.Generator | None = None, noise: float = 0.0) -> PersonEstimate:
    """A person whose box is the projection of a 0.5 x 1.7 m body at lateral ``x`` and depth ``z``."""
    root = np.array([x, 0.0, z]) + (0 if rng is None else rng.normal(0, noise, 3) * [1, 1, 3])
    corners = CAMERA.project(np.array([[root[0] - 0.25, -0.85, root[2]], [root[0] + 0.25, 0.85, root[2]]]))
    estimate = person(0, 0, 0)
    estimate.transl, estimate.bbox = root, corners.ravel()
    estimate.mask = np.zeros((720, 1280), bool)  # a full-size mask, as estimators give: must not be kept
    return estimate


def painted(people_colours: list[tuple[PersonEstimate, str]]) -> np.ndarray:
    image = np.full((720, 1280, 3), 90, np.uint8)
    for estimate, colour in people_colours:
        x0, y0, x1, y1 = (int(v) for v in estimate.bbox)
        cv2.rectangle(image, (x0, y0), (x1, y1), COLOURS[colour], thickness=-1)
    return image


def test_people_crossing_at_the_same_depth_are_told_apart_by_motion_and_looks():
    rng = np.random.default_rng(0)
    tracker = Tracker()
    frames = 60
    for frame in range(frames):
        t = frame / (frames - 1)
        red = placed(-1.5 + 3.0 * t, 5.0, rng, 0.05)
        blue = placed(1.5 - 3.0 * t, 5.0, rng, 0.05)
        image = painted([(blue, "blue"), (red, "red")] if frame % 2 else [(red, "red"), (blue, "blue")])
        tracker.update(frame, [blue, red] if frame % 3 else [red, blue], image=image)
    tracks = tracker.finished_tracks(is_clip=True)
    assert len(tracks) == 2
    for track in tracks:
        direction = np.sign(np.diff([p.transl[0] for p in track.people]).sum())
        steps = np.diff([p.transl[0] for p in track.people]) * direction
        assert (steps > -0.3).all(), "a track jumped to the other person"
        assert track.frames == list(range(frames))
        assert all(p.mask is None for p in track.people), "masks must not outlive their frame"


def _meet_pause_and_part(bounce: bool, with_images: bool) -> dict[str, list[str]]:
    """Red from the left and blue from the right meet at the same depth, stand together (same box) for ten
    frames and part: back where they came from (``bounce``) or on to the other side. The detections are the same
    in both cases; only who wears which colour differs. Returns the colours of each track, before the pause
    and after it."""
    rng = np.random.default_rng(3)
    tracker = Tracker(TrackerSettings.for_fps(30.0))
    for frame in range(60):
        walk = min(frame, 25) / 25 - max(frame - 34, 0) / 25  # 0 -> 1, frames 25..34 at 1, -> 0 again
        left, right = placed(-1.5 + 1.5 * walk, 5.0, rng, 0.01), placed(1.5 - 1.5 * walk, 5.0, rng, 0.01)
        red, blue = (left, right) if frame < 30 or bounce else (right, left)
        red.extras["who"], blue.extras["who"] = "red", "blue"
        image = painted([(red, "red"), (blue, "blue")]) if with_images else None
        tracker.update(frame, [left, right] if frame % 2 else [right, left], image=image)
    return {
        f"{t.frames[0]}-{n}": [p.extras["who"] for f, p in zip(t.frames, t.people) if not 25 <= f < 35]
        for n, t in enumerate(tracker.finished_tracks(is_clip=True))
    }


@pytest.mark.parametrize("bounce", [True, False], ids=["bounce", "pass"])
def test_appearance_keeps_identities_where_motion_is_ambiguous(bounce):
    tracks = _meet_pause_and_part(bounce, with_images=True)
    assert len(tracks) == 2
    for colours in tracks.values():
        assert len(set(colours)) == 1, f"a track switched people: {colours}"
        assert len(colours) == 50


def test_without_appearance_meeting_and_parting_is_a_guess():
    """The premise of the test above: motion alone gives the same tracks whether they bounce or pass."""
    bounce = _meet_pause_and_part(True, with_images=False)
    passing = _meet_pause_and_part(False, with_images=False)
    assert [len(c) for c in bounce.values()] == [len(c) for c in passing.values()]
    right = [all(len(set(c)) == 1 for c in tracks.values()) for tracks in (bounce, passing)]
    assert not all(right), "motion alone cannot know who went where"


def test_a_person_is_reidentified_after_an_occlusion_of_a_second():
    tracker = Tracker(TrackerSettings.for_fps(30.0))
    for frame in range(90):
        hidden = 30 <= frame < 60  # behind somebody for a whole second
        people = [] if hidden else [placed(-1.0 + 0.02 * frame, 5.0)]
        tracker.update(frame, people, image=painted([(p, "red") for p in people]))
    tracks = tracker.finished_tracks(is_clip=True)
    assert len(tracks) == 1 and len(tracks[0].frames) == 60


def test_someone_else_arriving_where_a_person_vanished_gets_a_new_identity():
    tracker = Tracker(TrackerSettings.for_fps(30.0))
    for frame in range(60):
        people = [placed(0.0, 5.0)] if frame != 30 else []
        colour = "red" if frame < 30 else "blue"
        tracker.update(frame, people, image=painted([(p, colour) for p in people]))
    assert len(tracker.finished_tracks(is_clip=True)) == 2


def test_a_person_the_finder_followed_keeps_their_track_when_their_colours_change():
    """Red walks beside blue; blue goes unseen and red turns blue (a shadow, a neighbour's colours in his box):
    the finder followed red from crop to crop, which outweighs colours that now look like blue's."""

    def run(follow: bool) -> list[list[int]]:
        tracker = Tracker(TrackerSettings.for_fps(30.0))
        for frame in range(30):
            red, blue = placed(-1.0 + 0.02 * frame, 5.0), placed(-0.55 + 0.02 * frame, 5.0)
            people = [red] if frame >= 17 else [red, blue]
            for index, estimate in enumerate(people):
                estimate.extras.update(finder_person=index, follows=index if follow and frame else -1)
            red.extras["who"] = "red"
            colours = [(red, "blue" if frame >= 20 else "red")] + ([(blue, "blue")] if frame < 17 else [])
            tracker.update(frame, people, image=painted(colours))
        return [[f for f, p in zip(t.frames, t.people) if p.extras.get("who") == "red"]
                for t in tracker.finished_tracks(is_clip=True)]

    assert [frames for frames in run(follow=True) if frames] == [list(range(30))]
    assert len([frames for frames in run(follow=False) if frames]) == 2  # without it, colours decide: a switch


class _FakeSource:
    """Real image, then black frames, then the image again, as a video source yields them."""

    def __init__(self, image: np.ndarray, blocks: list[tuple[bool, int]]) -> None:
        from backend.sources.frames import SourceInfo

        self.frames = [image if shown else np.zeros_like(image) for shown, count in blocks for _ in range(count)]
        h, w = image.shape[:2]
        self.info = SourceInfo(Path("fake.mp4"), "video", w, h, 30.0, len(self.frames), 0)

    def chunks(self, size: int):
        items = list(enumerate(self.frames))
        for start in range(0, len(items), size):
            yield items[start : start + size]


class _FakeEstimator:
    """One person on non-black frames; a one-frame false detection on one black frame."""

    name = "fake"

    def __init__(self) -> None:
        self.resets = 0
        self.seen = 0

    def estimate(self, frames, camera):
        out = []
        for frame in frames:
            self.seen += 1
            if frame.mean() > 10:
                out.append([placed(0.2, 5.0)])
            else:
                out.append([placed(2.0, 9.0)] if self.seen == 26 else [])
        return out

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def test_a_cut_to_black_and_back_ends_tracks_without_phantoms(shared_data):
    from backend.pipeline import _Run, _track_all
    from backend.sources.frames import read_image

    image = cv2.resize(read_image(shared_data / "football_player_a.jpg"), (640, 360))
    source = _FakeSource(image, [(True, 20), (False, 10), (True, 20)])
    estimator = _FakeEstimator()
    run = _Run(source.info, None, None)
    assert _track_all(source, estimator, Camera.from_fov(640, 360), 8, run) is None
    assert run.cuts == [20, 30]
    assert estimator.resets == 2
    tracks = run.tracker.finished_tracks(is_clip=True)
    assert [t.frames for t in tracks] == [list(range(20)), list(range(30, 50))]
    assert [t.track_id for t in tracks] == [0, 1]



