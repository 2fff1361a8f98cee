"""The pipeline finds the people of the next chunk on a worker thread while it fits the chunk before: the real
mediapipe-fit estimator over real frames with a shot cut gives exactly what it gives one stage after the other,
a cut begins a new shot in both stages, an error of the first stage reaches the caller, and nothing is left
running after a cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.geometry.camera import Camera
from backend.sources.frames import SourceInfo

SIZE = (640, 360)


class _Frames:
    """A video source over given frames (``chunks`` as ``backend.sources.frames`` yields them)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        h, w = frames[0].shape[:2]
        self.info = SourceInfo(Path("clip.mp4"), "video", w, h, 25.0, len(frames), 0)

    def chunks(self, size: int):
        items = list(enumerate(self.frames))
        for start in range(0, len(items), size):
            yield items[start : start + size]


class _Recorded:
    """The real estimator, recording which thread runs each stage and what each call was told."""

    def __init__(self, estimator, ahead: bool = True) -> None:
        self.inner = estimator
        self.name = estimator.name
        self.calls: list[tuple[str, str, int, bool]] = []  # (stage, thread, frames, new shot)
        if ahead:
            self.find_people = self._find_people

    def _find_people(self, frames, new_shot=False):
        self.calls.append(("find", threading.current_thread().name, len(frames), new_shot))
        return self.inner.find_people(frames, new_shot)

    def estimate(self, frames, camera, found=None):
        self.calls.append(("fit", threading.current_thread().name, len(frames), bool(found and found.new_shot)))
        return self.inner.estimate(frames, camera, found=found)

    def reset(self) -> None:
        self.calls.append(("reset", threading.current_thread().name, 0, True))
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def body_model():
    from backend.body import load_body_model

    return load_body_model("open-body")


@pytest.fixture(scope="module")
def clip_with_a_cut(shared_data: Path) -> list[np.ndarray]:
    """6 frames of the dribble clip, then 4 of a photo of one player: a cut at frame 6."""
    capture = cv2.VideoCapture(str(shared_data / "football_dribble.mp4"))
    frames = []
    for _ in range(6):
        ok, bgr = capture.read()
        assert ok
        frames.append(cv2.cvtColor(cv2.resize(bgr, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    capture.release()
    photo = cv2.cvtColor(cv2.imread(str(shared_data / "football_player_a.jpg")), cv2.COLOR_BGR2RGB)
    return frames + [cv2.resize(photo, SIZE, interpolation=cv2.INTER_AREA)] * 4


def _run(frames: list[np.ndarray], estimator) -> tuple:
    from backend.pipeline import _Run, _track_all

    source = _Frames(frames)
    run = _Run(source.info, None, None)
    stop = _track_all(source, estimator, Camera.from_fov(*SIZE), 4, run)
    return stop, run


def _rows(run) -> list[tuple[int, int, np.ndarray]]:
    return [(t.track_id, f, np.asarray(p.transl)) for t in run.tracker.finished_tracks(is_clip=True)
            for f, p in zip(t.frames, t.people)]


@pytest.mark.slow  # the real estimator over 10 frames, twice
def test_finding_ahead_gives_what_one_stage_after_the_other_gives(body_model, clip_with_a_cut):
    from backend.estimators.mediapipe_fit import MediapipeFitEstimator

    ahead = _Recorded(MediapipeFitEstimator(body_model))
    stop, run = _run(clip_with_a_cut, ahead)
    assert stop is None and run.cuts == [6]
    finds = [c for c in ahead.calls if c[0] == "find"]
    assert {c[1] for c in finds} == {"troupe-people_0"}  # the first stage ran on the worker only
    assert [(n, cut) for _, _, n, cut in finds] == [(4, False), (2, False), (2, True), (2, False)]
    fits = [c for c in ahead.calls if c[0] == "fit"]
    assert {c[1] for c in fits} == {"MainThread"} and [c[3] for c in fits] == [False, False, True, False]
    assert not [c for c in ahead.calls if c[0] == "reset"]
    # the search of a chunk starts before the fit of the chunk before it
    order = [(stage, n) for stage, _, n, _ in ahead.calls]
    assert order.index(("find", 4)) < order.index(("fit", 4))
    assert ahead.calls[1][0] == "find"

    one_by_one = _Recorded(MediapipeFitEstimator(body_model), ahead=False)
    _, sequential = _run(clip_with_a_cut, one_by_one)
    assert [c[0] for c in one_by_one.calls].count("reset") == 1
    got, want = _rows(run), _rows(sequential)
    assert len(got) == len(want) >= 10
    assert [(i, f) for i, f, _ in got] == [(i, f) for i, f, _ in want]
    np.testing.assert_allclose(np.stack([t for *_, t in got]), np.stack([t for *_, t in want]), atol=1e-5)


class _Failing:
    """Finds people until the given call, then fails as a broken model would."""

    name = "failing"

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.found = 0
        self.fitted = 0

    def find_people(self, frames, new_shot=False):
        from backend.estimators.base import EstimatorError, FoundPeople

        self.found += 1
        if self.found == self.fail_at:
            raise EstimatorError("people finder: the model file is damaged")
        return FoundPeople([[] for _ in frames], new_shot)

    def estimate(self, frames, camera, found=None):
        self.fitted += 1
        return [[] for _ in frames]

    def close(self) -> None:
        pass


def test_an_error_of_the_first_stage_reaches_the_caller_after_the_chunks_before_it():
    from backend.estimators.base import EstimatorError

    estimator = _Failing(fail_at=3)
    frames = [np.full((36, 64, 3), 90, np.uint8)] * 16
    with pytest.raises(EstimatorError, match="damaged"):
        _run(frames, estimator)
    assert estimator.fitted == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("troupe-people")]


def test_a_cancel_stops_the_worker():
    from backend.pipeline import _Run, _track_all

    estimator = _Failing(fail_at=-1)
    source = _Frames([np.full((36, 64, 3), 90, np.uint8)] * 40)
    cancel = threading.Event()
    run = _Run(source.info, lambda progress: cancel.set() if progress.done >= 8 else None, cancel)
    stop = _track_all(source, estimator, Camera.from_fov(64, 36), 4, run)
    assert type(stop).__name__ == "Cancelled"
    assert run.frames_done == 8 and estimator.found < 10
    assert not [t for t in threading.enumerate() if t.name.startswith("troupe-people")]
