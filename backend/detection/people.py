"""Finding every person in an image: proposals from several sources, one landmark crop per candidate, merged.

The landmark model (BlazePose full, run in torch on regions we choose) looks at each candidate's region and once
more at the region its own alignment points give (MediaPipe's tracking step), which centres the crop on the
person it found. A result is kept when it shows the candidate (:func:`rejection`):

* the model sees a person there (its score), and clearly: the peaks of its head or shoulder heatmaps. Its score
  and visibilities stay high when it invents a body (a crowd's spectators, a pattern in a railing); its
  heatmaps do not. A face found at the head is evidence enough for a person hidden behind someone;
* the body is not upside down (in real footage that is nearly always a second reading of someone's legs);
* the head lies on the candidate's face: otherwise the crop showed a neighbour, and tighter regions under the
  face are tried (upper body, then head and shoulders), where the neighbours sit at the edges.

Results are then merged per person (same head, same joints, or a fragment lying on another's silhouette),
keeping up to ``alternatives`` per person for the fit to judge. ``last_report`` says what was dropped and why.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backend.detection import blaze, proposals as P, rois
from backend.detection.detectors import TiledDetector
from backend.detection.models import DamagedModelError, ModelsError, model_path
from backend.detection.movenet import MultiPoseDetector
from backend.detection.nanodet import PersonDetector
from backend.detection.pose_landmarks import ROI_ENLARGE, LandmarkResult, PoseLandmarker, regions_from_landmarks
from backend.detection.poses import CORE_LANDMARKS, HEAD_LANDMARKS, PoseDetections, landmark_boxes

SECOND_PASS_MIN_SCORE = 0.2  # a first pass that saw nobody gives no region worth a second look
NEAR_TILE = 1.0  # x a person's region: the tile the face detector looks at for a followed person not found there
log = logging.getLogger("troupe.people")


@dataclass
class FinderSettings:
    pose_tiles: tuple[float, ...] = (0.0, 1.0, 0.6, 0.4)  # 0 = whole image; s = tiles of s x the shorter side
    face_tiles: tuple[float, ...] = (0.0, 1.0, 0.5, 0.3)
    # The smallest face tiles are at most this many pixels wide, so faces as small in pixels are found in a large
    # picture (a wide group shot, a collage, 4K) as in a 720p one: such pictures get more tiles, not coarser ones.
    face_tile_max_px: float = 216.0
    body_tiles: tuple[float, ...] = (0.0, 1.0)  # () = no body detector
    body_input: int = 256
    # NanoDet's person boxes (when installed): people with their backs turned, jumping or seen from far away
    # whom the pose and face detectors miss. Measured: the stadium photo 4 -> 6 of 8 (see the README).
    person_tiles: tuple[float, ...] = (0.0, 1.0)  # () = no person detector
    person_min_score: float = 0.3
    pose_min_score: float = 0.5
    face_min_score: float = 0.5
    presence: float = 0.5  # the landmark model's own 'a person is here' probability
    # A face that is also at the head of a person box (two detectors agree) needs only this landmark score, with
    # clear head or shoulder heatmaps (min_support) and the head on the face: seated, dark-clad, half-hidden people.
    boxed_presence: float = 0.0
    min_support: float = 0.5  # heatmap peak of the head or shoulders (see body_support)
    min_support_with_face: float = 0.35  # ... when a face of at least face_confirms_px is at the head
    face_confirms_px: float = 16.0
    max_turn_deg: float = 135.0  # turned further from upright: dropped as upside down
    # A second opinion whose head is this many torso lengths below the shoulders (along the hips-to-shoulders
    # axis) is a reading folded onto the chest: a player whose head is above the frame, his head put on his shirt.
    # (A first opinion folded so is kept: it leads the fragments read on that person, see _people.)
    max_head_drop: float = 0.25
    head_tolerance: float = 1.0  # the head within this many face widths of the candidate's face
    track_tolerance: float = 2.5  # ... of a tracked person's last head (people and camera move between frames)
    # Hysteresis: a person seen in the previous frame keeps being followed on weaker evidence (a turn, a blur,
    # a moment half hidden) than it takes to start following someone.
    track_presence: float = 0.3
    track_support: float = 0.35
    same_head: float = 0.6  # two results with heads closer than this x head width are one person
    min_size_ratio: float = 0.4  # of a neighbour standing no farther away (see PeopleFinder._too_small)
    min_region_px: float = 24.0
    landmark_model: str = "full"  # "full", or "heavy" (BlazePose GHUM Heavy, when installed)
    # A lone picture searched whole (a still; see ClipPeopleFinder.find_frames): candidates the landmark model
    # above saw only faintly (its score at least second_opinion_score, yet no attempt accepted) are read once more
    # by BlazePose GHUM Heavy, when installed, and judged by the same rules. "" = never.
    second_opinion: str = "heavy"
    second_opinion_score: float = 0.05
    # At most this many candidates per picture, the largest first: in a stadium's stands 60-70 faint spectators
    # would each cost a heavy run (the photo's people-finding time doubled).
    second_opinion_budget: int = 16


@dataclass
class FinderReport:
    """What the finder did with one image (debug output and the evaluation)."""

    proposals: dict[str, int] = field(default_factory=dict)  # per source
    landmark_runs: int = 0
    second_opinions: int = 0  # candidates the second landmark model was asked about
    dropped: list[str] = field(default_factory=list)
    rejected: P.Proposals = field(default_factory=lambda: P.Proposals.concatenate([]))  # where nobody was found
    recovered: list[int] = field(default_factory=list)  # indices of the ``lost`` people found again
    recovered_as: list[int] = field(default_factory=list)  # ... and which of the found people each is


def _optional_model(name: str) -> Path | None:
    """An optional model's file, or None when it is not installed; a damaged one is left out with a warning (the
    finder works without it, less well; ``models install`` replaces it)."""
    try:
        return model_path(name)
    except DamagedModelError as exc:
        warnings.warn(f"{exc}; going on without it", RuntimeWarning, stacklevel=3)
    except ModelsError:
        pass
    return None


class PeopleFinder:
    """``find(image)`` -> :class:`PoseDetections` of every person (see the module docstring)."""

    def __init__(self, device: str | torch.device = "cpu", settings: FinderSettings | None = None) -> None:
        self.settings = s = settings or FinderSettings()
        self.pose_detector = TiledDetector(model_path("pose_detector"), blaze.POSE_DETECTOR, device,
                                           min_score=s.pose_min_score)
        self.face_detector = TiledDetector(model_path("face_detector_full_range"), blaze.FACE_DETECTOR_FULL_RANGE,
                                           device, min_score=s.face_min_score)
        self.landmarker = PoseLandmarker(model_path(f"pose_landmarks_{s.landmark_model}"), device)
        second = s.second_opinion and s.second_opinion != s.landmark_model
        self._second_model = _optional_model(f"pose_landmarks_{s.second_opinion}") if second else None
        self._second_landmarker: PoseLandmarker | None = None
        self._device = device
        body = _optional_model("movenet_multipose") if s.body_tiles else None
        self.body_detector = MultiPoseDetector(body, device, s.body_input) if body else None
        person = _optional_model("nanodet") if s.person_tiles else None
        self.person_detector = PersonDetector(person, device, s.person_min_score) if person else None
        self.last_report = FinderReport()

    @property
    def second_landmarker(self) -> PoseLandmarker | None:
        """The second opinion's landmark model, loaded when first asked (None: none, or not installed)."""
        if self._second_landmarker is None and self._second_model is not None:
            self._second_landmarker = PoseLandmarker(self._second_model, self._device)
        return self._second_landmarker

    @second_landmarker.setter
    def second_landmarker(self, landmarker: PoseLandmarker | None) -> None:
        self._second_landmarker = landmarker

    def find(self, image: np.ndarray, tracked: PoseDetections | None = None, search: bool = True,
             frame_slice: tuple[int, int] | None = None, alternatives: int = 1,
             known_empty: P.Proposals | None = None, lost: PoseDetections | None = None,
             moved: tuple[PoseDetections, np.ndarray] | None = None, second_opinion: bool = True) -> PoseDetections:
        """People in one RGB uint8 image. ``tracked``: the people of a clip's previous frame, looked for first;
        ``lost``: people missing from the last frames, looked for where they were last seen (one found is in
        ``last_report.recovered``; its ``origin`` is -1, it was not in the previous frame); ``moved``: some of
        the tracked people where their motion puts them now, and their rows in ``tracked`` (looked at there when
        not found where they were); ``search``: also
        look for people anywhere, over the tile pyramids (``frame_slice``: only a clip frame's share of them,
        see :meth:`search`). ``known_empty``: places where a recent frame found nobody
        (``last_report.rejected``); detections there are not looked at again. ``second_opinion``: a picture
        searched whole has its faint candidates read again (``FinderSettings.second_opinion``), and a tracked person
        the second model read (``tracked.second``) is read by it again when the finder's own model does not."""
        self.last_report = report = FinderReport()
        height, width = image.shape[:2]
        n_tracked = 0 if tracked is None else len(tracked)
        known = P.Proposals.concatenate(([P.from_tracked(tracked)] if tracked is not None else [])
                                        + ([P.from_tracked(*moved)] if moved is not None else [])
                                        + ([P.from_lost(lost, n_tracked)] if lost is not None else []))
        fresh = self.search(image, frame_slice) if search else []
        followed_second = (set(np.flatnonzero(tracked.second).tolist()) if second_opinion and tracked is not None
                           and tracked.second is not None else set())
        # tracked people first: they explain most
        results, origin, by_second = self._landmarks(image, known, report, second=followed_second)
        if search and n_tracked and tracked.regions is not None:  # followed people not found: faces there
            fresh += self.search_near(image, tracked.regions[np.setdiff1d(np.arange(n_tracked), origin)])
        fresh = P.Proposals.concatenate(fresh)
        if known_empty is not None and len(known_empty):
            fresh = fresh.select([i for i in range(len(fresh)) if not P.coincides(fresh, i, known_empty)])
        for code, name in enumerate(P.SOURCE_NAMES):
            report.proposals[name] = int(((known.source == code).sum() + (fresh.source == code).sum()))
        fresh = fresh.select([i for i in range(len(fresh)) if not explained(fresh, i, results)])
        # a clip frame's share of the search looks at each new person box at its own scale only: the box comes
        # again in the next frames, and the other scales were nearly two thirds of the looks at boxes, mostly at
        # spectators hidden behind seats (on the dribble clip: 673 failed looks against 36 people found)
        whole = frame_slice is None
        more, more_origin, more_second = self._landmarks(image, fresh, report, box_scales=None if whole else 1,
                                                         second=whole and second_opinion)
        results = LandmarkResult.concatenate([results, more])
        origin = np.concatenate([origin, more_origin])
        by_second = np.concatenate([by_second, more_second])
        groups = self._people(results, origin, n_tracked)
        groups = [g for g in groups if not self._too_small(results, g, groups, report)]
        for reason in report.dropped:
            log.debug("not a person: %s", reason)
        person_origin = np.array([_person_origin(origin[g], n_tracked) for g in groups], np.int64)
        report.recovered = [int(o) - n_tracked for o in person_origin if o >= n_tracked]
        report.recovered_as = [g for g, o in enumerate(person_origin) if o >= n_tracked]
        person_origin[person_origin >= n_tracked] = -1
        return _to_detections(results, person_origin, by_second, groups, alternatives, height, width)

    def search(self, image: np.ndarray, frame_slice: tuple[int, int] | None = None) -> list[P.Proposals]:
        """Proposals of the detectors (pose, face; body and person where installed) over their tile pyramids: every
        tile, or, for frame ``i`` of a clip
        (``frame_slice`` = (i, k)), one detector's whole image plus the i-th group of k smaller tiles
        (:func:`rotation_slice`)."""
        height, width = image.shape[:2]
        s = self.settings
        scales = {"pose": s.pose_tiles, "face": bounded_scales(s.face_tiles, s.face_tile_max_px / min(width, height)),
                  "body": s.body_tiles, "person": s.person_tiles}
        plan = {name: rois.square_tiles(width, height, scales[name]) for name in self._detectors()}
        if frame_slice is not None:
            plan = rotation_slice(plan, *frame_slice)
        return self._detect(image, plan)

    def search_near(self, image: np.ndarray, regions: np.ndarray) -> list[P.Proposals]:
        """Face proposals in one tile on each person region (N, 4). A clip frame's own search covers a share of
        the pyramid's tiles; where a followed person was not found, the faces there are looked at once more. On
        the dribble clip's frames 100-163 that found them or the people beside them in 5 % more person-frames
        (337 against 320); the other detectors on the same tile added 1 more."""
        height, width = image.shape[:2]
        tiles = [near_tile(region, width, height) for region in np.asarray(regions, np.float64).reshape(-1, 4)]
        return self._detect(image, {"face": tiles}) if tiles else []

    def _detectors(self) -> dict[str, TiledDetector | MultiPoseDetector | PersonDetector]:
        """The detectors in use, by name."""
        found = {"pose": self.pose_detector, "face": self.face_detector, "body": self.body_detector,
                 "person": self.person_detector}
        return {name: detector for name, detector in found.items() if detector is not None}

    def _detect(self, image: np.ndarray, plan: dict[str, list[tuple[int, int, int]]]) -> list[P.Proposals]:
        """Proposals of each detector named in ``plan`` over its tiles there (no tiles: no detections)."""
        detectors = self._detectors()
        found = {name: detectors[name](image, tiles) for name, tiles in plan.items() if name in detectors}
        convert = {"face": P.from_face_detector, "body": P.from_body_detector, "person": P.from_person_detector}
        out = []
        if "pose" in found:
            pose = found.pop("pose")
            regions = rois.from_alignment(pose.keypoints[:, 0], pose.keypoints[:, 1], ROI_ENLARGE)
            out.append(P.from_pose_detector(pose, regions))
        return out + [convert[name](detections) for name, detections in found.items()]

    # ------------------------------------------------------------------------------------------ landmarks

    def _landmarks(self, image: np.ndarray, proposals: P.Proposals, report: FinderReport,
                   box_scales: int | None = None, second: bool | set[int] = False
                   ) -> tuple[LandmarkResult, np.ndarray, np.ndarray]:
        """At most one result per candidate, its index in the previous frame (-1: not tracked), and whether the
        second opinion's model read it. Each
        candidate's attempts (:func:`proposals.attempts`) are tried in
        rounds, all candidates of a round in one batch, until one is accepted. Tighter face regions are tried
        only after the landmarks found a neighbour or nobody, not after a body the model only guessed at. A
        reading only two detectors' agreement admits (``Attempt.boxed``) is kept when no attempt gives a better.
        ``second``: a candidate seen only faintly gets a second opinion (``FinderSettings.second_opinion``); a set:
        only one following those people of the previous frame."""
        s = self.settings
        groups = P.candidates(proposals, s.min_region_px)
        queues = [P.attempts(proposals, members, s.face_confirms_px, box_scales) for members in groups]
        found: list[LandmarkResult] = []
        origin: list[int] = []
        by_second: list[bool] = []
        failure = [""] * len(queues)
        may_tighten = [False] * len(queues)
        done = [False] * len(queues)
        fallback: dict[int, tuple[LandmarkResult, int]] = {}
        faint: dict[int, tuple[float, int]] = {}  # per candidate not accepted: its best score, and that attempt
        for step in range(max((len(q) for q in queues), default=0)):
            live = [q for q in range(len(queues)) if not done[q] and step < len(queues[q])
                    and (may_tighten[q] or not queues[q][step].tight)]
            if not live:
                break
            outcomes = self._look(image, [queues[q][step] for q in live], report)
            for q, (result, reason, doubted, score) in zip(live, outcomes):
                if result is not None:
                    found.append(result)
                    origin.append(queues[q][step].origin)
                    by_second.append(False)
                    done[q] = True
                else:
                    failure[q] = reason
                    may_tighten[q] = may_tighten[q] or not reason.startswith("too little")
                    if doubted is not None:
                        fallback.setdefault(q, (doubted, queues[q][step].origin))
                    faint[q] = max(faint.get(q, (-1.0, 0)), (score, step))
        if second and self._second_model is not None:
            faint = {q: v for q, v in faint.items() if not done[q] and q not in fallback
                     and v[0] >= s.second_opinion_score and (second is True or queues[q][v[1]].origin in second)}
            largest = sorted(faint, key=lambda q: -queues[q][faint[q][1]].region[2])[:s.second_opinion_budget]
            retry = {q: (queues[q][faint[q][1]], faint[q][0]) for q in largest}
            for q, result in self._second_opinion(image, retry, report).items():
                found.append(result)
                origin.append(retry[q][0].origin)
                by_second.append(True)
                done[q] = True
        for q, (result, person) in fallback.items():
            if not done[q]:
                found.append(result)
                origin.append(person)
                by_second.append(False)
                done[q] = True
        report.dropped.extend(f for f, d in zip(failure, done) if f and not d)
        report.rejected = P.Proposals.concatenate([report.rejected, proposals.select(
            [g[0] for g, d in zip(groups, done) if not d and proposals.source[g[0]] not in P.FOLLOWED])])
        if not found:
            return self.landmarker(image, np.zeros((0, 4))), np.zeros(0, np.int64), np.zeros(0, bool)
        return self._with_masks(found), np.array(origin, np.int64), np.array(by_second, bool)

    def _second_opinion(self, image: np.ndarray, retry: dict[int, tuple[P.Attempt, float]], report: FinderReport
                        ) -> dict[int, LandmarkResult]:
        """The second landmark model's accepted readings (masks read) of the candidates ``retry`` (candidate ->
        the attempt the finder's own model scored best, and that score), judged by the same rules, and not folded
        onto the chest (``FinderSettings.max_head_drop``)."""
        if not retry:
            return {}
        outcomes = self._look(image, [attempt for attempt, _ in retry.values()], report, self.second_landmarker)
        accepted = {}
        for q, (result, _, _, _) in zip(retry, outcomes):
            if result is not None and head_drop(result, 0) <= self.settings.max_head_drop:
                accepted[q] = self.second_landmarker.with_masks(result)
                log.debug("a second opinion found a person at (%.0f, %.0f) (score %.2f, the first model's %.2f)",
                          *head_point(result, 0), result.score[0], retry[q][1])
        report.second_opinions += len(retry)
        return accepted

    def _with_masks(self, found: list[LandmarkResult]) -> LandmarkResult:
        """``found`` in one result with every mask read: those of the main model in one batch."""
        pending = [k for k, r in enumerate(found) if r.masks is None]
        if not pending:
            return LandmarkResult.concatenate(found)
        read = self.landmarker.with_masks(LandmarkResult.concatenate([found[k] for k in pending]))
        parts = list(found)
        for row, k in enumerate(pending):
            parts[k] = read.select([row])
        return LandmarkResult.concatenate(parts)

    def _look(self, image: np.ndarray, tries: list[P.Attempt], report: FinderReport,
              landmarker: PoseLandmarker | None = None
              ) -> list[tuple[LandmarkResult | None, str, LandmarkResult | None, float]]:
        """Per attempt: the better accepted pass, or None and why neither was accepted, then the better pass
        accepted on two detectors' word (``Attempt.boxed``), if any, and the first pass's score.
        ``landmarker``: another landmark model than the finder's own."""
        landmarker = landmarker or self.landmarker
        regions = np.stack([t.region for t in tries])
        first = landmarker(image, regions, masks=False)  # masks only for the results kept
        again = np.flatnonzero((first.score >= SECOND_PASS_MIN_SCORE) & np.array([t.passes > 1 for t in tries]))
        second = landmarker(image, regions_from_landmarks(first.select(again)), masks=False)
        report.landmark_runs += len(regions) + len(again)
        slot = {int(i): k for k, i in enumerate(again)}
        out = []
        for i, attempt in enumerate(tries):
            passes = ([second.select([slot[i]])] if i in slot else []) + [first.select([i])]
            verdicts = {boxed: [rejection(r, attempt.face, self.settings, tracked=attempt.tracked, boxed=boxed)
                                or fragment_of(r, attempt.min_side) for r in passes]
                        for boxed in {False, attempt.boxed}}
            accepted, doubted = ([r for r, reason in zip(passes, verdicts[boxed]) if reason is None]
                                 for boxed in (False, attempt.boxed))
            best = lambda results: max(results, key=lambda r: float(r.score[0])) if results else None  # noqa: E731
            reason = "" if accepted else (f"{verdicts[False][0]} (region at {regions[i, 0]:.0f}, "
                                          f"{regions[i, 1]:.0f})")
            out.append((best(accepted), reason, None if accepted else best(doubted), float(first.score[i])))
        return out

    def _too_small(self, results: LandmarkResult, group: list[int], groups: list[list[int]],
                   report: FinderReport) -> bool:
        """On a common floor nearer people look bigger: a body whose feet are as low in the image as a clearly
        seen neighbour's (so it stands at least as near) but which is less than ``min_size_ratio`` of that
        neighbour's size is no person (a pattern in a railing; a small child is about half an adult's height)."""
        s = self.settings
        i = group[0]
        feet_i = _feet_row(results, i)
        if feet_i is None:
            return False
        for other in groups:
            k = other[0]
            clear = body_support(results, k) >= 0.7
            if k == i or not clear or results.regions[i, 2] >= s.min_size_ratio * results.regions[k, 2]:
                continue
            feet_k = _feet_row(results, k)
            if feet_k is not None and feet_i >= feet_k - 0.1 * results.regions[k, 2]:
                report.dropped.append(f"body at ({head_point(results, i)[0]:.0f}, {head_point(results, i)[1]:.0f}): "
                                      f"{results.regions[i, 2] / results.regions[k, 2]:.0%} the size of a neighbour "
                                      "standing no farther away")
                return True
        return False

    def _people(self, results: LandmarkResult, origin: np.ndarray, n_tracked: int) -> list[list[int]]:
        """Results grouped per person, best first: a tracked person's reading (it kept to their head; people of
        the previous frame before lost ones), then the most clearly seen (:func:`body_support`), so that a body
        comes before the fragments that lie on it. A fresh region around several people can give a clearer
        reading that mixes them."""
        support = np.array([body_support(results, i) for i in range(len(results))])
        groups: list[list[int]] = []
        for i in (int(i) for i in np.lexsort((-support, origin >= n_tracked, origin < 0))):
            owner = next((g for g in groups if same_person(results, i, g[0], self.settings.same_head)), None)
            if owner is not None:
                owner.append(i)
                continue
            # The whole body of a fragment read before it leads the fragment's group: a person whose head is out
            # of the picture is seen less clearly than a skeleton squeezed onto their arm.
            whole_of = next((g for g in groups if is_fragment(results, g[0], i)), None)
            if whole_of is not None:
                whole_of.insert(0, i)
            else:
                groups.append([i])
        return groups


def bounded_scales(scales: tuple[float, ...], largest_smallest: float) -> tuple[float, ...]:
    """``scales`` with the smallest tile scale (0, the whole image, aside) at most ``largest_smallest``."""
    tiles = [x for x in scales if x > 0]
    if not tiles or min(tiles) <= largest_smallest:
        return tuple(scales)
    smallest = min(tiles)
    return tuple(largest_smallest if x == smallest else x for x in scales)


def near_tile(region: np.ndarray, width: int, height: int) -> tuple[int, int, int]:
    """A square tile (x0, y0, side) of the image on a person region (cx, cy, side, rotation): NEAR_TILE x its side,
    inside the image where it fits."""
    side = int(round(min(max(NEAR_TILE * region[2], 64.0), width, height)))
    x0 = int(round(np.clip(region[0] - side / 2, 0, width - side)))
    y0 = int(round(np.clip(region[1] - side / 2, 0, height - side)))
    return x0, y0, side


def rotation_slice(plan: dict[str, list[tuple[int, int, int]]], frame: int, per_frame: int
                   ) -> dict[str, list[tuple[int, int, int]]]:
    """Frame ``frame``'s share of a tile plan (detector -> tiles): one detector's whole image (side 0), the
    detectors taking turns, plus ``per_frame`` of the smaller tiles, taken in turn from all detectors' tiles, so
    that successive frames search every tile once per rotation."""
    names = list(plan)
    whole_by = names[frame % len(names)] if names else None
    small = [(name, tile) for name, tiles in plan.items() for tile in tiles if tile[2] != 0]
    start = (frame * per_frame) % max(len(small), 1)
    chosen = {small[(start + j) % len(small)] for j in range(min(per_frame, len(small)))}
    return {name: [t for t in tiles if (t[2] == 0 and name == whole_by) or (name, t) in chosen]
            for name, tiles in plan.items()}


# ---------------------------------------------------------------------------------------------- judging results


def head_point(result: LandmarkResult, i: int) -> np.ndarray:
    """Centre of the head landmarks (nose, eyes, ears, mouth) of result i."""
    return result.keypoints[i, list(HEAD_LANDMARKS)].mean(axis=0)


def head_width(result: LandmarkResult, i: int) -> float:
    """Ear-to-ear distance, or a twelfth of the body's size when the ears coincide (profile view)."""
    ears = float(np.linalg.norm(result.keypoints[i, 7] - result.keypoints[i, 8]))
    return max(ears, result.regions[i, 2] / ROI_ENLARGE / 12.0)


def body_support(result: LandmarkResult, i: int) -> float:
    """How clearly result i's head or shoulders are seen: the larger of their mean heatmap peaks."""
    head = float(result.evidence[i, list(HEAD_LANDMARKS)].mean())
    shoulders = float(result.evidence[i, [11, 12]].mean())
    return max(head, shoulders)


def rejection(result: LandmarkResult, face: np.ndarray, s: FinderSettings, tracked: bool = False,
              boxed: bool = False) -> str | None:
    """Why a one-row landmark result does not show the candidate whose head should be at ``face`` (centre x, y,
    width; NaN: unknown; ``tracked``: the person's head in the previous frame; ``boxed``: the face is also at the
    head of a detected person's box), or None when it does."""
    confirmed = bool(np.isfinite(face).all() and face[2] >= s.face_confirms_px
                     and 0.5 <= head_width(result, 0) / face[2] <= 2.0)  # a face the size of this head
    doubted = result.score[0] < s.presence and not tracked  # accepted only on two detectors' word, clearly seen
    if result.score[0] < (s.track_presence if tracked else s.boxed_presence if boxed and confirmed else s.presence):
        return f"no person in the region (landmark model score {result.score[0]:.2f})"
    support = body_support(result, 0)
    needed = s.track_support if tracked else s.min_support
    if support < needed and (doubted or not (confirmed and support >= s.min_support_with_face)):
        return f"too little of a person in view (heatmap support {support:.2f})"
    turn = abs(float(np.degrees(regions_from_landmarks(result)[0, 3])))
    if turn > s.max_turn_deg:
        return f"upside down (head {turn:.0f} degrees from up): a reading of someone's legs"
    if np.isfinite(face).all():
        miss = float(np.linalg.norm(head_point(result, 0) - face[:2])) / max(face[2], 1.0)
        if miss > (s.track_tolerance if tracked else s.head_tolerance):
            return f"the landmarks found a neighbour (head {miss:.1f} face widths from the face)"
    return None


def head_drop(result: LandmarkResult, i: int) -> float:
    """How far result i's head lies below its shoulders, along its hips-to-shoulders axis, in torso lengths
    (negative: above them, as in every upright or bent reading)."""
    shoulders = result.keypoints[i, [11, 12]].mean(axis=0)
    up = shoulders - result.keypoints[i, [23, 24]].mean(axis=0)
    torso = float(np.linalg.norm(up))
    if torso < 1e-6:
        return 0.0
    return float(np.dot(shoulders - head_point(result, i), up)) / torso**2


def fragment_of(result: LandmarkResult, min_side: float) -> str | None:
    """Why a one-row result is only part of the person looked for, boxed or tracked (None: it is not)."""
    side = float(regions_from_landmarks(result)[0, 2])
    if side < min_side:
        return f"a fragment of the person looked for (landmark region {side:.0f} px, under {min_side:.0f} px)"
    return None


def _feet_row(results: LandmarkResult, i: int) -> float | None:
    """Image row of result i's lowest seen ankle or heel (None: its feet are not seen)."""
    feet = [27, 28, 29, 30]
    seen = results.visibility[i, feet] > 0.5
    return float(results.keypoints[i, feet][seen, 1].max()) if seen.any() else None


def same_person(results: LandmarkResult, i: int, k: int, same_head: float) -> bool:
    """Whether result i shows result k's person: heads at the same place, most body joints at the same places
    (also with left and right swapped), or i is a fragment of k (:func:`is_fragment`)."""
    width = max(head_width(results, i), head_width(results, k))
    if np.linalg.norm(head_point(results, i) - head_point(results, k)) < same_head * width:
        return True
    if is_fragment(results, i, k):
        return True
    core = list(CORE_LANDMARKS)
    swapped = [c + 1 if c % 2 else c - 1 for c in core]  # MediaPipe: odd = left, even = right
    size = max(np.ptp(results.keypoints[i, core], axis=0).max(), np.ptp(results.keypoints[k, core], axis=0).max())
    for other in (core, swapped):
        near = np.linalg.norm(results.keypoints[i, core] - results.keypoints[k, other], axis=-1) < 0.15 * max(size, 1)
        if near.mean() >= 0.5:
            return True
    return False


def explained(proposals: P.Proposals, i: int, results: LandmarkResult) -> bool:
    """Whether proposal i shows a person already found: its face at a found head, or (without a face) its region
    centred on a found person's silhouette at a similar size."""
    face = proposals.face[i]
    for k in range(len(results)):
        if np.isfinite(face).all():
            if np.linalg.norm(face[:2] - head_point(results, k)) < head_width(results, k):
                return True
        else:
            ratio = proposals.regions[i, 2] / results.regions[k, 2]
            if 0.67 < ratio < 1.5 and results.mask_contains(k, proposals.regions[i : i + 1, :2])[0]:
                return True
    return False


def is_fragment(results: LandmarkResult, i: int, k: int) -> bool:
    """A skeleton squeezed onto part of k's body: i's whole head (its centre and four points half a head width
    around it) and at least 70 % of its visible joints lie on k's mask; or i is the smaller and 85 % of all its
    visible points lie there. A person partly hidden by k shows their own head and limbs, off k's silhouette."""
    visible = results.visibility[i] > 0.5
    on_k = results.mask_contains(k, results.keypoints[i][visible]) if visible.any() else np.zeros(0, bool)
    if visible.sum() >= 4 and results.regions[i, 2] < results.regions[k, 2] and on_k.mean() >= 0.85:
        return True
    ring = 0.5 * head_width(results, i) * np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])
    if not results.mask_contains(k, head_point(results, i)[None] + ring).all():
        return False
    body = visible.copy()
    body[list(HEAD_LANDMARKS)] = False
    if body.sum() < 3:
        return True
    return bool(results.mask_contains(k, results.keypoints[i][body]).mean() >= 0.7)


def _person_origin(origins: np.ndarray, n_tracked: int) -> int:
    """A person's index among the followed people (-1: none): a person of the previous frame before a lost one
    (a lost person read on someone who is followed is that someone)."""
    previous = origins[(origins >= 0) & (origins < n_tracked)]
    return int(previous[0]) if len(previous) else int(origins.max())


def _to_detections(results: LandmarkResult, origin: np.ndarray, by_second: np.ndarray, groups: list[list[int]],
                   alternatives: int, height: int, width: int) -> PoseDetections:
    """Up to ``alternatives`` results per person; ``origin``: per person (group); ``by_second``: per result."""
    rows = [i for members in groups for i in members[: max(1, alternatives)]]
    group = [g for g, members in enumerate(groups) for _ in members[: max(1, alternatives)]]
    if not rows:
        return PoseDetections.empty(height, width)
    kept = results.select(rows)
    masks = np.stack([kept.mask_in_image(i, height, width) for i in range(len(kept))])
    return PoseDetections(
        keypoints=kept.keypoints, visibility=kept.visibility, presence=kept.presence, world=kept.world,
        scores=kept.score, boxes=landmark_boxes(kept.keypoints, kept.visibility), masks=masks,
        group=np.array(group, np.int64), regions=regions_from_landmarks(kept), seen_regions=kept.regions,
        origin=np.array([origin[g] for g, members in enumerate(groups) for _ in members[: max(1, alternatives)]],
                        np.int64),
        second=by_second[rows],
    )
