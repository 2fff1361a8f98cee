"""Centre-map parsing for ROMP (2D) and BEV (3D): max-pool NMS, top-K, threshold; batched, on the maps' device.

The official code takes top-K per channel and then top-K over the batch item; with one channel (ROMP) or over
the flattened depth x height x width volume (BEV) a single top-K gives the same set, in the same order
(batch-major, scores descending). Scores are raw map values (no sigmoid), compared with ``> threshold``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ROMP_CENTER_THRESH = 0.25  # simple_romp --center_thresh default
BEV_CENTER_THRESH = 0.08  # BEV.pth with --crowd (on by default): long_conf_dict; 0.1 without it
BEV_FT_AGORA_CENTER_THRESH = 0.12  # BEV_ft_agora.pth with --crowd; 0.25 without
MAX_PEOPLE = 64
NMS_KERNEL = 5


def _topk(scores: torch.Tensor, thresh: float, max_people: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, M) NMS'd scores -> batch ids (N,), flat indices (N,), scores (N,) above ``thresh``."""
    values, indices = torch.topk(scores, min(max_people, scores.shape[1]), dim=1)
    keep = values > thresh
    batch_ids = torch.nonzero(keep, as_tuple=True)[0]
    return batch_ids, indices[keep], values[keep]


def parse_centers_2d(
    center_maps: torch.Tensor, thresh: float = ROMP_CENTER_THRESH, max_people: int = MAX_PEOPLE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 1, H, W) -> batch ids (N,), flat indices y*W+x (N,), scores (N,)."""
    maps = center_maps.float()
    pooled = F.max_pool2d(maps, NMS_KERNEL, stride=1, padding=NMS_KERNEL // 2)
    kept = torch.where(pooled == maps, maps, torch.zeros_like(maps))
    return _topk(kept.flatten(1), thresh, max_people)


def parse_centers_3d(
    center_maps: torch.Tensor, thresh: float = BEV_CENTER_THRESH, max_people: int = MAX_PEOPLE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, D, H, W) -> batch ids (N,), (z, y, x) indices (N, 3), scores (N,)."""
    maps = center_maps.float()
    _, d, h, w = maps.shape
    pooled = F.max_pool3d(maps.unsqueeze(1), NMS_KERNEL, stride=1, padding=NMS_KERNEL // 2).squeeze(1)
    kept = torch.where(pooled == maps, maps, torch.zeros_like(maps))
    batch_ids, flat, scores = _topk(kept.flatten(1), thresh, max_people)
    zyx = torch.stack([flat // (h * w), (flat // w) % h, flat % w], dim=1)
    return batch_ids, zyx, scores
