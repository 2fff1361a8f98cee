"""``mediapipe-fit``: MediaPipe's bundled multi-person pose landmarker, then a batched SMPL fit (the default
estimator; it needs no downloaded or licensed file).

Per chunk of frames:

1. find people (``backend.detection``), keeping up to ``alternatives`` landmark hypotheses per person: on hard
   poses the candidates disagree and the landmark model's scores do not say which hypothesis is right;
2. fit every hypothesis of every person of the chunk in one optimisation (``fitting.optimize``) and keep, per
   person, the one the body model explains best (lowest fit energy: a skeleton squeezed into half a person
   is hard to reproject with human proportions) with a penalty for fragments (see ``_choose``);
3. depth order: where one person's mask occludes another's (``fitting.depth_order``) and the fitted depths
   disagree, refit those people briefly with an ordinal depth term;
4. report each person in the camera frame.

Temporal warm start (inside the estimator, by 2D boxes; ``fitting.warm_start``): successive calls to
:meth:`estimate` are taken to be successive frames of one source. Each detected person is matched to the
previous frame's nearest person; a matched person starts from that person's fitted pose, shape and translation,
and a batch where everybody starts warm gets a short schedule. Within a chunk the links are chained, so a whole
chunk starts from the previous chunk's last solution. ``warm_start`` lets the pipeline pass, per frame, the
previous estimates it wants used instead (matched the same way); :meth:`reset` forgets the state (the pipeline
calls it at shot cuts). In a clip the people finder follows the people it found and keeps searching for new
ones (``backend.detection.clip``).

Initialiser (``initialiser`` option): people without a temporal warm start begin from the fit's own cold start
(``"neutral"``: mean shape, orientation and limbs from MediaPipe's 3D landmarks, depth from limb lengths), from
the LASOR regressor's whole prediction (``"lasor"``, ``backend.lasor.inference.LasorInitialiser``; weights from
``lasor_weights``, default the shipped ones), from the cold start turned and moved to LASOR's global orientation
and pelvis depth (``"lasor-root"``: limbs and shape stay MediaPipe's), or from both the cold start and the
LASOR root start, each person keeping the fit of lower energy (``"neutral+lasor-root"``, the default: the
copies join the person's landmark hypotheses, see ``_choose``). LASOR starts are flagged ``FitInput.init_full``:
they get the full schedule, not the short warm one. ``python -m backend eval --fit-init`` compares them.
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from backend.body.rotations import axis_angle_to_matrix
from backend.detection import PoseDetections, clip_finder
from backend.estimators.base import EstimatorError, FoundPeople, FrameEstimates, PersonEstimate
from backend.fitting import BodyPoints, FitInput, FitOptions, FitResult, fit_people
from backend.fitting.depth_order import occlusion_pairs, violated
from backend.fitting.floor_height import floor_statures
from backend.fitting.mapping import mediapipe_confidence, mediapipe_to_points
from backend.fitting.optimize import temporal_warm
from backend.fitting.plausibility import (
    PlausibilityLimits,
    implausible,
    own_visible_extent,
    standing_heights,
    stature_pixels,
)
from backend.fitting.warm_start import Previous, followed, from_estimates, match, per_person
from backend.geometry.camera import Camera

log = logging.getLogger("troupe.fit")
WarmStart = Sequence[FrameEstimates | None]
# Cost, in fit-energy units, of a hypothesis whose mask covers none of its person's largest mask: fragments
# (a skeleton squeezed onto a torso or a leg) can fit as well as the whole person, but explain less of it.
FRAGMENT_PENALTY = 2.0
INITIALISERS = ("neutral", "lasor", "lasor-root", "neutral+lasor-root")


class MediapipeFitEstimator:
    """Batch of RGB frames in, fitted SMPL people per frame out (see the module docstring).

    Options: ``tile_scales`` (the person and face detectors' pyramids, 0 = whole image), ``people`` (any other
    :class:`backend.detection.people.FinderSettings` field, as a dict), ``alternatives`` (landmark hypotheses
    fitted per person), ``chunk_frames`` (frames fitted in one optimisation), ``match_distance`` (warm-start
    matching: box centre distance over box size), ``depth_order`` (ordinal correction from occlusions),
    ``second_opinion`` (faint candidates read again by the heavy landmark model, see ``FinderSettings``),
    ``initialiser`` (one of ``INITIALISERS``: where people without a temporal warm start begin),
    ``lasor_weights`` (checkpoint for the LASOR initialisers; default the shipped one), and any
    :class:`FitOptions` field (e.g. ``full_steps=60``).
    """

    name = "mediapipe-fit"

    def __init__(
        self,
        body_model: Any,
        device: Any = "cpu",
        *,
        tile_scales: Sequence[float] | None = None,
        people: dict | None = None,
        alternatives: int = 3,
        chunk_frames: int = 8,
        match_distance: float = 0.5,
        depth_order: bool = True,
        second_opinion: bool = True,
        initialiser: str = "neutral+lasor-root",
        lasor_weights: Any = None,
        **fit_options: Any,
    ) -> None:
        known = {f.name for f in fields(FitOptions)}
        unknown = sorted(set(fit_options) - known)
        if unknown:
            raise EstimatorError(f"mediapipe-fit: unknown options {', '.join(unknown)}")
        # The fit's tensors are tiny (a few dozen people x 25 points): the CPU beats any GPU round trip, and
        # MediaPipe runs on the CPU anyway. ``device`` is accepted for the common interface.
        self.device = device
        try:
            self.points = BodyPoints(body_model)
        except ValueError as exc:  # e.g. a body model without the face and foot landmark vertices
            raise EstimatorError(f"mediapipe-fit cannot use this body model: {exc}") from exc
        self.fit_options = FitOptions(**fit_options)
        self.initialiser = make_initialiser(initialiser, body_model, lasor_weights)
        self.start_mode = initialiser
        self.alternatives = max(1, int(alternatives))
        self.chunk_frames = max(1, int(chunk_frames))
        self.match_distance = match_distance
        self.depth_order = depth_order
        people = {"second_opinion": "heavy" if second_opinion else "", **(people or {})}
        try:
            self.finder = clip_finder("cpu" if device in (None, "auto") else device, tile_scales, **people)
        except TypeError as exc:
            raise EstimatorError(f"mediapipe-fit: bad people-finding options: {exc}") from exc
        self._last: Previous | None = None
        self.last_dropped: list[str] = []  # fitted bodies the plausibility gate dropped in the last chunk, and why

    # ------------------------------------------------------------------------------------------- interface

    def find_people(self, frames: Sequence[np.ndarray], new_shot: bool = False) -> FoundPeople:
        """The first stage alone (the pipeline runs it ahead, on another thread): the people finder over
        successive frames of one shot; ``new_shot`` forgets the people it was following."""
        for frame in frames:
            _check_frame(frame)
        if new_shot:
            self.finder.reset()
        return FoundPeople(self.finder.find_frames(list(frames), alternatives=self.alternatives), new_shot)

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera,
                 warm_start: WarmStart | None = None, found: FoundPeople | None = None) -> list[FrameEstimates]:
        """``frames``: RGB uint8 (H, W, 3) in time order. ``warm_start``: optional, per frame, the previous
        estimates to start from (matched to detections by box distance) instead of the estimator's own state.
        ``found``: :meth:`find_people` of these frames (else the people are found here)."""
        if warm_start is not None and len(warm_start) != len(frames):
            raise EstimatorError(f"warm_start has {len(warm_start)} entries for {len(frames)} frames")
        if found is not None and len(found.per_frame) != len(frames):
            raise EstimatorError(f"found people for {len(found.per_frame)} frames, given {len(frames)} frames")
        for frame in frames:
            _check_frame(frame)
        out: list[FrameEstimates] = []
        for start in range(0, len(frames), self.chunk_frames):
            stop = start + self.chunk_frames
            hints = None if warm_start is None else list(warm_start[start:stop])
            part = None if found is None else found.part(start, stop)
            out.extend(self._estimate_chunk(list(frames[start:stop]), camera, hints, part))
        return out

    def reset(self) -> None:
        """Forget the previous frame (call between unrelated images or at a scene cut)."""
        self._last = None
        self.finder.reset()

    def close(self) -> None:
        self._last = None

    # ------------------------------------------------------------------------------------------- steps

    def _estimate_chunk(self, frames: list[np.ndarray], camera: Camera, hints: list[FrameEstimates | None] | None,
                        found: FoundPeople | None) -> list[FrameEstimates]:
        size = (frames[0].shape[1], frames[0].shape[0])
        if found is not None and found.new_shot:
            self._last = None
        last = self._last if self._last is not None and self._last.size == size else None
        if found is None:  # nothing followed yet: a new source, or frames of another size
            found = self.find_people(frames, new_shot=last is None)
        detections = found.per_frame
        inits = self._warm_starts(detections, last, hints, size)
        data, frame_of = _fit_input(detections, inits, self.points.num_betas)
        detections, data, result, frame_of = fit_hypotheses(self.points, detections, data, frame_of, camera,
                                                            self.fit_options, self.initialiser, self.start_mode)
        intrinsics = camera.intrinsics
        if self.depth_order:
            result = self._order_depths(detections, data, result, intrinsics)
        detections, data, result, frame_of = self._plausible(detections, data, result, frame_of, intrinsics)
        estimates = _estimates(detections, frame_of, result, camera, temporal_warm(data))
        self._last = from_estimates(estimates[-1], size)
        return estimates

    def _plausible(self, detections: list[PoseDetections], data: FitInput, result: FitResult, frame_of: np.ndarray,
                   intrinsics: tuple) -> tuple[list[PoseDetections], FitInput, FitResult, np.ndarray]:
        """The fitted bodies that pass ``fitting.plausibility``: a failed one is refitted once and dropped if it
        fails again; the reasons go to ``self.last_dropped`` and the debug log (``reconstruct --debug``). The
        refit starts from the neutral start (a warm or learned start may be what misled the fit), or, for a body
        smaller than its visible silhouette, from the fit moved nearer the camera until it stands as tall as
        that silhouette (depth from the image's size of the person, not from its keypoints)."""
        visible = np.concatenate([np.full(len(d), np.nan) if d.masks is None else own_visible_extent(
            d.masks, d.keypoints, d.visibility, d.group) for d in detections]) if detections else np.zeros(0)
        reasons = self._verdicts(data, result, visible, intrinsics)
        failed = np.flatnonzero([r is not None for r in reasons])
        if len(failed):
            start = _nearer(_cold(_subset(data, failed)), _rows(result, failed), visible[failed],
                            self._stature_px(result, intrinsics)[failed], [reasons[r] for r in failed])
            again = fit_people(self.points, start, intrinsics, self.fit_options)
            result = _replaced(result, failed, again)
            verdicts = self._verdicts(_subset(data, failed), again, visible[failed], intrinsics,
                                      PlausibilityLimits().for_refit())
            for row, reason in zip(failed, verdicts):
                reasons[row] = reason
        keep = np.flatnonzero([r is None for r in reasons])
        self.last_dropped = [f"frame {int(frame_of[r])} person at ({data.keypoints[r, :, 0].mean():.0f}, "
                             f"{data.keypoints[r, :, 1].mean():.0f}): {reasons[r]}" for r in range(len(reasons))
                             if reasons[r] is not None]
        for line in self.last_dropped:
            log.debug("body dropped after fitting, %s", line)
        if len(keep) == len(reasons):
            return detections, data, result, frame_of
        kept = [d.select(rows - offset) for d, rows, offset in _per_frame(detections, keep)]
        return kept, _subset(data, keep), _rows(result, keep), frame_of[keep]

    def _heights(self, result: FitResult) -> np.ndarray:
        with torch.no_grad():
            rest = self.points.rest_joints(torch.as_tensor(result.betas, dtype=torch.float32)).numpy()
        return standing_heights(rest)

    def _stature_px(self, result: FitResult, intrinsics: tuple) -> np.ndarray:
        return stature_pixels(self._heights(result), result.joints, float(intrinsics[0]))

    def _verdicts(self, data: FitInput, result: FitResult, visible: np.ndarray, intrinsics: tuple,
                  limits: PlausibilityLimits | None = None) -> list[str | None]:
        heights = self._heights(result)
        return implausible(result.points2d, data.keypoints, data.confidence, data.size_px, result.joints2d, heights,
                           limits, stature_px=stature_pixels(heights, result.joints, float(intrinsics[0])),
                           visible_px=visible)

    def _warm_starts(self, detections: list[PoseDetections], last: Previous | None,
                     hints: list[FrameEstimates | None] | None, size: tuple[int, int]) -> list[Previous | None]:
        """Per frame, the parameters each detection starts from (NaN translation: cold start): the previous
        frame's fit of the same person when the people finder followed them (``PoseDetections.origin``), else
        of the nearest previous box."""
        inits: list[Previous | None] = []
        source = last
        for t, det in enumerate(detections):
            follow = True
            if hints is not None and hints[t]:
                source, follow = from_estimates(hints[t], size), False  # the caller's order, not the finder's
            if source is None:
                init = None
            elif follow and det.origin is not None:
                init = followed(source, det, self.match_distance)
            else:
                init = match(source, det.boxes, det.group, self.match_distance)
            inits.append(init)
            source = per_person(init, det.group)
        return inits

    def _order_depths(self, detections: list[PoseDetections], data: FitInput, result: FitResult,
                      intrinsics: tuple) -> FitResult:
        """Refit, briefly and with an ordinal term, the people whose depths contradict mask occlusions."""
        pairs, offset = [], 0
        for det in detections:
            if len(det) > 1:
                pairs.append(occlusion_pairs(det.masks, det.keypoints, det.visibility) + offset)
            offset += len(det)
        pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
        bad = pairs[violated(pairs, result.joints[:, 0, 2])]
        if len(bad) == 0:
            return result
        rows = np.unique(bad)
        remap = np.full(len(data), -1)
        remap[rows] = np.arange(len(rows))
        warm = _with_warm_start(_subset(data, rows), _rows(result, rows))
        refit = fit_people(self.points, warm, intrinsics, self.fit_options, remap[bad])
        return replace(_replaced(result, rows, refit), extras={"depth_order_refit": rows})


# ----------------------------------------------------------------------------------------------- helpers


def make_initialiser(name: str, body_model: Any, weights: Any = None) -> Any:
    """``None`` for the fit's own neutral start, else a callable ``(detections, camera) -> (poses, betas, transl)``."""
    if name not in INITIALISERS:
        raise EstimatorError(f"mediapipe-fit: initialiser must be one of {', '.join(INITIALISERS)}, got {name!r}")
    if name == "neutral":
        return None
    from backend.lasor.inference import LasorInitialiser

    try:
        return LasorInitialiser(body_model, weights)
    except (OSError, ValueError) as exc:
        fix = (" (the shipped file is damaged: restore backend/lasor/weights/, or use the neutral start: "
               "--fit-init neutral)") if weights is None else ""
        raise EstimatorError(f"mediapipe-fit cannot load the LASOR initialiser: {exc}{fix}") from exc


def fit_hypotheses(points: BodyPoints, detections: list[PoseDetections], data: FitInput, frame_of: np.ndarray,
                   camera: Camera, options: FitOptions, initialiser: Any = None, start_mode: str = "neutral",
                   ) -> tuple[list[PoseDetections], FitInput, FitResult, np.ndarray]:
    """Fit every row of ``data`` (all hypotheses of a chunk; learned starts added as ``start_mode`` says) and
    keep one per person (``_choose``). Returns the kept rows' detections (per frame), data, result, frames."""
    if initialiser is not None and start_mode == "neutral+lasor-root":
        detections, data, frame_of, copies = _with_cold_copies(detections, data, frame_of)
        data = learned_starts(initialiser, detections, data, camera, root_only=True, rows=copies)
    elif initialiser is not None:
        data = learned_starts(initialiser, detections, data, camera, root_only=start_mode == "lasor-root")
    result = fit_people(points, data, camera.intrinsics, options)
    rows = _choose(detections, result.energy)
    detections = [d.select(r - offset) for d, r, offset in _per_frame(detections, rows)]
    data, result, frame_of = _subset(data, rows), _rows(result, rows), frame_of[rows]
    if points.floor_heights:
        data, result = sized_by_floor(points, data, result, frame_of, camera, options)
    return detections, data, result, frame_of


def sized_by_floor(points: BodyPoints, data: FitInput, result: FitResult, frame_of: np.ndarray, camera: Camera,
                   options: FitOptions) -> tuple[FitInput, FitResult]:
    """The people a common floor sizes (``fitting.floor_height``) refitted warm towards their stature there.

    Each start is first scaled about the camera to that stature (same image, new depth; its betas moved the
    shortest way to the new stature), so the short warm schedule only refines it. ``data`` comes back carrying
    the targets, so later refits (depth order, plausibility) keep them."""
    with torch.no_grad():
        betas = torch.as_tensor(result.betas, dtype=torch.float32)
        statures = points.stature(betas).double().numpy()
        _, fitted = points(axis_angle_to_matrix(torch.as_tensor(result.poses, dtype=torch.float32)), betas)
    target = floor_statures(result.poses, fitted.double().numpy() + result.transl[:, None], statures,
                            data.confidence, frame_of)
    rows = np.flatnonzero(np.isfinite(target))
    if len(rows) == 0:
        return data, result
    data = replace(data, target_height=target)
    scale = target[rows] / statures[rows]
    direction = (points.stature_dirs[0] - points.stature_dirs[1]).double().numpy()  # stature per unit beta
    new_betas = result.betas[rows] + np.outer(target[rows] - statures[rows], direction / direction.dot(direction))
    with torch.no_grad():
        old_root = points.rest_joints(betas[rows])[:, 0].double().numpy()
        new_root = points.rest_joints(torch.as_tensor(new_betas, dtype=torch.float32))[:, 0].double().numpy()
    pelvis = (result.transl[rows] + old_root) * scale[:, None]
    start = replace(_with_warm_start(_subset(data, rows), _rows(result, rows)), init_betas=new_betas,
                    init_transl=pelvis - new_root)
    refit = fit_people(points, start, camera.intrinsics, options)
    return data, _replaced(result, rows, refit)


def _with_cold_copies(detections: list[PoseDetections], data: FitInput, frame_of: np.ndarray
                      ) -> tuple[list[PoseDetections], FitInput, np.ndarray, np.ndarray]:
    """Every row without a temporal warm start once more, as another hypothesis of its person (same group),
    appended to its frame's rows. Returns detections, data, frame_of and the (B',) mask of the copies."""
    cold = ~np.asarray(data.init_valid, bool) if data.init_valid is not None else np.ones(len(data), bool)
    order, copy_mask, out, offset = [], [], [], 0
    for det in detections:
        n = len(det)
        again = np.flatnonzero(cold[offset : offset + n])
        local = np.concatenate([np.arange(n), again]).astype(np.int64)
        out.append(det.select(local))
        order.append(offset + local)
        copy_mask.append(np.arange(len(local)) >= n)
        offset += n
    rows = np.concatenate(order) if order else np.zeros(0, np.int64)
    copies = np.concatenate(copy_mask) if copy_mask else np.zeros(0, bool)
    return out, _subset(data, rows), frame_of[rows], copies


def learned_starts(initialiser: Any, detections: Sequence[PoseDetections], data: FitInput, camera: Camera,
                   root_only: bool = False, rows: np.ndarray | None = None) -> FitInput:
    """``data`` with the rows that have no temporal warm start (or those of the (B,) mask ``rows``) starting from
    ``initialiser``'s prediction, flagged ``init_full`` (full schedule); with ``root_only``, from its global
    orientation and pelvis depth only (``FitInput.init_root_only``). Rows whose prediction is not finite keep
    the neutral start."""
    b = len(data)
    valid = np.zeros(b, bool) if data.init_valid is None else np.asarray(data.init_valid, bool)
    cold = ~valid if rows is None else np.asarray(rows, bool)
    if not cold.any():
        return data
    poses, betas, transl = (np.array(getattr(data, n), dtype=np.float64) for n in ("init_poses", "init_betas",
                                                                                     "init_transl"))
    learned = np.zeros(b, bool)
    row = 0
    for det in detections:
        idx = np.flatnonzero(cold[row : row + len(det)])
        if len(idx):
            p, k, t = initialiser(det.select(idx), camera)
            ok = np.isfinite(p).all(axis=(1, 2)) & np.isfinite(k).all(axis=1) & np.isfinite(t).all(axis=1)
            ok &= t[:, 2] > 0.1
            started = row + idx[ok]
            n = min(betas.shape[1], k.shape[1])
            poses[started], transl[started] = p[ok], t[ok]
            betas[started] = 0.0
            betas[started, :n] = k[ok, :n]
            learned[started] = True
        row += len(det)
    full = learned if data.init_full is None else np.asarray(data.init_full, bool) | learned
    partial = np.zeros(b, bool) if data.init_root_only is None else np.asarray(data.init_root_only, bool)
    partial = partial | learned if root_only else partial & ~learned
    return replace(data, init_poses=poses, init_betas=betas, init_transl=transl, init_valid=valid | learned,
                   init_full=full, init_root_only=partial)


def _check_frame(frame: np.ndarray) -> None:
    if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8):
        shape = getattr(frame, "shape", None)
        raise EstimatorError(f"mediapipe-fit expects RGB uint8 frames of shape (H, W, 3), got {shape}")


def _per_frame(detections: list[PoseDetections], rows: np.ndarray) -> Iterator[tuple[PoseDetections, np.ndarray, int]]:
    """Split global row indices into (detections, rows, offset) per frame."""
    offset = 0
    for det in detections:
        mine = rows[(rows >= offset) & (rows < offset + len(det))]
        yield det, mine, offset
        offset += len(det)


def _choose(detections: list[PoseDetections], energy: np.ndarray) -> np.ndarray:
    """Per frame and person, the row of the best hypothesis: lowest fit energy plus a penalty for covering less
    of the person's silhouette than its largest hypothesis. Sorted global row indices."""
    rows, offset = [], 0
    for det in detections:
        if len(det) == 0:
            continue
        area = det.masks.reshape(len(det), -1).sum(axis=1).astype(np.float64)
        for g in np.unique(det.group):
            members = np.flatnonzero(det.group == g)
            coverage = area[members] / max(area[members].max(), 1.0)
            cost = energy[offset + members] + FRAGMENT_PENALTY * (1.0 - coverage)
            rows.append(int(offset + members[np.argmin(cost)]))
        offset += len(det)
    return np.array(sorted(rows), dtype=np.int64)


def _fit_input(detections: list[PoseDetections], inits: list[Previous | None], num_betas: int
               ) -> tuple[FitInput, np.ndarray]:
    """All hypotheses of the chunk as one FitInput; ``frame_of`` gives each row's frame."""
    frame_of = np.concatenate([np.full(len(d), t) for t, d in enumerate(detections)]).astype(np.int64)
    cat = lambda name: np.concatenate([getattr(d, name) for d in detections])  # noqa: E731
    keypoints, visibility, presence, world, boxes = (cat(n) for n in ("keypoints", "visibility", "presence",
                                                                        "world", "boxes"))
    b = len(frame_of)
    poses, betas, transl = np.zeros((b, 24, 3)), np.zeros((b, num_betas)), np.full((b, 3), np.nan)
    row = 0
    for det, init in zip(detections, inits):
        if init is not None:
            n = min(num_betas, init.betas.shape[1])
            poses[row : row + len(det)] = init.poses
            betas[row : row + len(det), :n] = init.betas[:, :n]
            transl[row : row + len(det)] = init.transl
        row += len(det)
    valid = ~np.isnan(transl[:, 0])
    transl[~valid] = 0.0
    data = FitInput(
        keypoints=mediapipe_to_points(keypoints), confidence=mediapipe_confidence(visibility, presence),
        world=mediapipe_to_points(world), size_px=np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]),
        init_poses=poses, init_betas=betas, init_transl=transl, init_valid=valid,
    )
    return data, frame_of


def _subset(data: FitInput, rows: np.ndarray) -> FitInput:
    return FitInput(*(None if getattr(data, f.name) is None else getattr(data, f.name)[rows] for f in fields(FitInput)))


def _rows(result: FitResult, rows: np.ndarray) -> FitResult:
    return FitResult(**{f.name: getattr(result, f.name)[rows] for f in fields(FitResult) if f.name != "extras"})


def _cold(data: FitInput) -> FitInput:
    """``data`` with every row starting from the fit's own neutral start."""
    return replace(data, init_valid=np.zeros(len(data), bool), init_full=None, init_root_only=None)


def _nearer(cold: FitInput, result: FitResult, visible: np.ndarray, stature_px: np.ndarray,
            reasons: Sequence[str | None]) -> FitInput:
    """``cold`` (the failed rows' neutral starts), except the bodies found smaller than their person: those start
    from their fit moved towards the camera along its ray until its standing height in pixels is the visible
    silhouette's (same pose and shape; the image grows, the depth shrinks)."""
    small = np.array([r is not None and r.startswith("smaller") for r in reasons], bool)
    small &= np.isfinite(visible) & (stature_px > 0)
    if not small.any():
        return cold
    rows = np.flatnonzero(small)
    warm = _with_warm_start(_subset(cold, rows), _rows(result, rows))
    scale = stature_px[rows] / visible[rows]  # < 1: nearer
    pelvis = result.joints[rows, 0]
    transl = warm.init_transl + pelvis * (scale[:, None] - 1.0)
    valid, full = cold.init_valid.copy(), np.zeros(len(cold), bool)
    poses, betas, start = (np.array(getattr(cold, n), dtype=np.float64) for n in ("init_poses", "init_betas",
                                                                                   "init_transl"))
    poses[rows], betas[rows], start[rows] = warm.init_poses, warm.init_betas, transl
    valid[rows], full[rows] = True, True
    return replace(cold, init_poses=poses, init_betas=betas, init_transl=start, init_valid=valid, init_full=full)


def _replaced(result: FitResult, rows: np.ndarray, new: FitResult) -> FitResult:
    out = {f.name: getattr(result, f.name).copy() for f in fields(FitResult) if f.name != "extras"}
    for name in out:
        out[name][rows] = getattr(new, name)
    return FitResult(**out)


def _with_warm_start(data: FitInput, result: FitResult) -> FitInput:
    return FitInput(data.keypoints, data.confidence, data.world, data.size_px, result.poses, result.betas,
                    result.transl, np.ones(len(data), bool), target_height=data.target_height)


def _estimates(detections: list[PoseDetections], frame_of: np.ndarray, result: FitResult, camera: Camera,
               warm: np.ndarray) -> list[FrameEstimates]:
    out: list[FrameEstimates] = [[] for _ in detections]
    counters = [0] * len(detections)
    for row, t in enumerate(frame_of):
        det, i = detections[t], counters[t]
        counters[t] += 1
        out[t].append(PersonEstimate(
            poses=result.poses[row].astype(np.float32),
            betas=result.betas[row].astype(np.float32),
            transl=result.transl[row].astype(np.float32),
            joints2d=camera.project(result.joints[row]).astype(np.float32),
            confidence=float(det.scores[i]),
            bbox=det.boxes[i].astype(np.float32),
            mask=det.masks[i],
            extras={
                "reprojection_px": float(result.reprojection_px[row]),
                "fit_energy": float(result.energy[row]),
                "warm_start": bool(warm[row]),
                "finder_person": int(det.group[i]) if det.group is not None else i,
                "follows": int(det.origin[i]) if det.origin is not None else -1,
                "keypoints2d": det.keypoints[i].astype(np.float32),
                "keypoint_visibility": det.visibility[i].astype(np.float32),
                "keypoint_layout": "mediapipe33",
                "world_landmarks": det.world[i].astype(np.float32),
            },
        ))
    return out
