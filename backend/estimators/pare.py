"""``pare``: PARE (part attention regressor, HRNet-W32) on per-person crops, with the user's official checkpoint.

RESEARCH ONLY: PARE's weights are under the MPI non-commercial research licence (see backend.estimators.weights).

Per batch of frames: the default detector (MediaPipe :class:`PoseDetector`) gives each person's landmarks; the
box around the visible landmarks becomes a square of side ``bbox_scale`` x its longer side (1.2 by default:
MediaPipe's landmark box is tighter than the YOLO boxes the PARE demo used with scale 1.0, and 1.2 is the
SPIN/PARE training crop margin), cropped to 224 x 224 by an affine warp (INTER_LINEAR, black border, RGB) as in
``generate_patch_image_cv``. All crops of all frames of the batch go through the network in one forward pass
(split only above ``max_crops``), with bf16 autocast and channels_last on CUDA. ImageNet normalisation.

Rotations: 24 joints x 6D (§6.3 convention, per-joint contiguous) -> matrices (in the net) -> axis-angle via
backend.body.rotations. Joint 0 is the global orientation in the crop camera, whose axes are the image camera's
(OpenCV), so it is used as is.

Camera (the conversion). PARE's camera is (s, tx, ty) for a perspective camera of focal 5000 px at the 224 crop,
principal point at the crop centre, body translation t = (tx, ty, 2*5000/(224 s)). A crop pixel maps to the image
by p = c + (q - 112) * b / 224 (crop centre c, side b), so in image pixels the network's camera is a pinhole with
focal f_c = 5000 b / 224 and principal point c:  p = c + f_c (X + tx) / (Z + tz). The pipeline's camera
(fx, fy, cx, cy) differs, so t is not reused directly. As for ROMP, the body's 24 joints (the pipeline body at the
predicted pose and shape) are projected through the network's camera into image pixels, i.e. where the network
put them, and the translation T is the batched weighted least-squares solve of fx (X + Tx) = (u - cx)(Z + Tz)
(likewise y) through the pipeline camera (backend.geometry.camera.solve_translation). Projecting the person
through the pipeline camera therefore lands on what the network saw in its crop; when the pipeline camera equals
the network's (fx = fy = f_c, principal point c) T = t exactly. The closed form of the PARE/VIBE demo is
:func:`closed_form_translation`: Tz = 2 fx / (s b), Tx = tx + 2 (cx_box - cx) / (s b) (y alike), exact for the
body's root plane only; it is kept for reference and tests.

Configuration that the weights cannot tell (§2.3): ``use_mean_pose`` and ``use_mean_camshape`` (add the SMPL
mean pose / camera+shape to the regressed values). They are read from the checkpoint's hyper-parameters
(``PARE.USE_MEAN_POSE`` / ``PARE.USE_MEAN_CAMSHAPE``) when present, else False (the code default) unless given as
options. The architecture settings that matter (BACKBONE hrnet_w32-conv, USE_HEATMAPS part_segm,
USE_KEYPOINT_ATTENTION true, KEYPOINT_ATTENTION_ACT softmax, NUM_DECONV_LAYERS 2, NUM_DECONV_FILTERS 128,
NUM_FEATURES_SMPL 64, ITERATIVE_REGRESSION / USE_HMR_REGRESSION / USE_COATTENTION false) are checked against the
hyper-parameters when they can be read; the strict state_dict check catches most other differences.

Not implemented: the official YOLOv3 + SORT tracker (the pipeline's detector and tracker are used), the optional
OneEuro smoothing on rotation matrices (the pipeline smooths), the 49-joint SMPL output.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import torch

from backend.body.rotations import matrix_to_axis_angle
from backend.estimators.base import EstimatorError, FrameEstimates, PersonEstimate
from backend.estimators.one_stage import BodyAdapter, autocast, batches, prepare_net, resolve_precision
from backend.estimators.weights import CHECKPOINTS, check_state_dict, find_checkpoint, read_checkpoint
from backend.geometry.camera import Camera, project, solve_translation

CROP_SIZE = 224
CROP_FOCAL = 5000.0  # DATASET.FOCAL_LENGTH, pixels at the 224 crop
BBOX_SCALE = 1.2
MODELS = ("pare-hrnet32-3dpw", "pare-hrnet32")
# Hyper-parameters (section PARE unless dotted) the implementation assumes, and the values it supports.
ASSUMED_CONFIG: dict[str, Any] = {
    "BACKBONE": "hrnet_w32-conv",
    "USE_KEYPOINT_ATTENTION": True,
    "KEYPOINT_ATTENTION_ACT": "softmax",
    "USE_SCALE_KEYPOINT_ATTENTION": False,
    "USE_POSTCONV_KEYPOINT_ATTENTION": False,
    "NUM_DECONV_LAYERS": 2,
    "NUM_DECONV_FILTERS": 128,
    "NUM_FEATURES_SMPL": 64,
    "ITERATIVE_REGRESSION": False,
    "USE_HMR_REGRESSION": False,
    "USE_COATTENTION": False,
    "NUM_BRANCH_ITERATION": 0,
    "DATASET.USE_HEATMAPS": "part_segm",
}


# ---------------------------------------------------------------- crops


def square_boxes(boxes: np.ndarray, scale: float = BBOX_SCALE) -> np.ndarray:
    """(P, 4) x0, y0, x1, y1 -> (P, 3) centre x, centre y, side = scale * max(w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    side = scale * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return np.concatenate([centre, np.maximum(side, 1.0)[:, None]], axis=1)


def crop_affine(box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """2x3 affine taking image pixels into the crop: the square (cx, cy, side) onto size x size."""
    k = size / box[2]
    return np.array([[k, 0, size / 2 - k * box[0]], [0, k, size / 2 - k * box[1]]], dtype=np.float64)


def crop_people(frame: np.ndarray, squares: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(P, size, size, 3) uint8 crops (INTER_LINEAR, black outside the image)."""
    out = np.zeros((len(squares), size, size, 3), np.uint8)
    for i, box in enumerate(squares):
        out[i] = cv2.warpAffine(np.ascontiguousarray(frame[..., :3]), crop_affine(box, size), (size, size),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


# ---------------------------------------------------------------- camera


def crop_depth(cam: torch.Tensor) -> torch.Tensor:
    """tz = 2 * 5000 / (224 s + 1e-9), the official ``convert_weak_perspective_to_perspective``."""
    return 2 * CROP_FOCAL / (CROP_SIZE * cam[..., 0] + 1e-9)


def crop_camera_pixels(joints: torch.Tensor, cam: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
    """Where the network's camera puts body joints (N, J, 3) in IMAGE pixels: c + f_c (X + t) / (Z + tz) with
    f_c = 5000 b / 224; cam (N, 3) = (s, tx, ty), squares (N, 3) = (cx, cy, side)."""
    t = torch.stack([cam[:, 1], cam[:, 2], crop_depth(cam)], dim=-1)[:, None]
    p = joints + t
    focal = (CROP_FOCAL * squares[:, 2] / CROP_SIZE)[:, None, None]
    return squares[:, None, :2] + focal * p[..., :2] / p[..., 2:3]


def full_image_translation(joints: torch.Tensor, cam: torch.Tensor, squares: torch.Tensor,
                           intrinsics: torch.Tensor) -> torch.Tensor:
    """Translation (N, 3) in the pipeline camera (fx, fy, cx, cy) whose projection of the joints best matches the
    network's crop-camera projection (see the module docstring)."""
    return solve_translation(joints, crop_camera_pixels(joints, cam, squares), intrinsics)


def closed_form_translation(cam: torch.Tensor, squares: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """The PARE/VIBE demo conversion generalised to (fx, fy, cx, cy): exact for points on the root's depth plane."""
    fx, fy, cx, cy = intrinsics.unbind(-1)
    sb = cam[:, 0] * squares[:, 2]
    tz = 2 * fx / sb
    return torch.stack([cam[:, 1] + 2 * (squares[:, 0] - cx) / sb,
                        cam[:, 2] + 2 * (squares[:, 1] - cy) / sb * (fx / fy), tz], dim=-1)


# ---------------------------------------------------------------- configuration


def _find(tree: Any, dotted: str) -> Any:
    """``SECTION.KEY`` or ``KEY`` (searched in a ``PARE`` section first, then anywhere) in nested dicts."""
    if not isinstance(tree, Mapping):
        return None
    section, _, key = dotted.rpartition(".")
    queue = [tree]
    while queue:
        node = queue.pop(0)
        target = node.get(section or "PARE") if isinstance(node.get(section or "PARE"), Mapping) else None
        if target is not None and key in target:
            return target[key]
        queue += [v for v in node.values() if isinstance(v, Mapping)]
    return None


def checkpoint_config(hparams: Mapping | None) -> dict[str, Any]:
    """The settings found in the hyper-parameters: ``use_mean_pose`` / ``use_mean_camshape`` when present;
    raises :class:`EstimatorError` when an architecture setting differs from :data:`ASSUMED_CONFIG`."""
    if not hparams:
        return {}
    wrong = []
    for dotted, expected in ASSUMED_CONFIG.items():
        found = _find(hparams, dotted)
        if found is not None and found != expected:
            wrong.append(f"{dotted}={found!r} (supported: {expected!r})")
    if wrong:
        raise EstimatorError("pare: the checkpoint's configuration is not the supported HRNet-W32 PARE: "
                             + ", ".join(wrong))
    out = {}
    for option, key in (("use_mean_pose", "USE_MEAN_POSE"), ("use_mean_camshape", "USE_MEAN_CAMSHAPE")):
        value = _find(hparams, key)
        if isinstance(value, bool):
            out[option] = value
    return out


# ---------------------------------------------------------------- the estimator


class PareEstimator:
    """PARE HRNet-W32. Options: ``model`` (pare-hrnet32-3dpw | pare-hrnet32), ``checkpoint`` (a path; default:
    the official file name in the weights folder), ``use_mean_pose`` / ``use_mean_camshape`` (None: from the
    checkpoint, else False), ``bbox_scale`` (1.2), ``batch_size`` frames per batch (16), ``max_crops`` per
    forward pass (64), ``precision`` (auto | fp32 | bf16 | fp16), ``tile_scales`` of the people finder, ``detector``
    (an object with ``find(image) -> PoseDetections``; default: ``backend.detection.clip_finder``)."""

    name = "pare"

    def __init__(
        self,
        body_model: Any,
        device: Any = "cpu",
        *,
        model: str = MODELS[0],
        checkpoint: str | None = None,
        use_mean_pose: bool | None = None,
        use_mean_camshape: bool | None = None,
        bbox_scale: float = BBOX_SCALE,
        batch_size: int = 16,
        max_crops: int = 64,
        precision: str = "auto",
        tile_scales: Sequence[float] | float | str | None = None,
        detector: Any = None,
    ) -> None:
        from backend.nets.pare import PARE

        if model not in MODELS:
            raise EstimatorError(f"pare: unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self.device = torch.device(device)
        self.amp = resolve_precision(precision, self.device)
        path = find_checkpoint(model, checkpoint)
        state, hparams = read_checkpoint(path, restricted_fallback=CHECKPOINTS[model].lightning)
        config = checkpoint_config(hparams)
        self.config = {
            "use_mean_pose": config.get("use_mean_pose", False) if use_mean_pose is None else bool(use_mean_pose),
            "use_mean_camshape": (config.get("use_mean_camshape", False) if use_mean_camshape is None
                                  else bool(use_mean_camshape)),
        }
        self.config_source = "checkpoint" if config else "default"
        if not config and use_mean_pose is None and use_mean_camshape is None:
            warnings.warn("pare: the checkpoint has no readable hyper-parameters; assuming USE_MEAN_POSE and "
                          "USE_MEAN_CAMSHAPE false (pass use_mean_pose / use_mean_camshape if your yaml says "
                          "otherwise)", stacklevel=2)
        net = PARE(**self.config)
        check_state_dict(net, state, str(path))
        net.load_state_dict(state, strict=True)
        self.net = prepare_net(net, self.device)
        self.adapter = BodyAdapter(body_model, self.name)
        self.bbox_scale = float(bbox_scale)
        self.batch_size, self.max_crops = max(1, batch_size), max(1, max_crops)
        if isinstance(tile_scales, (int, float)):
            tile_scales = (float(tile_scales),)
        elif isinstance(tile_scales, str):  # "0,1.0,0.6" from a command line
            tile_scales = tuple(float(v) for v in tile_scales.split(",") if v.strip())
        self.tile_scales = None if tile_scales is None else tuple(tile_scales)
        self._detector = detector

    # ------------------------------------------------------------ detection

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from backend.detection import clip_finder

            self._detector = clip_finder(self.device, self.tile_scales)
        return self._detector

    def reset(self) -> None:
        """A shot cut or an unrelated image next: the people finder forgets whom it was following."""
        reset = getattr(self._detector, "reset", None)
        if callable(reset):
            reset()

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[dict]]:
        """Boxes (P, 4) around each person's visible landmarks, scores (P,), masks (P, H, W) or None, and per
        person the detected landmarks as estimate extras (coherence reads where the feet are from them)."""
        from backend.detection import landmark_boxes

        det = self.detector.find(np.ascontiguousarray(frame[..., :3]))
        if len(det) == 0:
            return np.zeros((0, 4)), np.zeros((0,)), None, []
        boxes = landmark_boxes(det.keypoints, np.minimum(det.visibility, det.presence), 0.5)
        landmarks = [{"keypoints2d": det.keypoints[i].astype(np.float32), "keypoint_layout": "mediapipe33",
                      "keypoint_visibility": det.visibility[i].astype(np.float32)} for i in range(len(det))]
        return boxes, det.scores, det.masks, landmarks

    # ------------------------------------------------------------ estimation

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera) -> list[FrameEstimates]:
        out: list[FrameEstimates] = []
        for chunk in batches(frames, self.batch_size):
            found = [self.detect(f) for f in chunk]
            out += self.estimate_boxes(chunk, [f[0] for f in found], camera, scores=[f[1] for f in found],
                                       masks=[f[2] for f in found], extras=[f[3] for f in found])
        return out

    def estimate_boxes(self, frames: Sequence[np.ndarray], boxes: Sequence[np.ndarray], camera: Camera,
                       scores: Sequence[np.ndarray] | None = None,
                       masks: Sequence[np.ndarray | None] | None = None,
                       extras: Sequence[list[dict]] | None = None) -> list[FrameEstimates]:
        """People in given boxes (per frame (P, 4) x0, y0, x1, y1): one forward pass for all crops of all frames.
        ``extras``: per frame, per box, entries added to each estimate's extras (the detector's landmarks)."""
        squares = [square_boxes(b, self.bbox_scale) for b in boxes]
        frame_of = np.concatenate([np.full(len(s), i) for i, s in enumerate(squares)]).astype(np.int64)
        out: list[FrameEstimates] = [[] for _ in frames]
        if len(frame_of) == 0:
            return out
        crops = np.concatenate([crop_people(f, s) for f, s in zip(frames, squares)])
        all_squares = np.concatenate(squares)
        result = self.run_crops(crops, all_squares, camera)
        host = {k: v.detach().float().cpu().numpy() for k, v in result.items()}
        box_rows = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes])
        score_rows = (np.concatenate([np.asarray(s, dtype=np.float64) for s in scores]) if scores is not None
                      else np.ones(len(frame_of)))
        index_in_frame = np.concatenate([np.arange(len(s)) for s in squares])
        for i, f in enumerate(frame_of):
            if not host["valid"][i]:
                continue
            mask, extra = None, {}
            if masks is not None and masks[f] is not None and len(masks[f]) > index_in_frame[i]:
                mask = masks[f][index_in_frame[i]]
            if extras is not None and len(extras[f]) > index_in_frame[i]:
                extra = extras[f][index_in_frame[i]]
            out[f].append(PersonEstimate(
                poses=host["poses"][i], betas=host["betas"][i], transl=host["transl"][i],
                joints2d=host["joints2d"][i], confidence=float(np.clip(score_rows[i], 0.0, 1.0)),
                bbox=box_rows[i].astype(np.float32), mask=mask,
                extras={"pred_cam": host["pred_cam"][i], "crop_box": all_squares[i].astype(np.float32),
                        "smpl_betas": host["smpl_betas"][i], **extra},
            ))
        return out

    @torch.inference_mode()
    def run_crops(self, crops: np.ndarray, squares: np.ndarray, camera: Camera) -> dict[str, torch.Tensor]:
        """Crops (N, 224, 224, 3) uint8 with their squares (N, 3) -> people in the pipeline camera (tensors)."""
        from backend.nets.pare import normalize_crops

        images = torch.from_numpy(crops)
        if self.device.type == "cuda":
            images = images.pin_memory()
        images = normalize_crops(images.to(self.device, non_blocking=True).float())
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        outputs: list[dict[str, torch.Tensor]] = []
        for start in range(0, images.shape[0], self.max_crops):
            with autocast(self.device, self.amp):
                raw = self.net(images[start:start + self.max_crops])
            outputs.append({k: raw[k].float() for k in ("pred_pose", "pred_cam", "pred_shape")})
        rotmats = torch.cat([o["pred_pose"] for o in outputs])
        cam = torch.cat([o["pred_cam"] for o in outputs])
        shape = torch.cat([o["pred_shape"] for o in outputs])
        return self.people(rotmats, cam, shape, torch.as_tensor(squares, dtype=torch.float32, device=self.device),
                           camera)

    def people(self, rotmats: torch.Tensor, cam: torch.Tensor, smpl_betas: torch.Tensor, squares: torch.Tensor,
               camera: Camera) -> dict[str, torch.Tensor]:
        """Network outputs (N, 24, 3, 3), (N, 3), (N, 10) + crop squares -> poses, betas, transl, joints2d."""
        poses = torch.nan_to_num(matrix_to_axis_angle(rotmats), nan=0.0)
        betas = self.adapter.betas(smpl_betas)
        joints = self.adapter.joints(poses, betas).float()
        k = camera.intrinsics_tensor(device=joints.device)
        valid = cam[:, 0] > 1e-3  # s <= 0 puts the body behind the crop camera
        safe = torch.where(valid[:, None], cam, cam.new_tensor([1.0, 0.0, 0.0]))
        transl = full_image_translation(joints, safe, squares, k)
        valid = valid & (transl[:, 2] > 0)
        return {"poses": poses, "betas": betas, "transl": transl, "joints2d": project(joints + transl[:, None], k),
                "pred_cam": cam, "smpl_betas": smpl_betas, "valid": valid}

    def close(self) -> None:
        self._detector = None
        self.net = None  # type: ignore[assignment]
