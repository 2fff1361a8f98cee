"""The world frame: gravity up (+z), the floor at z = 0, and everyone in it.

Each camera segment gets its own world. Its up direction is where the people's bodies point (pelvis to neck,
turned by each row's global orientation and brought into the segment's reference camera by the camera's
rotation), a robust mean that drops bodies leaning more than 30 degrees from it; with nobody in the segment the
reference camera is taken as level. The world's +y is the reference camera's view direction laid flat, so a
level camera keeps the add-on's usual axes (camera looking along +y, z up). The floor is where the feet are: per
row the lowest foot joint less the sole's thickness (rest mesh below the foot joints), the median over the
segment's rows; the camera's centre is then at height -floor above the world's origin.

Under a zoom the estimator's fixed lens put people at the wrong depth. Each zoomed row is placed again through
the frame's focal length before it is carried into the world: an estimator that fits its bodies onto the
picture's keypoints (``EstimatorInfo.fits_keypoints``) bent them to meet the picture through the wrong lens, so
its rows are re-fitted onto their 2D joints (translation, orientation and, held near the estimate, the joint
rotations: ``backend.world.refit``); a regressor's pose comes from appearance, right whatever the lens, and its
2D joints are only its projection through the wrong lens, so its rows keep their pose and their translation is
re-solved onto those joints (``backend.geometry.camera.solve_translation``). The keys added to the result (all
optional, see ``backend.result.contract.OPTIONAL``):
``camera_rotation`` (F, 3, 3) world -> camera (OpenCV axes), ``camera_position`` (F, 3) metres,
``camera_focal`` (F, 2) pixels, ``camera_segment`` (F,), ``segment_static`` (S,), ``world_orient`` (N, 3) and
``world_transl`` (N, 3): the people in the world, posed joints = FK(poses with joint 0 = world_orient) +
world_transl; rows re-fitted under a zoom also give ``world_poses`` (N, 24, 3), the poses (joint 0 =
world_orient) that replace ``poses`` in the world.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from backend.body import BodyModel
from backend.estimators.catalog import estimator_info
from backend.geometry.camera import solve_translation
from backend.world.refit import refit_through_lens
from backend.world.segments import CameraPath

FEET = (7, 8, 10, 11)  # L_Ankle, R_Ankle, L_Foot, R_Foot
PELVIS, NECK = 0, 12
LEAN_LIMIT_DEG = 30.0
FLOOR_SPREAD_M = 0.5  # rms spread of the soles along the floor's second direction for the floor to count
FLOOR_THICKNESS_M = 0.1  # rms distance of the soles from their plane for the floor to count
ZOOM_TOLERANCE = 1e-3  # below this relative focal change a row keeps the estimator's fit


def add_world_frame(arrays: dict[str, np.ndarray], path: CameraPath, body: BodyModel,
                    refit: bool | None = None) -> dict[str, np.ndarray]:
    """The world keys of a result's ``arrays`` (full contract keys present) under the camera ``path``. ``refit``:
    whether zoomed rows are re-fitted onto their 2D joints (None: when the result's estimator fits keypoints)."""
    focal0 = np.asarray(arrays["focal_length"], np.float64)
    principal = np.asarray(arrays["principal_point"], np.float64)
    if refit is None:
        refit = _fits_keypoints(str(arrays.get("estimator", "")))
    rows = _Rows(arrays, path, body, focal0, principal, refit)
    num_frames = path.num_frames
    to_camera = np.zeros((num_frames, 3, 3))
    position = np.zeros((num_frames, 3))
    world_orient = np.zeros((rows.count, 3))
    world_transl = np.zeros((rows.count, 3))
    for segment in range(path.num_segments):
        frames = path.frames_of(segment)
        in_segment = np.isin(rows.frame, frames)
        world_from_ref = _gravity_frame(rows.up_in_reference[in_segment], rows.lowest_sole[in_segment],
                                        rows.observed[in_segment])
        centre = np.array([0.0, 0.0, -_floor(rows, in_segment, world_from_ref)])
        to_camera[frames] = path.rotations[frames] @ world_from_ref.T
        position[frames] = centre
        cam_to_world = world_from_ref @ np.swapaxes(path.rotations[rows.frame[in_segment]], 1, 2)
        world_orient[in_segment] = Rotation.from_matrix(cam_to_world @ rows.orient[in_segment]).as_rotvec()
        pelvis_cam = rows.transl[in_segment] + rows.rest_pelvis[in_segment]
        world_transl[in_segment] = (np.einsum("nij,nj->ni", cam_to_world, pelvis_cam) + centre
                                    - rows.rest_pelvis[in_segment])
    world = {
        "camera_rotation": to_camera.astype(np.float64),
        "camera_position": position.astype(np.float64),
        "camera_focal": (path.zoom[:, None] * focal0[None]).astype(np.float64),
        "camera_segment": path.segment.astype(np.int64),
        "segment_static": path.static.astype(bool),
        "world_orient": world_orient.astype(np.float32),
        "world_transl": world_transl.astype(np.float32),
    }
    if refit and len(rows.zoomed):
        poses = rows.poses.copy()
        poses[:, 0] = world_orient
        world["world_poses"] = poses.astype(np.float32)
    return world


class _Rows:
    """Per observation row, what the world frame needs: orientation, zoom-corrected translation, up direction
    in the segment's reference camera, the lowest sole point, all in the camera frame of the row's moment."""

    @torch.no_grad()
    def __init__(self, arrays: dict[str, np.ndarray], path: CameraPath, body: BodyModel, focal0: np.ndarray,
                 principal: np.ndarray, refit: bool) -> None:
        self.frame = np.asarray(arrays["row_frame"], np.int64)
        self.count = len(self.frame)
        track = np.asarray(arrays["row_track"], np.int64)
        poses = np.asarray(arrays["poses"], np.float64).reshape(-1, 24, 3).copy()
        rest = np.asarray(arrays["rest_joints"], np.float64)
        self.observed = np.asarray(arrays.get("observed", np.ones(self.count, bool)), bool)
        self.rest_pelvis = rest[track, PELVIS] if self.count else np.zeros((0, 3))
        self.transl = np.asarray(arrays["transl"], np.float64).copy()
        zoom = path.zoom[self.frame]
        self.zoomed = np.flatnonzero(np.abs(zoom - 1.0) > ZOOM_TOLERANCE)
        z = self.zoomed
        intrinsics = np.column_stack([zoom[z, None] * focal0[None], np.tile(principal, (len(z), 1))])
        joints2d = np.asarray(arrays["joints2d"], np.float64)[z]
        if refit and len(z):
            poses[z], self.transl[z] = refit_through_lens(poses[z], rest[track[z]], body.parents.cpu().numpy(),
                                                          joints2d, intrinsics)
        self.poses = poses
        self.orient = Rotation.from_rotvec(poses[:, 0]).as_matrix() if self.count else np.zeros((0, 3, 3))
        relative = _posed_joints(body, poses, np.asarray(arrays["betas"])[track]) if self.count else np.zeros(
            (0, 24, 3))
        if not refit and len(z):
            self.transl[z] = solve_translation(torch.as_tensor(relative[z]), torch.as_tensor(joints2d),
                                               torch.as_tensor(intrinsics)[:, None]).numpy()
        up_model = rest[track, NECK] - rest[track, PELVIS] if self.count else np.zeros((0, 3))
        up_camera = np.einsum("nij,nj->ni", self.orient, up_model)
        to_reference = np.swapaxes(path.rotations[self.frame], 1, 2)
        self.up_in_reference = np.einsum("nij,nj->ni", to_reference, _unit(up_camera))
        feet = relative[:, FEET] + self.transl[:, None]  # (n, 4, 3) camera frame
        self.feet_in_reference = np.einsum("nij,nkj->nki", to_reference, feet)
        self.sole = _sole_depth(arrays, track)
        lowest = np.argmax(feet[..., 1], axis=1)  # y down: lowest
        self.lowest_sole = self.feet_in_reference[np.arange(self.count), lowest]


def _posed_joints(body: BodyModel, poses: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """FK joints (n, 24, 3) of the rows without their translation (camera frame orientation)."""
    device = body.faces.device
    out = body(torch.as_tensor(poses, dtype=torch.float32, device=device),
               torch.as_tensor(betas, dtype=torch.float32, device=device),
               torch.zeros(len(poses), 3, device=device))
    return out.joints.cpu().numpy().astype(np.float64)


def _fits_keypoints(estimator: str) -> bool:
    info = estimator_info(estimator)
    return bool(info is not None and info.fits_keypoints)


def _sole_depth(arrays: dict[str, np.ndarray], track: np.ndarray) -> np.ndarray:
    """Per row: how far the rest mesh reaches below the lowest foot joint (model frame, y up); 0 without a mesh."""
    if "rest_vertices" not in arrays or not len(track):
        return np.zeros(len(track))
    rest = np.asarray(arrays["rest_joints"], np.float64)
    vertices = np.asarray(arrays["rest_vertices"], np.float64)
    per_track = rest[:, list(FEET), 1].min(1) - vertices[:, :, 1].min(1)
    return np.clip(per_track[track], 0.0, 0.2)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _gravity_frame(ups: np.ndarray, soles: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotation world <- reference camera: +z the up of the floor the feet trace (when they trace one) or else
    the people's robust mean up, +y the camera's view laid flat."""
    body_up = _robust_up(ups[observed] if observed.any() else ups)
    up = _floor_normal(soles[observed], body_up)
    forward = np.array([0.0, 0.0, 1.0]) - up * up[2]
    if np.linalg.norm(forward) < 1e-6:  # looking straight down or up: any horizontal direction will do
        forward = np.array([0.0, -1.0, 0.0]) - up * -up[1]
    forward = _unit(forward)
    right = np.cross(forward, up)
    return np.stack([right, forward, up])


def _floor_normal(soles: np.ndarray, body_up: np.ndarray) -> np.ndarray:
    """The normal of the plane the lowest soles lie on, when they cover a floor (spread at least
    ``FLOOR_SPREAD_M`` in two directions and within ``FLOOR_THICKNESS_M`` of a plane) that is within
    ``LEAN_LIMIT_DEG`` of the bodies' up; otherwise the bodies' up. Monocular depth errors thicken the plane on
    real footage, and then the bodies decide."""
    if len(soles) < 10:
        return body_up
    _, spread, axes = np.linalg.svd(soles - soles.mean(0), full_matrices=False)
    spread = spread / np.sqrt(len(soles))
    normal = axes[2] if axes[2] @ body_up > 0 else -axes[2]
    if spread[1] < FLOOR_SPREAD_M or spread[2] > FLOOR_THICKNESS_M:
        return body_up
    if normal @ body_up < np.cos(np.radians(LEAN_LIMIT_DEG)):
        return body_up
    return normal


def _robust_up(ups: np.ndarray) -> np.ndarray:
    """Mean of the bodies' up directions, twice re-taken over those within ``LEAN_LIMIT_DEG`` of it; the level
    camera's up (-y in OpenCV axes) when there is nobody."""
    level = np.array([0.0, -1.0, 0.0])
    if not len(ups):
        return level
    mean = _unit(ups.mean(0))
    for _ in range(2):
        close = ups @ mean > np.cos(np.radians(LEAN_LIMIT_DEG))
        if not close.any():
            break
        mean = _unit(ups[close].mean(0))
    return mean


def _floor(rows: _Rows, selected: np.ndarray, world_from_ref: np.ndarray) -> float:
    """Height of the floor in the segment's gravity frame centred on the camera: the median lowest sole."""
    if not selected.any():
        return -1.6  # nobody to stand on it: a camera held at eye height
    use = selected & rows.observed if (selected & rows.observed).any() else selected
    heights = np.einsum("ij,nkj->nki", world_from_ref, rows.feet_in_reference[use])[..., 2]
    return float(np.median(heights.min(1) - rows.sole[use]))


__all__ = ["add_world_frame"]
