"""The camera's rotation and zoom from frame to frame, measured on the background.

A camera that turns and zooms about its centre maps the pixels of one frame onto another by the homography
H = K_b R K_a^-1 (K: focal length and principal point), whatever the depth of what it sees. Corners are found on a
keyframe (``cv2.goodFeaturesToTrack``) away from the people (their boxes, widened), followed frame to frame with
pyramidal Lucas-Kanade checked forward and backward (``cv2.calcOpticalFlowPyrLK``), and dropped when a person walks
over them. Where people cover most of the view (a crowd, a stand, a group filling the frame) the few corners left
lie in slivers that pin the rotation poorly (a shot of group7_walk.jpg panned: 44 corners on 8 % of the view, 2.4
degrees off), so corners on the people are added up to ``min_free_corners``: people standing still are background to
the camera, and RANSAC tells those who move apart. Each frame is measured against its keyframe, not against the
frame before, so errors do not add up frame after frame; a frame becomes the next keyframe when too few of the
keyframe's tracks survive. When a new keyframe looks again at what an earlier keyframe of the shot saw (a pan that
comes back), it is measured against that one directly as well (a loop closure): the chain's drift since then is
removed there, and :class:`backend.world.segments.CameraPathBuilder` ramps the frames before it into the correction.
RANSAC (``cv2.findHomography``) separates the background from what moves on it; the
rotation and the focal ratio are then fitted to its inliers by least squares (Levenberg-Marquardt, 4 parameters,
closed-form Jacobian). The inliers of each keyframe's last measured frame are kept (:class:`KeyPair`):
``backend.world.focal`` recovers the absolute focal length from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class MotionSettings:
    track_width: int = 640  # frames are tracked at this width at most (rotation does not need more pixels)
    max_corners: int = 300
    corner_quality: float = 0.01
    corner_spacing: int = 10  # pixels between corners, at the tracking width
    min_tracks: int = 40  # fewer surviving tracks than this: the frame becomes the next keyframe
    keep_fraction: float = 0.5  # ... or fewer than this fraction of the keyframe's corners
    fb_error_px: float = 1.0  # forward-backward Lucas-Kanade disagreement that drops a track
    ransac_px: float = 1.0  # RANSAC inlier distance at the tracking width
    min_inliers: int = 12  # fewer background inliers: no estimate for this frame (the last one is kept)
    person_margin: float = 0.15  # people's boxes widened by this fraction of their size before masking
    min_free_corners: int = 100  # fewer corners off the people (a crowd fills the view): more taken on them
    max_pairs: int = 128  # keyframe pairs kept for the focal length (the clip's first ones; ~5 KB each)
    pair_points: int = 120  # inliers kept per pair at most (evenly drawn)
    loop_anchors: int = 32  # earlier keyframes per shot kept to close loops on (~0.2 MB each at the tracking width;
    #                         0: no loop closure)
    loop_min_frames: int = 30  # a keyframe closes a loop only on one at least this many frames older
    loop_overlap: float = 0.3  # ... whose view its own is predicted to be shifted from by less than this * width
    loop_max_correction_deg: float = 1.0  # a closure that would turn the chain by more is taken for a mismatch
    loop_tries: int = 1  # keyframes measured against at most this many older ones (a fast pan makes a keyframe a
    #                      frame, each overlapping many older ones)


@dataclass(frozen=True)
class KeyPair:
    """A keyframe's inliers and where they are in the last frame measured against it (the widest baseline of
    that keyframe), in pixels at the tracking width relative to the principal point; ``segment``: the shot."""

    key: np.ndarray  # (n, 2)
    frame: np.ndarray  # (n, 2)
    segment: int


@dataclass(frozen=True)
class FrameMotion:
    """One frame's camera relative to its segment's first frame."""

    rotation: np.ndarray  # (3, 3): segment reference camera coordinates -> this frame's camera coordinates
    zoom: float  # this frame's focal length / the segment's first frame's
    inliers: int  # background correspondences behind the estimate (0: none, the previous frame's kept)
    new_segment: bool  # the frame starts a segment (the first frame, or a shot cut)
    shift_px: float  # how far the image content moved from the segment's start, in pixels at the tracking width
    loop_frames: int = 0  # > 0: a loop closed on the keyframe this many frames back; ``rotation`` and ``zoom``
    #                       are the closed ones, and the frames in between get a share of the correction
    loop_correction: np.ndarray | None = None  # (3, 3): closed rotation @ chained rotation^T
    loop_zoom: float = 1.0  # closed zoom / chained zoom


@dataclass(frozen=True)
class _Anchor:
    """A keyframe kept to close loops on: its image and corners off the people, and its camera."""

    gray: np.ndarray
    corners: np.ndarray  # (n, 2) float32, tracking pixels
    rotation: np.ndarray
    zoom: float
    frame: int


def person_boxes(people: Sequence) -> list[np.ndarray]:
    """(x0, y0, x1, y1) of each person estimate: its box, or the extent of its 2D joints when it has none."""
    boxes = []
    for person in people:
        box = getattr(person, "bbox", None)
        if box is None:
            joints = np.asarray(person.joints2d, np.float64)
            box = np.concatenate([joints.min(0), joints.max(0)])
        boxes.append(np.asarray(box, np.float64))
    return boxes


class RotationTracker:
    """Feed the frames of a clip in order to :meth:`update`; each call returns that frame's :class:`FrameMotion`.

    ``focal`` and ``principal`` are the camera of the frames as given (pixels): the zoom is relative to it."""

    def __init__(self, width: int, height: int, focal: float, principal: tuple[float, float],
                 settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self._scale = min(1.0, self.settings.track_width / max(width, 1))
        self._size = (max(1, round(width * self._scale)), max(1, round(height * self._scale)))
        self._focal = focal * self._scale
        self._principal = np.array(principal, np.float64) * self._scale
        self._previous: np.ndarray | None = None
        self._key_points = self._points = np.zeros((0, 2), np.float32)
        self._on_person = np.zeros(0, bool)  # per track: its corner was taken on a person (the view is crowded)
        self._key_corners = 0
        self._key_rotation, self._key_zoom = np.eye(3), 1.0
        self._rotation, self._zoom = np.eye(3), 1.0
        self.pairs: list[KeyPair] = []  # one per keyframe that had a measured frame, in order, per segment
        self._latest: KeyPair | None = None
        self._segment = -1
        self._frame = -1  # frames seen
        self._anchors: list[_Anchor] = []  # this segment's
        self._closure: tuple[int, np.ndarray, float] | None = None  # (frames back, correction, zoom) of this frame

    @property
    def scale(self) -> float:
        """Tracking pixels per frame pixel (the pairs' units)."""
        return self._scale

    def key_pairs(self) -> list[KeyPair]:
        """The kept pairs, the current keyframe's included."""
        pending = [self._latest] if self._latest is not None and len(self.pairs) < self.settings.max_pairs else []
        return self.pairs + pending

    def update(self, frame: np.ndarray, boxes: Sequence[np.ndarray] = (), new_segment: bool = False) -> FrameMotion:
        """``frame``: RGB uint8; ``boxes``: people's (x0, y0, x1, y1) in the frame's pixels."""
        gray = cv2.cvtColor(cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        free = self._background_mask(boxes)
        self._frame += 1
        self._closure = None
        if new_segment or self._previous is None:
            self._rotation, self._zoom = np.eye(3), 1.0
            self._segment += 1
            self._anchors = []
            self._new_keyframe(gray, free)
            return FrameMotion(np.eye(3), 1.0, 0, True, 0.0)
        self._follow(gray, free)
        estimate = self._estimate()
        inliers = 0
        if estimate is not None:
            rotation, zoom, inliers, keep = estimate
            self._keep_pair(keep)
            self._rotation, self._zoom = rotation @ self._key_rotation, self._key_zoom * zoom
        if estimate is None or inliers < max(self.settings.min_tracks,
                                             self.settings.keep_fraction * self._key_corners):
            self._new_keyframe(gray, free)
        self._previous = gray
        loop = {} if self._closure is None else dict(zip(("loop_frames", "loop_correction", "loop_zoom"),
                                                          self._closure))
        return FrameMotion(self._rotation.copy(), self._zoom, inliers, False, self._shift_px(), **loop)

    def _shift_px(self) -> float:
        """Pixels the content moved since the segment's start: the turn's angle times the focal length, plus
        the zoom's growth at the image corner."""
        angle = Rotation.from_matrix(self._rotation).magnitude()
        half_diagonal = 0.5 * float(np.hypot(*self._size))
        return float(angle * self._focal + abs(self._zoom - 1.0) * half_diagonal)

    def _keep_pair(self, keep: np.ndarray) -> None:
        index = np.flatnonzero(keep)
        index = index[np.linspace(0, len(index) - 1, min(len(index), self.settings.pair_points)).astype(int)]
        self._latest = KeyPair(self._key_points[index] - self._principal, self._points[index] - self._principal,
                               self._segment)

    def _background_mask(self, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """255 where corners may be taken: everywhere but the people's widened boxes."""
        mask = np.full(self._size[::-1], 255, np.uint8)
        margin = self.settings.person_margin
        for box in boxes:
            x0, y0, x1, y1 = np.asarray(box, np.float64) * self._scale
            dx, dy = margin * (x1 - x0), margin * (y1 - y0)
            mask[max(0, int(y0 - dy)):max(0, int(np.ceil(y1 + dy))),
                 max(0, int(x0 - dx)):max(0, int(np.ceil(x1 + dx)))] = 0
        return mask

    def _new_keyframe(self, gray: np.ndarray, free: np.ndarray) -> None:
        s = self.settings
        if self._latest is not None and len(self.pairs) < s.max_pairs:
            self.pairs.append(self._latest)
        self._latest = None
        corners = _corners(gray, s.max_corners, s, free)
        on_people = _corners(gray, s.min_free_corners - len(corners), s, 255 - free)
        self._on_person = np.repeat([False, True], [len(corners), len(on_people)])
        self._close_loop(gray, free)
        if len(corners) >= s.min_tracks and s.loop_anchors > 0:
            self._anchors = (self._anchors + [_Anchor(gray, corners, self._rotation.copy(), self._zoom,
                                                      self._frame)])[-s.loop_anchors:]
        corners = np.concatenate([corners, on_people])
        self._key_points, self._points = corners, corners.copy()
        self._key_corners = len(corners)
        self._key_rotation, self._key_zoom = self._rotation.copy(), self._zoom
        self._previous = gray

    def _close_loop(self, gray: np.ndarray, free: np.ndarray) -> None:
        """Measure this new keyframe against the oldest kept keyframe that saw about the same view; when that
        agrees (enough inliers, a small correction), take its camera instead of the chain's."""
        s = self.settings
        tries = s.loop_tries
        for anchor in self._anchors:
            if self._frame - anchor.frame < s.loop_min_frames or tries <= 0:
                break
            turn = self._rotation @ anchor.rotation.T
            if not _overlaps(turn, self._zoom / anchor.zoom, self._focal * anchor.zoom, self._size, s.loop_overlap):
                continue
            tries -= 1
            found = self._measure_against(anchor, gray, free, turn)
            if found is None:
                continue
            rotation, zoom = found
            correction = rotation @ self._rotation.T
            if np.degrees(Rotation.from_matrix(correction).magnitude()) > s.loop_max_correction_deg:
                continue
            self._closure = (self._frame - anchor.frame, correction, zoom / self._zoom)
            self._rotation, self._zoom = rotation, zoom
            return

    def _measure_against(self, anchor: _Anchor, gray: np.ndarray, free: np.ndarray, turn: np.ndarray
                         ) -> tuple[np.ndarray, float] | None:
        """The camera of ``gray`` from ``anchor``'s corners found on it away from this frame's people (``free``), or
        None when too few agree. The anchor is first warped to where the chain says it lies, so Lucas-Kanade
        compares patches of the same scale and slant and only has the chain's small error left to find (on the raw
        anchor, a zoom or a slant between the two views biases it)."""
        s = self.settings
        centred = _rotation_homography(turn, self._focal * anchor.zoom, self._focal * self._zoom)
        shift = np.array([[1.0, 0.0, self._principal[0]], [0.0, 1.0, self._principal[1]], [0.0, 0.0, 1.0]])
        warp = shift @ centred @ np.linalg.inv(shift)
        warped = cv2.warpPerspective(anchor.gray, warp, self._size, flags=cv2.INTER_LINEAR)
        predicted = _apply_homography(warp, anchor.corners).astype(np.float32)
        width, height = self._size
        inside = (predicted[:, 0] >= 0) & (predicted[:, 1] >= 0) & (predicted[:, 0] < width) & (
            predicted[:, 1] < height)
        if inside.sum() < s.min_tracks:
            return None
        corners, predicted = anchor.corners[inside], predicted[inside]
        found, ok, _ = cv2.calcOpticalFlowPyrLK(warped, gray, predicted, None)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray, warped, found, None)
        keep = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (np.linalg.norm(back - predicted, axis=1)
                                                              < s.fb_error_px)
        xy = np.round(found).astype(int)
        keep &= (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < width) & (xy[:, 1] < height)
        keep[keep] &= free[xy[keep, 1], xy[keep, 0]] > 0
        if keep.sum() < s.min_tracks:
            return None
        fit = _fit_points(corners[keep], found[keep], self._focal * anchor.zoom, self._principal, s.ransac_px,
                          s.min_tracks)
        if fit is None:
            return None
        rotation, zoom, _, _ = fit
        return rotation @ anchor.rotation, anchor.zoom * zoom

    def _follow(self, gray: np.ndarray, free: np.ndarray) -> None:
        """Move the tracks onto ``gray``; keep those found both ways and not on a person."""
        if not len(self._points):
            return
        forward, ok, _ = cv2.calcOpticalFlowPyrLK(self._previous, gray, self._points, None)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray, self._previous, forward, None)
        error = np.linalg.norm(back - self._points, axis=1)
        keep = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (error < self.settings.fb_error_px)
        xy = np.round(forward).astype(int)
        inside = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < gray.shape[1]) & (xy[:, 1] < gray.shape[0])
        keep &= inside
        keep[keep] &= (free[xy[keep, 1], xy[keep, 0]] > 0) | self._on_person[keep]
        self._key_points, self._points, self._on_person = self._key_points[keep], forward[keep], self._on_person[keep]

    def _estimate(self) -> tuple[np.ndarray, float, int, np.ndarray] | None:
        if len(self._points) < max(self.settings.min_inliers, 4):
            return None
        return _fit_points(self._key_points, self._points, self._focal * self._key_zoom, self._principal,
                           self.settings.ransac_px, self.settings.min_inliers)


def _rotation_homography(turn: np.ndarray, focal_from: float, focal_to: float) -> np.ndarray:
    """H = K_to R K_from^-1 on pixels relative to the principal point."""
    return np.diag([focal_to, focal_to, 1.0]) @ turn @ np.diag([1 / focal_from, 1 / focal_from, 1.0])


def _apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.column_stack([points, np.ones(len(points))]) @ homography.T
    return mapped[:, :2] / mapped[:, 2:]


def _overlaps(turn: np.ndarray, zoom: float, focal: float, size: tuple[int, int], overlap: float) -> bool:
    """Whether a camera turned by ``turn`` and zoomed by ``zoom`` from one of focal length ``focal`` sees about the
    same view: the image centre moves by less than ``overlap`` times the width, and the zoom stays within 1.3x."""
    centre = _apply_homography(_rotation_homography(turn, focal, focal * zoom), np.zeros((1, 2)))[0]
    ahead = (turn @ np.array([0.0, 0.0, 1.0]))[2] > 0.5
    return bool(ahead and 1 / 1.3 < zoom < 1.3 and np.hypot(*centre) < overlap * size[0])


def _corners(gray: np.ndarray, count: int, s: MotionSettings, mask: np.ndarray) -> np.ndarray:
    """At most ``count`` corners of ``gray`` where ``mask`` is set, (n, 2) float32."""
    found = cv2.goodFeaturesToTrack(gray, count, s.corner_quality, s.corner_spacing, mask=mask) if count > 0 else None
    return np.zeros((0, 2), np.float32) if found is None else found.reshape(-1, 2).astype(np.float32)


def rotation_zoom_from_points(a: np.ndarray, b: np.ndarray, focal: float, principal: np.ndarray,
                              ransac_px: float = 1.0, min_inliers: int = 12
                              ) -> tuple[np.ndarray, float, int] | None:
    """Rotation R (camera a -> camera b) and zoom s = f_b / f_a with b ~ K_b R K_a^-1 a, from pixel
    correspondences ``a`` -> ``b`` (n, 2) of a camera of focal length ``focal`` (pixels, camera a) turning and
    zooming about its centre; None when fewer than ``min_inliers`` correspondences agree."""
    fit = _fit_points(a, b, focal, principal, ransac_px, min_inliers)
    return None if fit is None else fit[:3]


def _fit_points(a: np.ndarray, b: np.ndarray, focal: float, principal: np.ndarray, ransac_px: float,
                min_inliers: int) -> tuple[np.ndarray, float, int, np.ndarray] | None:
    """:func:`rotation_zoom_from_points`, and the RANSAC inlier mask."""
    ac = np.asarray(a, np.float64) - principal
    bc = np.asarray(b, np.float64) - principal
    homography, inlier_mask = cv2.findHomography(ac, bc, cv2.RANSAC, ransac_px)
    if homography is None or int(inlier_mask.sum()) < min_inliers:
        return None
    keep = inlier_mask.ravel() == 1
    rotation, zoom = rotation_zoom_of(homography, focal)
    rotation, zoom = refine_rotation_zoom(ac[keep], bc[keep], focal, rotation, zoom)
    return rotation, zoom, int(keep.sum()), keep


def rotation_zoom_of(homography: np.ndarray, focal: float) -> tuple[np.ndarray, float]:
    """Closed form: in focal-normalised coordinates H ~ diag(s, s, 1) R, so the first two rows are s times as
    long as the third; dividing them out leaves a near-rotation, projected onto the rotations by SVD."""
    k = np.diag([focal, focal, 1.0])
    normalised = np.linalg.inv(k) @ homography @ k
    rows = np.linalg.norm(normalised, axis=1)
    zoom = 0.5 * (rows[0] + rows[1]) / rows[2]
    near = np.diag([1 / zoom, 1 / zoom, 1.0]) @ normalised / rows[2]
    if np.linalg.det(near) < 0:
        near = -near
    u, _, vt = np.linalg.svd(near)
    rotation = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    return rotation, float(zoom)


def refine_rotation_zoom(ac: np.ndarray, bc: np.ndarray, focal: float, rotation: np.ndarray, zoom: float,
                         iterations: int = 50) -> tuple[np.ndarray, float]:
    """The rotation and zoom minimising the reprojection error in pixels, from a start near them (the
    homography's closed form). Levenberg-Marquardt on a turn applied to the current rotation and on the log-zoom,
    with the Jacobian in closed form: about 4 evaluations a fit, where SciPy's ``least_squares`` with a numerical
    Jacobian took 27-39 (``benchmarks/bench_camera_motion.py refine``); it runs per frame and, for the focal
    length, per keyframe pair at every lens tried."""
    rays = np.column_stack([np.asarray(ac, np.float64) / focal, np.ones(len(ac))])
    target = np.asarray(bc, np.float64)
    log_zoom = float(np.log(max(zoom, 1e-6)))
    residual, jacobian = _reprojection(rays, target, focal, rotation, log_zoom)
    cost, damping = float(residual @ residual), 1e-6
    for _ in range(iterations):
        normal = jacobian.T @ jacobian
        try:
            step = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12), -jacobian.T @ residual)
        except np.linalg.LinAlgError:
            break
        turned = Rotation.from_rotvec(step[:3]).as_matrix() @ rotation
        tried = _reprojection(rays, target, focal, turned, log_zoom + step[3])
        tried_cost = float(tried[0] @ tried[0])
        if not tried_cost <= cost:  # worse, or not a number (a ray turned behind the camera): a shorter step
            damping *= 10.0
            if damping > 1e8:
                break
            continue
        rotation, log_zoom, (residual, jacobian) = turned, log_zoom + float(step[3]), tried
        done = cost - tried_cost <= 1e-10 * cost or float(np.abs(step).max()) < 1e-12
        cost, damping = tried_cost, max(damping / 10.0, 1e-12)
        if done:
            break
    return rotation, float(np.exp(log_zoom))


def _reprojection(rays: np.ndarray, target: np.ndarray, focal: float, rotation: np.ndarray, log_zoom: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (2n,) of ``rays`` turned by ``rotation`` and projected at ``exp(log_zoom) * focal`` against
    ``target``, and their Jacobian (2n, 4) in a small turn applied after ``rotation`` and in the log-zoom: with
    (u, v) the turned ray's normalised image point, the classic rotational image Jacobian
    scale * [[-uv, 1 + u^2, -v], [-(1 + v^2), uv, u]], and the projected point itself for the log-zoom."""
    t = rays @ rotation.T
    u, v = t[:, 0] / t[:, 2], t[:, 1] / t[:, 2]
    scale = float(np.exp(log_zoom)) * focal
    jacobian = np.empty((len(t), 2, 4))
    jacobian[:, 0, 0] = jacobian[:, 1, 1] = u * v
    jacobian[:, 0, 0] *= -1.0
    jacobian[:, 0, 1] = 1.0 + u * u
    jacobian[:, 0, 2] = -v
    jacobian[:, 1, 0] = -1.0 - v * v
    jacobian[:, 1, 2] = u
    jacobian[:, 0, 3], jacobian[:, 1, 3] = u, v
    jacobian *= scale
    residual = jacobian[:, :, 3] - target
    return residual.ravel(), jacobian.reshape(-1, 4)


__all__ = ["FrameMotion", "KeyPair", "MotionSettings", "RotationTracker", "person_boxes", "refine_rotation_zoom",
           "rotation_zoom_from_points", "rotation_zoom_of"]
