"""Finding every person on real photos and footage, scored against hand-checked head points
(``tests/data/people_heads.json``): people covered, bodies on nobody. These fail if people are dropped or
ghosts return. The figures through the whole pipeline are ``python -m backend eval-people``'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.detection import proposals as P
from backend.evaluation.photos import DEFAULT_LABELS, load_labels, score

pytestmark = pytest.mark.slow  # the real models on real photos

LABELS = load_labels(DEFAULT_LABELS)
# Per picture: (people covered at least, bodies on nobody at most), by the people finder's head landmarks. Misses
# left: on the steps, a person hidden behind a woman's hair bun (the man in a cap seated in dark clothes beside him
# is found because two detectors agree on him, see test_a_person_two_detectors_agree_on_...); in the stadium, a
# player hidden behind another; on the pitch, a player hidden behind another (frame 60) and one whose dark hair
# meets a dark board (frame 120). The stadium's two players jumping for the ball with their backs turned are
# found by the person detector (NanoDet): 5 of 8 without it.
EXPECTED = {
    "group7_walk.jpg": (7, 0),
    "trio_stage.jpg": (3, 0),  # a giant face on the screen behind them and patterns in the railing: no body
    "street_steps_group.jpg": (11, 0),
    "football_player_a.jpg": (2, 0),
    "soccer_crowd.jpg": (6, 0),
    "football_dribble.mp4#1": (3, 0),
    "football_dribble.mp4#60": (4, 0),
    "football_dribble.mp4#120": (4, 0),
    "football_dribble.mp4#240": (2, 0),
}


@pytest.fixture(scope="module")
def finder():
    from backend.detection.people import PeopleFinder

    return PeopleFinder()


def _head(people, person: int) -> np.ndarray:
    """The head (mean of the head landmarks) of ``person`` (a group id) among ``people``."""
    return people.keypoints[people.group == person][0, :11].mean(axis=0)


def _picture(shared_data: Path, name: str) -> np.ndarray:
    import cv2

    file, _, frame = name.partition("#")
    if frame:
        capture = cv2.VideoCapture(str(shared_data / file))
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, bgr = capture.read()
        capture.release()
        assert ok, name
    else:
        bgr = cv2.imread(str(shared_data / file))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_people_are_found_and_no_body_is_on_nobody(finder, shared_data: Path, name: str) -> None:
    people = finder.find(_picture(shared_data, name))
    heads = people.keypoints[np.unique(people.group, return_index=True)[1], :11].mean(axis=1)
    result = score(LABELS[name], heads)
    covered, ghosts = EXPECTED[name]
    assert result.covered >= covered and result.on_nobody <= ghosts, (result, finder.last_report.dropped)


def test_a_clip_of_identical_frames_finds_in_every_frame_whom_the_photo_shows(finder, shared_data: Path) -> None:
    """The clip path searches as thoroughly as the image path: six copies of a group photo as a clip."""
    from backend.detection.clip import ClipPeopleFinder

    image = _picture(shared_data, "group7_walk.jpg")
    alone = len(np.unique(finder.find(image).group))
    clip = ClipPeopleFinder(finder)
    counts = [len(np.unique(clip.find(image).group)) for _ in range(6)]
    assert alone == 7 and counts == [alone] * 6


def test_a_clip_follows_its_people_from_frame_to_frame(finder, shared_data: Path) -> None:
    """On eight dribble frames everyone found in the first is followed to the last (``origin`` links each person
    to their row in the previous frame). Also the player who passes in front of another in frames 4-6: his own
    region there shows the other's head better than his, and he is read from tighter crops under his last head
    (before: lost for three frames, then found again as someone new). (At frame 8 the white player's readings in
    his followed regions are fragments, refused since ``TRACK_MIN_SIDE`` (the next test); he is found anew there,
    and in a reconstruction the tracker keeps him on one track.)"""
    import cv2

    from backend.detection.clip import ClipPeopleFinder

    capture = cv2.VideoCapture(str(shared_data / "football_dribble.mp4"))
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(8)]
    capture.release()
    clip = ClipPeopleFinder(finder)
    first = clip.find(frames[0])
    identity = np.arange(len(np.unique(first.group)))  # per row of the last frame's people: who in the first
    for frame in frames[1:]:
        people = clip.find(frame)
        origin = people.origin[np.sort(np.unique(people.group, return_index=True)[1])]
        identity = np.array([identity[o] if 0 <= o < len(identity) else -1 for o in origin])
    assert len(np.unique(first.group)) >= 3
    assert sorted(identity[identity >= 0]) == list(range(len(np.unique(first.group)))), identity


def test_a_followed_person_is_not_shrunk_to_a_fragment_from_one_frame_to_the_next(finder, shared_data: Path
                                                                                   ) -> None:
    """Dribble frames 0-10: a person followed into the next frame keeps at least ``TRACK_MIN_SIDE`` of their
    landmark region. Before: a white player's readings shrank from 467 to 281 px at frame 8 and slid onto the
    legs by the ball (a small crouched body there), and white #16, his head leaving the top edge, was followed as
    a 242 px fragment of a 371 px reading; each is found again whole or left unread."""
    import cv2

    from backend.detection.clip import ClipPeopleFinder
    from backend.detection.proposals import TRACK_MIN_SIDE

    capture = cv2.VideoCapture(str(shared_data / "football_dribble.mp4"))
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(11)]
    capture.release()
    clip = ClipPeopleFinder(finder)
    previous = None
    ratios = []
    for frame in frames:
        people = clip.find(frame)
        lead = np.sort(np.unique(people.group, return_index=True)[1])
        if previous is not None:  # against the smaller of the regions they were seen in and their landmarks give
            before = np.minimum(previous.regions[:, 2], previous.seen_regions[:, 2])
            ratios += [people.regions[i, 2] / before[people.origin[i]] for i in lead if people.origin[i] >= 0]
        previous = people.select(lead)
    assert len(ratios) >= 25 and min(ratios) >= TRACK_MIN_SIDE, sorted(ratios)[:3]


def test_a_photo_on_a_large_canvas_finds_whom_the_photo_alone_shows(finder, shared_data: Path) -> None:
    """People are found by their size in pixels, not relative to the picture: the same group in a corner of a
    picture three times as large (a wide shot, a collage) still has everyone found, on the same heads (before
    the face tiles were bounded in pixels: 5 of 7). Known weakness left: one extra body there, a reading of the
    middle man's body at twice his size with its legs on the empty canvas below the photo."""
    image = _picture(shared_data, "group7_walk.jpg")
    height, width = image.shape[:2]
    canvas = np.full((height * 3, width * 3, 3), 40, np.uint8)
    canvas[:height, :width] = image
    people = finder.find(canvas)
    heads = people.keypoints[np.unique(people.group, return_index=True)[1], :11].mean(axis=1)
    result = score(LABELS["group7_walk.jpg"], heads)
    assert result.covered == 7 and result.on_nobody <= 1, (result, finder.last_report.dropped)


def test_only_the_smallest_tiles_are_bounded_and_only_when_larger() -> None:
    from backend.detection.people import bounded_scales

    assert bounded_scales((0.0, 1.0, 0.5, 0.3), 0.2) == (0.0, 1.0, 0.5, 0.2)
    assert bounded_scales((0.0, 1.0, 0.5, 0.3), 0.4) == (0.0, 1.0, 0.5, 0.3)
    assert bounded_scales((0.0,), 0.1) == (0.0,)


def test_a_person_missing_for_a_few_frames_is_looked_for_where_last_seen(finder, shared_data: Path) -> None:
    """A person hidden for a frame (here painted over) is looked for again where they were last seen, and found
    there (``recovered``), not only if a detector happens to propose them again; after ``lost_frames`` frames
    they are no longer looked for."""
    from backend.detection.clip import ClipPeopleFinder

    image = _picture(shared_data, "group7_walk.jpg")
    clip = ClipPeopleFinder(finder, lost_frames=2)
    first = clip.find(image)
    leaders = np.sort(np.unique(first.group, return_index=True)[1])
    x0, y0, x1, y1 = first.boxes[leaders[0]].astype(int)
    hidden = image.copy()
    hidden[max(y0 - 40, 0):y1 + 40, max(x0 - 10, 0):x1 + 10] = 40
    assert len(np.unique(clip.find(hidden).group)) == len(leaders) - 1
    back = clip.find(image)
    assert finder.last_report.recovered == [0] and len(np.unique(back.group)) == len(leaders)
    for _ in range(3):
        clip.find(hidden)
    clip.find(image)
    assert finder.last_report.recovered == []


def test_a_face_at_the_head_of_a_person_box_is_that_persons() -> None:
    """Only a face in the top of a box, near its middle and of a person's face size in it, is boxed."""
    from backend.detection import nanodet, proposals as P

    box = P.Proposals(np.array([[100.0, 200.0, 100.0 * nanodet.REGION_ENLARGE, 0.0]]), np.array([P.PERSON]),
                      np.array([0.6]), np.full((1, 3), np.nan))  # a 100 px person box from y = 150 to 250
    assert P.boxed_face(np.array([100.0, 165.0, 14.0]), box)
    assert not P.boxed_face(np.array([100.0, 230.0, 14.0]), box)  # at the feet
    assert not P.boxed_face(np.array([145.0, 165.0, 14.0]), box)  # beside the box's person
    assert not P.boxed_face(np.array([100.0, 165.0, 60.0]), box)  # a face too large for a whole person there
    assert not P.boxed_face(np.array([100.0, 165.0, 14.0]), P.Proposals.concatenate([]))
    assert not P.boxed_face(np.full(3, np.nan), box)


def test_a_person_two_detectors_agree_on_is_kept_though_the_landmark_model_doubts(shared_data: Path) -> None:
    """The man in a cap and sunglasses seated in dark clothes on the steps: his face is found and a person box has
    it at its head, and the landmark model reads his head and shoulders clearly but scores 'a person here' at
    0.02-0.36. Found only because the two detectors agree (``boxed_presence``)."""
    from backend.detection.people import FinderSettings, PeopleFinder

    image = _picture(shared_data, "street_steps_group.jpg")
    man = np.array([1665.0, 150.0])
    near = {}
    for presence in (0.0, 0.5):
        finder = PeopleFinder(settings=FinderSettings(boxed_presence=presence, second_opinion=""))
        people = finder.find(image)
        heads = people.keypoints[np.unique(people.group, return_index=True)[1], :11].mean(axis=1)
        near[presence] = float(np.linalg.norm(heads - man, axis=1).min())
    face_width = LABELS["street_steps_group.jpg"].face_width
    assert near[0.0] <= face_width < near[0.5], near


def _person(head: tuple[float, float], side: float, origin: int = -1):
    """One synthetic person: every landmark at the head (enough for where to look), a square region around it."""
    from backend.detection.poses import PoseDetections

    region = np.array([[head[0], head[1] + side / 4, side, 0.0]])
    z = np.zeros
    return PoseDetections(np.tile(np.array(head, float), (1, 33, 1)), np.ones((1, 33)), np.ones((1, 33)),
                          z((1, 33, 3)), np.ones(1), z((1, 4)), None, np.zeros(1, np.int64), region,
                          region.copy(), np.array([origin]))


def test_a_moving_person_is_looked_for_where_their_last_step_takes_them() -> None:
    """At a zoom or a run people move tens of pixels a frame: the next frame looks where the last step (and the
    last change of size) takes them, besides where they were; someone standing still is looked for only there."""
    from backend.detection.clip import MAX_STEP, predicted
    from backend.detection.poses import PoseDetections

    older = PoseDetections.concatenate([_person((100, 100), 200), _person((400, 100), 200)])
    now = PoseDetections.concatenate([_person((130, 110), 220, origin=0), _person((401, 100), 200, origin=1)])
    people, rows = predicted(now, older)
    assert rows.tolist() == [0]  # the second barely moved
    np.testing.assert_allclose(people.keypoints[0, 0], [160, 120])
    np.testing.assert_allclose(people.regions[0, :3], [160, 120 + 1.1 * 220 / 4, 1.1 * 220])
    far = PoseDetections.concatenate([_person((500, 100), 220, origin=0)])
    people, _ = predicted(far, older)  # a 400 px jump is a new reading, not a step: at most MAX_STEP of the region
    np.testing.assert_allclose(people.keypoints[0, 0], [500 + MAX_STEP * 220, 100])
    assert predicted(now, None) is None


def test_a_short_gap_is_looked_at_again_between_where_the_person_was_and_is_found(finder, shared_data: Path
                                                                                   ) -> None:
    """Dribble frames 136-151 (a zoom, blur, players falling): searched in chunks as the pipeline does, people
    lost for a few frames and found again are looked for once more in the frames between, in regions between
    the two ends; where read, those frames gain a person, linked to the frame before (``origin``)."""
    import cv2

    from backend.detection.clip import ClipPeopleFinder

    capture = cv2.VideoCapture(str(shared_data / "football_dribble.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 136)
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(16)]
    capture.release()
    clip = ClipPeopleFinder(finder)
    alone = [clip.find(frame) for frame in frames]
    clip.reset()
    chunked = [people for start in (0, 8) for people in clip.find_frames(frames[start : start + 8])]
    count = lambda people: len(np.unique(people.group))  # noqa: E731
    gained = [k for k in range(16) if count(chunked[k]) > count(alone[k])]  # measured: 140, 145, 147 and 148
    assert gained and all(count(chunked[k]) >= count(alone[k]) for k in range(16))
    linked = 0
    for k in gained:  # the people read in a gap come after those found in the frame; each follows the nearest
        for person in range(count(alone[k]), count(chunked[k])):
            origin = int(chunked[k].origin[chunked[k].group == person][0])
            if origin >= 0:
                before = chunked[k - 1]
                distances = [np.linalg.norm(_head(chunked[k], person) - _head(before, p)) for p in range(count(before))]
                assert origin == int(np.argmin(distances)), (k, person, distances)
                linked += 1
    assert linked or not any(k - 1 in gained for k in gained)


def test_a_followed_person_missing_from_their_region_has_the_faces_there_looked_at(finder, shared_data: Path
                                                                                   ) -> None:
    """In a clip frame (a share of the tiles searched), a followed person the landmark model does not find where
    they were has the face detector run on their region (``search_near``), and only theirs: here one of the
    walkers, followed from a place where nobody is, is missing; the faces of the walkers lie in their own tiles."""
    from backend.detection.people import near_tile

    image = _picture(shared_data, "group7_walk.jpg")
    people = finder.find(image)
    leaders = np.sort(np.unique(people.group, return_index=True)[1])
    for region in people.regions[leaders]:
        faces = P.Proposals.concatenate(finder.search_near(image, region[None]))
        x0, y0, side = near_tile(region, image.shape[1], image.shape[0])
        assert len(faces) and (faces.source == P.FACE).all()
        assert ((faces.face[:, :2] >= (x0, y0)) & (faces.face[:, :2] <= (x0 + side, y0 + side))).all()
    followed = people.select(leaders[:2])
    followed.keypoints[1] += (0.0, -image.shape[0])  # the second is looked for above the picture: not found
    followed.regions[1, 1] -= image.shape[0]
    followed.seen_regions[1, 1] -= image.shape[0]
    looked_at = []
    search_near = finder.search_near
    finder.search_near = lambda image, regions: looked_at.append(regions.copy()) or search_near(image, regions)
    try:
        finder.find(image, tracked=followed, frame_slice=(1, 2))
    finally:
        del finder.search_near
    assert len(looked_at) == 1 and np.allclose(looked_at[0], followed.regions[1:])


def test_a_tile_near_a_person_is_their_region_inside_the_picture() -> None:
    from backend.detection.people import near_tile

    assert near_tile(np.array([100.0, 100.0, 80.0, 0.0]), 640, 360) == (60, 60, 80)
    assert near_tile(np.array([10.0, 350.0, 80.0, 0.0]), 640, 360) == (0, 280, 80)  # moved inside
    assert near_tile(np.array([300.0, 200.0, 900.0, 0.0]), 640, 360) == (120, 0, 360)  # at most the shorter side
    assert near_tile(np.array([300.0, 200.0, 10.0, 0.0]), 640, 360)[2] == 64  # at least 64 px


def test_only_a_whole_search_looks_at_person_boxes_at_their_other_scales(finder, shared_data: Path,
                                                                        monkeypatch) -> None:
    """A single picture (or a shot's first frame) tries a person box at three scales; a clip frame's share of the
    search tries its own scale only (the box comes again in the next frames)."""
    asked: list[int | None] = []
    original = P.attempts

    def recording(proposals, members, min_face_px, box_scales=None):
        asked.append(box_scales)
        return original(proposals, members, min_face_px, box_scales)

    monkeypatch.setattr(P, "attempts", recording)
    image = _picture(shared_data, "football_dribble.mp4#60")
    finder.find(image)
    whole, asked[:] = set(asked), []
    finder.find(image, frame_slice=(1, 2))
    assert whole == {None} and set(asked) == {1}


def test_a_person_cut_by_the_top_edge_is_one_person_though_a_fragment_on_them_reads_clearer(finder,
                                                                                            shared_data: Path
                                                                                            ) -> None:
    """The goalkeeper of football_player_a.jpg mirrored, his head out of the picture: a skeleton squeezed onto his
    arm is seen more clearly than his whole body, so it is grouped first; his whole body then leads its group
    (``PeopleFinder._people``) instead of becoming a second person whose head lies on his shoulder."""
    from backend.evaluation.photos import VARIANTS

    image = np.ascontiguousarray(_picture(shared_data, "football_player_a.jpg")[:, ::-1])
    label = VARIANTS["mirror"].label(LABELS["football_player_a.jpg"], image.shape[1])
    people = finder.find(image)
    heads = people.keypoints[np.unique(people.group, return_index=True)[1], :11].mean(axis=1)
    result = score(label, heads)
    assert result.covered == 2 and result.on_nobody == 0, (result, heads)


def test_a_clip_of_pictures_of_mixed_shapes_carries_nobody_over(finder, shared_data: Path) -> None:
    """Without a cut between them (shot detection off), pictures of other shapes in one search: the people and
    places of the last picture are forgotten (their masks and regions belong to another frame size)."""
    from backend.detection.clip import ClipPeopleFinder

    wide = _picture(shared_data, "football_dribble.mp4#60")
    narrow = np.ascontiguousarray(wide[:, 300:900])
    pictures = [wide, narrow, narrow, wide]
    found = ClipPeopleFinder(finder).find_frames(pictures)
    assert [len(people) > 0 for people in found] == [True] * 4
    assert all(people.masks.shape[1:] == picture.shape[:2] for people, picture in zip(found, pictures))
    assert (found[1].origin == -1).all() and (found[3].origin == -1).all()  # nobody followed across a size change


def test_a_faintly_seen_person_gets_the_heavy_models_second_opinion(shared_data: Path, tmp_path: Path) -> None:
    """The steps at 0.6x: the man in a cap seated in dark clothes (his face 13 px) is scored 0.10 by the full
    landmark model in every region tried, and dropped; BlazePose GHUM Heavy, asked about the faint candidates of a
    picture searched whole, reads him. A clip frame's share of the search asks it about no new candidate (speed);
    a clip of the same picture follows him with it, so every frame has him (before: the still only)."""
    import cv2

    from backend.detection.clip import ClipPeopleFinder
    from backend.detection.people import FinderSettings, PeopleFinder
    from backend.evaluation.photos import VARIANTS, write_variant

    variant = VARIANTS["x0.6"]
    image = cv2.cvtColor(cv2.imread(str(write_variant(shared_data / "street_steps_group.jpg", variant, tmp_path))),
                         cv2.COLOR_BGR2RGB)
    man = variant.points(np.array([1665.0, 150.0]), 1920)[0]
    face_width = LABELS["street_steps_group.jpg"].face_width * variant.scale
    near = {}
    for second in ("", "heavy"):
        finder = PeopleFinder(settings=FinderSettings(second_opinion=second))
        heads = finder.find(image).keypoints[:, :11].mean(axis=1)
        near[second] = float(np.linalg.norm(heads - man, axis=1).min())
    assert near["heavy"] <= face_width < near[""], near
    counting = _Counting(finder.second_landmarker)
    finder.second_landmarker = counting
    finder.find(image, frame_slice=(1, 2))
    assert counting.calls == 0
    finder.find(image)
    assert counting.calls > 0
    frames = ClipPeopleFinder(finder).find_frames([image] * 3)
    assert [float(np.linalg.norm(people.keypoints[:, :11].mean(axis=1) - man, axis=1).min()) <= face_width
            for people in frames] == [True] * 3


def test_a_second_opinion_folded_onto_the_chest_is_not_taken(shared_data: Path) -> None:
    """Dribble frame 0: white #16's head is above the frame. The heavy model reads him with his head on his shirt,
    below his shoulders; such a reading is not taken (``max_head_drop``), so no body's head lies on his chest."""
    from backend.detection.people import FinderSettings, PeopleFinder

    image = _picture(shared_data, "football_dribble.mp4#0")
    chest = {}
    for drop in (0.25, 99.0):
        people = PeopleFinder(settings=FinderSettings(max_head_drop=drop)).find(image)
        heads = people.keypoints[:, :11].mean(axis=1)
        chest[drop] = int(((heads[:, 0] > 950) & (heads[:, 0] < 1070) & (heads[:, 1] < 110)).sum())
    assert chest == {0.25: 0, 99.0: 1}, chest


class _Counting:
    """A landmark model that counts its calls."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def with_masks(self, result):
        return self.inner.with_masks(result)


@pytest.fixture
def damaged_heavy_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed models (linked into a ``TROUPE_MODELS_DIR`` copy), the heavy one truncated."""
    from backend.detection import models

    heavy = models.model_path("pose_landmarks_heavy")
    copy = tmp_path / "models"
    others = ("pose_detector", "pose_landmarks_full", "face_detector_full_range", "movenet_multipose", "nanodet")
    for folder in {models.model_path(name).parent for name in others}:
        (copy / folder.name).mkdir(parents=True)
        for path in folder.iterdir():
            (copy / folder.name / path.name).symlink_to(path)
    (copy / heavy.parent.name).mkdir()
    (copy / heavy.parent.name / heavy.name).write_bytes(heavy.read_bytes()[:100_000])
    monkeypatch.setenv("TROUPE_MODELS_DIR", str(copy))


def test_a_damaged_heavy_model_is_left_out_with_a_warning_naming_the_fix(damaged_heavy_model: None) -> None:
    """The finder warns once, names `models install`, and works with the others (a second opinion is optional;
    the run loses nothing)."""
    from backend.detection.people import PeopleFinder

    with pytest.warns(RuntimeWarning, match=r"pose_landmarks_heavy is damaged.*models install.*going on without"):
        finder = PeopleFinder()
    assert finder.second_landmarker is None and finder.body_detector is not None


def test_a_damaged_optional_model_reaches_the_runs_summary_and_the_command_line_once(
        damaged_heavy_model: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The add-on's panel lists the summary's warnings, not the backend's stderr: the warning is there, and the
    command line, which prints the summary, says it once."""
    import cv2

    from backend.app.cli import main
    from backend.pipeline import reconstruct

    empty = tmp_path / "wall.png"
    cv2.imwrite(str(empty), np.full((120, 160, 3), 200, np.uint8))
    summary = reconstruct(empty, tmp_path / "wall.npz")
    damaged = [w for w in summary.warnings if "pose_landmarks_heavy is damaged" in w]
    assert len(damaged) == 1 and "models install" in damaged[0] and summary.people == 0
    assert main(["reconstruct", str(empty), "-o", str(tmp_path / "again.npz")]) == 0
    assert capsys.readouterr().err.count("pose_landmarks_heavy is damaged") == 1
