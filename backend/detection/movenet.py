"""MoveNet MultiPose (Google, Apache-2.0): a bottom-up detector of whole bodies with 17 COCO keypoints.

BlazePose's detector and BlazeFace both anchor on a face: they miss people seen from behind, jumping, or cut by
the top of the frame. MoveNet finds a person from the body's centre, so it covers those. We run its network
(``tfjs.TfjsGraph``, up to its six heads) and decode the heads ourselves, as the model's own post-processing
does (CenterNet: peaks of the centre heatmap, keypoints regressed from the centre and snapped to the keypoint
heatmaps with a Gaussian weight of the distance, inside the person's box), but without its limit of six people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backend.detection import rois
from backend.detection.runtime import Network
from backend.detection.tfjs import TfjsGraph

_PREFIX = "StatefulPartitionedCall/"
HEADS = {
    "center": _PREFIX + "center_0/conv2d_4/BiasAdd",
    "box_scale": _PREFIX + "box_scale_0/conv2d_5/BiasAdd",
    "box_offset": _PREFIX + "box_offset_0/conv2d_6/BiasAdd",
    "heatmap": _PREFIX + "kpt_heatmap_0/conv2d_7/BiasAdd",
    "regress": _PREFIX + "kpt_regress_0/conv2d_8/BiasAdd",
    "offset": _PREFIX + "kpt_offset_0/conv2d_9/BiasAdd",
}
STRIDE = 4
GAUSSIAN_SCALE = 0.3  # the model's own: weight = exp(-d^2 / (0.3 x min(feature height, width)))
KEYPOINT_THRESHOLD = 0.127  # the model's own: keypoints below do not count towards the person's score
# COCO keypoints
NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 0, 5, 6, 11, 12


@dataclass
class BodyDetections:
    """N people in image pixels."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1
    keypoints: np.ndarray  # (N, 17, 2) COCO order
    keypoint_scores: np.ndarray  # (N, 17)
    scores: np.ndarray  # (N,)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, index) -> "BodyDetections":
        idx = np.asarray(index, dtype=np.int64)
        return BodyDetections(self.boxes[idx], self.keypoints[idx], self.keypoint_scores[idx], self.scores[idx])

    @classmethod
    def concatenate(cls, parts: list["BodyDetections"]) -> "BodyDetections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.zeros((0, 4)), np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("boxes", "keypoints",
                                                                                "keypoint_scores", "scores")))


class MultiPoseDetector:
    """MoveNet MultiPose over square tiles of ``input_size`` pixels (a multiple of 32)."""

    def __init__(self, model_json, device: str | torch.device = "cpu", input_size: int = 256,
                 min_score: float = 0.2, min_centre: float = 0.1) -> None:
        module = TfjsGraph(model_json, list(HEADS.values()))
        self.graph = Network(module, module.outputs, Path(model_json).with_suffix(".bin"), device,
                             (1, input_size, input_size, 3))
        self.device = torch.device(device)
        self.input_size = int(input_size)
        self.min_score = min_score
        self.min_centre = min_centre

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, tiles: list[tuple[int, int, int]]) -> BodyDetections:
        height, width = image.shape[:2]
        regions = rois.letterbox_regions(width, height, np.asarray(tiles, np.float64).reshape(-1, 3))
        if len(regions) == 0:
            return BodyDetections.concatenate([])
        pixels = torch.from_numpy(rois.crops(image, regions, self.input_size)).to(self.device).float()
        heads = self.graph(pixels)
        found = []
        for i, region in enumerate(regions):
            det = self._decode({k: heads[v][i] for k, v in HEADS.items()})
            keypoints = rois.to_image(np.repeat(region[None], len(det), 0), det.keypoints)
            corners = rois.to_image(np.repeat(region[None], len(det), 0), det.boxes.reshape(-1, 2, 2))
            found.append(BodyDetections(corners.reshape(-1, 4), keypoints, det.keypoint_scores, det.scores))
        return BodyDetections.concatenate(found)

    def _decode(self, heads: dict[str, torch.Tensor]) -> BodyDetections:
        """People of one input from its heads (each (Hf, Wf, C)); coordinates normalised to the input (0..1)."""
        centre = torch.sigmoid(heads["center"][..., 0])
        hf, wf = centre.shape
        peaks = (centre == F.max_pool2d(centre[None, None], 3, 1, 1)[0, 0]) & (centre >= self.min_centre)
        cy, cx = torch.nonzero(peaks, as_tuple=True)
        if len(cy) == 0:
            return BodyDetections.concatenate([])
        centre_score = centre[cy, cx]
        regress = heads["regress"][cy, cx].view(-1, 17, 2)
        guess = torch.stack([cy[:, None] + regress[..., 0], cx[:, None] + regress[..., 1]], -1)  # (P, 17, 2) y, x
        scale = heads["box_scale"][cy, cx].clamp(min=0)
        middle = torch.stack([cy, cx], -1).float() + heads["box_offset"][cy, cx]
        box = torch.cat([middle - scale / 2, middle + scale / 2], -1)  # y0, x0, y1, x1 in cells
        box = torch.stack([box[:, 0].clamp(0, hf), box[:, 1].clamp(0, wf), box[:, 2].clamp(0, hf),
                           box[:, 3].clamp(0, wf)], -1)
        heat = torch.sigmoid(heads["heatmap"])  # (Hf, Wf, 17)
        ys = torch.arange(hf, dtype=torch.float32)[:, None, None, None]
        xs = torch.arange(wf, dtype=torch.float32)[None, :, None, None]
        distance2 = (ys - guess[..., 0]) ** 2 + (xs - guess[..., 1]) ** 2  # (Hf, Wf, P, 17)
        weight = torch.exp(-distance2 / (GAUSSIAN_SCALE * min(hf, wf)))
        inside = ((ys >= box[:, 0, None]) & (ys < box[:, 2, None]) & (xs >= box[:, 1, None]) & (xs < box[:, 3, None]))
        score_map = heat[:, :, None, :] * weight * inside
        flat = score_map.reshape(hf * wf, *score_map.shape[2:])
        best = flat.argmax(dim=0)  # (P, 17)
        by, bx = best // wf, best % wf
        joint_score = flat.gather(0, best[None])[0]
        offset = heads["offset"].view(hf, wf, 17, 2)
        joints = torch.arange(17)[None].expand_as(by)
        refined = torch.stack([by + offset[by, bx, joints, 0], bx + offset[by, bx, joints, 1]], -1)
        counted = joint_score > KEYPOINT_THRESHOLD
        person = centre_score * (joint_score * counted).sum(-1) / counted.sum(-1).clamp(min=1)
        keep = person >= self.min_score
        norm = torch.tensor([hf, wf], dtype=torch.float32)
        keypoints = (refined / norm).flip(-1)[keep]  # x, y in 0..1
        boxes = torch.stack([box[:, 1] / wf, box[:, 0] / hf, box[:, 3] / wf, box[:, 2] / hf], -1)[keep]
        return BodyDetections(boxes.double().numpy(), keypoints.double().numpy(),
                              joint_score[keep].double().numpy(), person[keep].double().numpy())


def body_regions(det: BodyDetections, enlarge: float = 1.25) -> np.ndarray:
    """Landmark-model regions for detected bodies: centred on the hips and turned so the shoulders are up when
    both are seen, else the box centre upright; side from the box's longer side (x ``enlarge``)."""
    regions = np.zeros((len(det), 4))
    for i in range(len(det)):
        box, kp, sc = det.boxes[i], det.keypoints[i], det.keypoint_scores[i]
        side = max(box[2] - box[0], box[3] - box[1]) * enlarge
        hips, shoulders = kp[[L_HIP, R_HIP]], kp[[L_SHOULDER, R_SHOULDER]]
        if sc[[L_HIP, R_HIP, L_SHOULDER, R_SHOULDER]].min() > KEYPOINT_THRESHOLD:
            centre = hips.mean(0)
            up = shoulders.mean(0) - centre
            rotation = rois.normalise_angle(np.array([0.5 * np.pi - np.arctan2(-up[1], up[0])]))[0]
        else:
            centre, rotation = 0.5 * (box[:2] + box[2:]), 0.0
        regions[i] = (centre[0], centre[1], side, rotation)
    return regions
