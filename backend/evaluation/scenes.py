"""Synthetic multi-person scenes with ground truth, and what an estimator would see of them.

People stand on a ground plane in front of a level pinhole camera, spread over a depth range so that they
overlap in the image; boxes occlude some of them. Instance masks and depth come from ``backend.geometry.render``;
2D keypoints are the true joints with pixel noise, outliers and dropout (a keypoint hidden behind another
person or a box, or outside the image, is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from backend.coherence.fields import penetration_field
from backend.evaluation.poses import sample_pose
from backend.geometry.camera import Camera
from backend.geometry.render import rasterize

_BOX_FACES = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                           [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn; the defaults make a crowd with frequent overlaps."""

    width: int = 640
    height: int = 480
    fov_degrees: float = 60.0
    depth_range: tuple[float, float] = (3.0, 10.0)
    min_spacing: float = 0.6  # metres between pelvises on the ground
    max_boxes: int = 3
    keypoint_noise_px: float = 2.0
    keypoint_dropout: float = 0.03
    keypoint_outliers: float = 0.02


@dataclass
class SyntheticScene:
    camera: Camera
    poses: np.ndarray  # (P, 24, 3)
    betas: np.ndarray  # (P, K)
    transl: np.ndarray  # (P, 3)
    joints: np.ndarray  # (P, 24, 3)
    vertices: np.ndarray  # (P, V, 3)
    index_map: np.ndarray  # (H, W): visible person, -1 background or box
    depth: np.ndarray  # (H, W) nearest surface (people and boxes), inf where empty
    keypoints: np.ndarray  # (P, 24, 2) detected 2D joints, NaN where dropped
    boxes: list[np.ndarray] = field(default_factory=list)  # (8, 3) corners of each occluder

    @property
    def num_people(self) -> int:
        return len(self.poses)

    def mask(self, person: int) -> np.ndarray:
        """The visible (modal) instance mask of one person."""
        return self.index_map == person


def box_mesh(lo: np.ndarray, hi: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """An axis-aligned box as 8 vertices and 12 triangles."""
    corners = [[(lo, hi)[a][0], (lo, hi)[b][1], (lo, hi)[c][2]] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    return torch.tensor(corners, dtype=torch.float32), _BOX_FACES


def make_scene(rng: np.random.Generator, body: torch.nn.Module, num_people: int,
               config: SceneConfig | None = None) -> SyntheticScene:
    """A scene of ``num_people`` non-colliding people (fewer if the space runs out) with occluders."""
    config = config or SceneConfig()
    camera = Camera.from_fov(config.width, config.height, config.fov_degrees)
    ground = rng.uniform(1.3, 1.9)  # camera height above the ground = ground's y in camera axes
    people = _place_people(rng, body, camera, num_people, ground, config)
    poses, betas, transl = (np.stack([p[k] for p in people]) for k in range(3))
    with torch.no_grad():
        out = body(torch.tensor(poses, dtype=torch.float32), torch.tensor(betas, dtype=torch.float32),
                   torch.tensor(transl, dtype=torch.float32))
    boxes = _place_boxes(rng, camera, transl, ground, config)
    meshes = [(v, body.faces) for v in out.vertices] + [box_mesh(b.min(0), b.max(0)) for b in boxes]
    frags = rasterize([m[0] for m in meshes], [m[1] for m in meshes], camera)
    index = frags.index_map.numpy()
    index[index >= len(people)] = -1
    depth = frags.depth.min(0).values.numpy()
    keypoints = _keypoints(rng, out.joints, camera, index, config)
    return SyntheticScene(camera, poses, betas, transl, out.joints.numpy(), out.vertices.numpy(), index, depth,
                          keypoints, boxes)


def _place_people(rng, body, camera, count, ground, config) -> list[tuple[np.ndarray, ...]]:
    placed: list[tuple[np.ndarray, ...]] = []
    fields = []
    for _ in range(count * 30):
        if len(placed) == count:
            break
        z = rng.uniform(*config.depth_range)
        half_width = 0.85 * z * (camera.width / 2) / camera.fx
        x = rng.uniform(-half_width, half_width)
        if any(np.hypot(x - p[2][0], z - p[2][2]) < config.min_spacing for p in placed):
            continue
        pose, betas = sample_pose(rng), rng.normal(0.0, 0.7, body.num_betas)
        with torch.no_grad():
            verts = body(torch.tensor(pose[None], dtype=torch.float32),
                         torch.tensor(betas[None], dtype=torch.float32)).vertices[0]
        transl = np.array([x, ground - float(verts[:, 1].max()), z])
        verts = verts + torch.tensor(transl, dtype=torch.float32)
        if any(f.sample(verts).max() > 0 for f in fields):
            continue
        candidate = penetration_field(verts, body.faces, 32)
        if any(candidate.sample(torch.tensor(p[3])).max() > 0 for p in placed):
            continue
        placed.append((pose, betas, transl, verts.numpy()))
        fields.append(candidate)
    return placed


def _place_boxes(rng, camera, transl, ground, config) -> list[np.ndarray]:
    boxes = []
    for _ in range(rng.integers(0, config.max_boxes + 1)):
        size = rng.uniform([0.4, 0.5, 0.4], [1.2, 1.5, 1.0])
        z = rng.uniform(config.depth_range[0] - 1.0, config.depth_range[1])
        x = rng.uniform(-0.7, 0.7) * z * (camera.width / 2) / camera.fx
        if np.any(np.hypot(transl[:, 0] - x, transl[:, 2] - z) < 0.5 + size[[0, 2]].max()):
            continue
        lo = np.array([x - size[0] / 2, ground - size[1], z - size[2] / 2])
        boxes.append(np.array([lo + size * np.array([a, b, c]) for a in (0, 1) for b in (0, 1) for c in (0, 1)]))
    return boxes


def _keypoints(rng, joints, camera, index, config) -> np.ndarray:
    """True 2D joints, visible where the person itself is the nearest surface, then noise, outliers, dropout."""
    pixels = camera.project(joints).numpy()
    p, j = pixels.shape[:2]
    col, row = np.round(pixels[..., 0]).astype(int), np.round(pixels[..., 1]).astype(int)
    inside = (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
    owner = np.full((p, j), -1)
    owner[inside] = index[row[inside], col[inside]]
    visible = inside & (owner == np.arange(p)[:, None]) & (rng.random((p, j)) > config.keypoint_dropout)
    noisy = pixels + rng.normal(0.0, config.keypoint_noise_px, pixels.shape)
    outlier = rng.random((p, j)) < config.keypoint_outliers
    noisy[outlier] += rng.normal(0.0, 25.0, (int(outlier.sum()), 2))
    noisy[~visible] = np.nan
    return noisy
