"""Detector output -> LASOR inputs -> SMPL people in the pipeline's camera.

Used by the ``lasor`` estimator and as the optional initialiser of the default fit (``LasorInitialiser``;
``predict_people`` takes MediaPipe detections and returns per-person poses, betas and translations).

Per person: the 17 COCO keypoints are read off MediaPipe's 33 landmarks; those with visibility below
``min_visibility`` (the paper's best threshold, 0.4) are dropped, as the training data drops hidden ones. The crop
is the square around all landmarks MediaPipe places inside the image (``data.crop_box``, x1.3), i.e. the rule
training uses on the true keypoints. The person mask is sampled at the render size at pixel centres (as the
rasterizer covers pixels in training) and resized to the input size like the training silhouettes.

Translation from the weak-perspective camera (s, tx, ty) of a crop (x0, y0, side), as PARE/CRMH/CLIFF do:
``Tz = 2 fx / (side s)``, ``Tx = tx - (2 cx_crop / S - 1) Tz S / (2 fx_crop)`` (same for y), where
``cx_crop = (cx - x0) S / side`` is the principal point in the crop and ``fx_crop = fx S / side``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.body.rotations import matrix_to_axis_angle
from backend.geometry.camera import Camera
from backend.lasor.body import LightBody
from backend.lasor.data import DataConfig, crop_box, heatmaps, silhouette_input
from backend.lasor.keypoints import coco_points, coco_values
from backend.lasor.model import LasorRegressor
from backend.runtime.torch_threads import single_thread

MIN_VISIBILITY = 0.4
CROP_SCALE = 1.3


@dataclass
class LasorPeople:
    poses: np.ndarray  # (P, 24, 3) axis-angle, joint 0 in the camera frame
    betas: np.ndarray  # (P, K) for ``body``: the regressed betas on the open body, zeros (mean) on other models
    transl: np.ndarray  # (P, 3)
    joints: np.ndarray  # (P, 24, 3) camera frame
    cam: np.ndarray  # (P, 3) weak-perspective (s, tx, ty)
    crops: np.ndarray  # (P, 3) x0, y0, side in pixels


def make_inputs(keypoints: np.ndarray, visibility: np.ndarray, presence: np.ndarray, masks: np.ndarray | None,
                camera: Camera, config: DataConfig, min_visibility: float = MIN_VISIBILITY):
    """MediaPipe (P, 33, 2) pixels, (P, 33) visibility / presence, (P, H, W) masks -> (inputs (P, 18, S, S),
    crops (P, 3))."""
    import cv2

    kp = coco_points(keypoints)
    vis, pres = coco_values(visibility), coco_values(presence)
    s, r = config.size, config.render_size
    inputs, crops = [], []
    for i in range(len(kp)):
        inside = (pres[i] > 0.5) & (kp[i, :, 0] >= 0) & (kp[i, :, 0] < camera.width) & \
            (kp[i, :, 1] >= 0) & (kp[i, :, 1] < camera.height)
        box = crop_box(kp[i][inside] if inside.sum() >= 2 else kp[i], CROP_SCALE)
        x0, y0, side = box
        crops.append(box)
        pts = torch.as_tensor((kp[i] - [x0, y0]) * (s / side), dtype=torch.float32)
        valid = torch.as_tensor(vis[i] >= min_visibility)
        heat = heatmaps(pts[None], valid[None], s, config.sigma)[0]
        if masks is not None:
            k = r / side  # full image -> render pixels: u_r = (u - x0) * r / side
            affine = np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]])
            small = cv2.warpAffine(masks[i].astype(np.float32), affine, (r, r), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0.0) > 0.5
        else:
            small = np.zeros((r, r), bool)
        sil = silhouette_input(torch.as_tensor(small)[None], config)[0]
        inputs.append(torch.cat([heat, sil[None]], 0))
    if not inputs:
        return torch.zeros(0, 18, s, s), np.zeros((0, 3))
    return torch.stack(inputs), np.stack(crops)


def crop_cam_to_transl(cam: np.ndarray, crops: np.ndarray, camera: Camera, size: int) -> np.ndarray:
    """Weak-perspective (P, 3) cameras of crops (P, 3) -> (P, 3) camera-frame translations (see the docstring)."""
    sc = np.clip(cam[:, 0], 1e-3, None)
    x0, y0, side = crops.T
    fx_c, fy_c = camera.fx * size / side, camera.fy * size / side
    cx_c, cy_c = (camera.cx - x0) * size / side, (camera.cy - y0) * size / side
    tz = 2 * fx_c / (size * sc)
    tx = cam[:, 1] - (2 * cx_c / size - 1) * tz * size / (2 * fx_c)
    ty = cam[:, 2] - (2 * cy_c / size - 1) * tz * size / (2 * fy_c)
    return np.stack([tx, ty, tz], 1)


def transl_to_crop_cam(transl: np.ndarray, crops: np.ndarray, camera: Camera, size: int) -> np.ndarray:
    """Inverse of :func:`crop_cam_to_transl` (x uses fx; the y offset is exact when fx == fy)."""
    x0, y0, side = crops.T
    fx_c = camera.fx * size / side
    cx_c, cy_c = (camera.cx - x0) * size / side, (camera.cy - y0) * size / side
    s = 2 * fx_c / (size * transl[:, 2])
    return np.stack([s, transl[:, 0] + (2 * cx_c / size - 1) / s, transl[:, 1] + (2 * cy_c / size - 1) / s], 1)


@torch.no_grad()
def predict_people(regressor: LasorRegressor, body: LightBody, keypoints: np.ndarray, visibility: np.ndarray,
                   presence: np.ndarray, masks: np.ndarray | None, camera: Camera,
                   config: DataConfig | None = None, min_visibility: float = MIN_VISIBILITY) -> LasorPeople:
    """People from MediaPipe arrays (as in ``PoseDetections``) in ``camera``."""
    config = config or DataConfig(size=regressor.config.input_size, render_size=regressor.config.render_size)
    inputs, crops = make_inputs(keypoints, visibility, presence, masks, camera, config, min_visibility)
    p = len(crops)
    if p == 0:
        z = np.zeros
        return LasorPeople(z((0, 24, 3)), z((0, regressor.config.num_betas)), z((0, 3)), z((0, 24, 3)),
                           z((0, 3)), z((0, 3)))
    device = next(regressor.parameters()).device
    pred = regressor.eval()(inputs.to(device))
    rot = pred["rotmats"].cpu().float()
    betas = body_betas(pred["betas"].cpu().float(), body)
    cam = pred["cam"].cpu().double().numpy()
    transl = crop_cam_to_transl(cam, crops, camera, config.size)
    joints = body(rot.to(body.joint_template.device), betas.to(body.joint_template.device))[0].cpu().numpy()
    poses = matrix_to_axis_angle(rot.double()).numpy()
    return LasorPeople(poses, betas.numpy().astype(np.float64), transl, joints + transl[:, None], cam, crops)


def body_betas(betas: torch.Tensor, body: LightBody) -> torch.Tensor:
    """The regressed open-body betas where ``body`` is the open body; the mean shape (zeros) otherwise."""
    if body.name == "open-body" and body.num_betas == betas.shape[1]:
        return betas
    return torch.zeros(betas.shape[0], body.num_betas)


class LasorInitialiser:
    """Starting values for the default fit from LASOR: ``(poses (P, 24, 3), betas (P, K), transl (P, 3))`` for the
    rows of one frame's ``PoseDetections``, in the fit's body model (betas zero unless it is the open body).

    Used by ``mediapipe-fit`` with ``initialiser="lasor"`` (``mediapipe_fit.learned_starts``): rows without a
    temporal warm start take ``init_poses``, ``init_betas``, ``init_transl`` from this, flagged
    ``FitInput.init_full`` so they still get the full schedule rather than the short warm one.
    """

    def __init__(self, body_model, weights=None, device: str = "cpu") -> None:
        from backend.lasor.train import DEFAULT_WEIGHTS, load_regressor

        self.regressor = load_regressor(weights or DEFAULT_WEIGHTS, device)
        self.body = LightBody(body_model).to(device)

    def __call__(self, detections, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with single_thread():  # a few crops per call: threads only contend (as in the fit itself)
            people = predict_people(self.regressor, self.body, detections.keypoints, detections.visibility,
                                    detections.presence, detections.masks, camera)
        return people.poses, people.betas, people.transl
