"""Scene metrics: per-person pose errors (MPJPE, PA-MPJPE, PVE), depth, ordinal depth, collisions, recall."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch

from backend.coherence.fields import penetration_field

COLLISION_RESOLUTION = 64
COLLISION_THRESHOLD = 0.02  # metres of penetration before a pair counts as colliding (grid error is ~1 cm)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean joint error after aligning the pelvis (joint 0), in the units of the inputs."""
    return float(np.linalg.norm((pred - pred[0]) - (gt - gt[0]), axis=-1).mean())


def pve(pred_vertices: np.ndarray, gt_vertices: np.ndarray, pred_root: np.ndarray, gt_root: np.ndarray) -> float:
    """Mean vertex error after aligning the pelvis."""
    return float(np.linalg.norm((pred_vertices - pred_root) - (gt_vertices - gt_root), axis=-1).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` (N, 3) after the similarity transform (scale, rotation, translation) that best fits ``gt``."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    u, s, vt = np.linalg.svd(p.T @ g)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rotation = u @ fix @ vt
    scale = (s * np.diag(fix)).sum() / (p * p).sum()
    return scale * p @ rotation + mu_g


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean())


def ordinal_pairs(pred_depth: np.ndarray, gt_depth: np.ndarray) -> tuple[int, int]:
    """(correct, total) over all pairs of people: is the nearer one (by pelvis depth) the same?"""
    pairs = list(combinations(range(len(gt_depth)), 2))
    correct = sum(np.sign(pred_depth[i] - pred_depth[j]) == np.sign(gt_depth[i] - gt_depth[j]) for i, j in pairs)
    return int(correct), len(pairs)


def collisions(vertices: np.ndarray, faces: torch.Tensor, threshold: float = COLLISION_THRESHOLD
               ) -> tuple[int, list[float]]:
    """Colliding pairs among meshes (P, V, 3) and each such pair's deepest penetration (metres)."""
    verts = torch.as_tensor(vertices, dtype=torch.float32)
    lo, hi = verts.amin(1), verts.amax(1)
    fields: dict[int, object] = {}
    depths = []
    for i, j in combinations(range(len(verts)), 2):
        if not bool(((lo[i] <= hi[j]) & (lo[j] <= hi[i])).all()):
            continue
        for k in (i, j):
            if k not in fields:
                fields[k] = penetration_field(verts[k], faces, COLLISION_RESOLUTION)
        depth = max(float(fields[i].sample(verts[j]).max()), float(fields[j].sample(verts[i]).max()))
        if depth > threshold:
            depths.append(depth)
    return len(depths), depths
