"""How the GPU check decides that two runs agree: relative L2 of raw network outputs, and people matched across
runs (same count per frame, joints within a pixel budget). Tolerances are stated here once and copied into the
report, so a reader sees what "agrees" meant.

Why these numbers: CUDA convolutions use TF32 by default (torch.backends.cudnn.allow_tf32), whose 10-bit
mantissa gives relative errors around 1e-3 per layer, so a deep HRNet's fp32 maps differ from the CPU's by
about 1e-3 to 1e-2 in relative L2; bf16 (8-bit mantissa) and fp16 (11 bits, but autocast keeps reductions in
fp32) give a few 1e-2. With TF32 off ("fp32-strict") only the summation order differs: about 1e-5 to 1e-4.
These are first estimates: the first CUDA run shows the real margins. The letterbox bounds are the measured
cv2 fixed-point rounding (tests/test_romp.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Tolerance:
    """Bounds for one comparison: relative L2 of tensors; per matched person the median and maximum joint
    distance in pixels and the relative L2 of the translations; ``count_diff``: people a frame may gain or
    lose (a centre score at the threshold can flip)."""

    rel_l2: float
    median_px: float = float("inf")
    max_px: float = float("inf")
    transl_rel: float = float("inf")
    count_diff: int = 0

    def describe(self) -> str:
        parts = [f"rel L2 <= {self.rel_l2:g}"]
        if np.isfinite(self.median_px):
            parts.append(f"joints median <= {self.median_px:g} px, max <= {self.max_px:g} px")
        if np.isfinite(self.transl_rel):
            parts.append(f"translations rel L2 <= {self.transl_rel:g}")
        if self.count_diff:
            parts.append(f"people per frame +-{self.count_diff}")
        return ", ".join(parts)


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rel_l2=2e-2, median_px=1.0, max_px=8.0, transl_rel=0.01),  # device (TF32 convs) vs CPU
    "fp32-strict": Tolerance(rel_l2=1e-3),  # device with TF32 off vs CPU: only summation order differs
    "bf16": Tolerance(rel_l2=0.08, median_px=8.0, max_px=60.0, transl_rel=0.05, count_diff=1),  # vs device fp32
    "fp16": Tolerance(rel_l2=0.03, median_px=4.0, max_px=40.0, transl_rel=0.03, count_diff=1),
    "fit": Tolerance(rel_l2=0.05, median_px=6.0, max_px=60.0, transl_rel=0.05, count_diff=1),  # nearby minima
    "coherence": Tolerance(rel_l2=1e-2, median_px=2.0, max_px=20.0, transl_rel=0.01),  # same input people
    "finder": Tolerance(rel_l2=1.0, median_px=2.0, max_px=30.0, count_diff=1),  # landmarks (px), ONNX vs torch
}
LETTERBOX_MAX_DIFF = 1.0  # grey levels: cv2's fixed-point rounding, at most one level
LETTERBOX_MEAN_DIFF = 0.01


def rel_l2(reference: Any, other: Any) -> float:
    """||a - b|| / ||a|| over all elements (float64); 0 for two empty or all-zero inputs, inf for a shape
    mismatch or non-finite values in ``other`` only."""
    a = _array(reference)
    b = _array(other)
    if a.shape != b.shape:
        return float("inf")
    if not np.isfinite(b).all() and np.isfinite(a).all():
        return float("inf")
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    norm = float(np.linalg.norm(a))
    diff = float(np.linalg.norm(a - b))
    return diff / norm if norm > 0 else diff


def compare_tensors(name: str, reference: Any, other: Any, tolerance: Tolerance) -> dict:
    """One named tensor comparison as a report row: ``ok`` when within ``tolerance.rel_l2``."""
    error = rel_l2(reference, other)
    a, b = _array(reference), _array(other)
    max_abs = float(np.abs(a - b).max()) if a.shape == b.shape and a.size else float("inf") if a.shape != b.shape \
        else 0.0
    return {"what": name, "rel_l2": error, "max_abs": max_abs, "tolerance": tolerance.describe(),
            "ok": bool(error <= tolerance.rel_l2)}


def match_people(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> list[tuple[int, int]]:
    """Pairs (i, j) of one frame's people, joints (P, J, 2), matched by least mean joint distance (Hungarian)."""
    if len(reference) == 0 or len(other) == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    a = np.stack([np.asarray(p, np.float64) for p in reference])
    b = np.stack([np.asarray(p, np.float64) for p in other])
    cost = np.linalg.norm(a[:, None] - b[None], axis=-1).mean(-1)
    rows, cols = linear_sum_assignment(np.nan_to_num(cost, nan=1e12, posinf=1e12))
    return list(zip(rows.tolist(), cols.tolist()))


def compare_people(name: str, reference: Sequence[Sequence[Any]], other: Sequence[Sequence[Any]],
                   tolerance: Tolerance) -> dict:
    """Per-frame lists of PersonEstimate from two runs: counts, then joints2d (px) and translations (rel L2)
    of the matched people."""
    count_diff = max((abs(len(a) - len(b)) for a, b in zip(reference, other)), default=0)
    dists, t_ref, t_other = [], [], []
    for frame_a, frame_b in zip(reference, other):
        pairs = match_people([p.joints2d for p in frame_a], [p.joints2d for p in frame_b])
        for i, j in pairs:
            dists.append(np.linalg.norm(np.asarray(frame_a[i].joints2d, np.float64)
                                        - np.asarray(frame_b[j].joints2d, np.float64), axis=-1))
            t_ref.append(frame_a[i].transl)
            t_other.append(frame_b[j].transl)
    people = int(sum(len(f) for f in reference))
    all_d = np.concatenate(dists) if dists else np.zeros(0)
    median = float(np.median(all_d)) if all_d.size else 0.0
    worst = float(all_d.max()) if all_d.size else 0.0
    transl = rel_l2(np.asarray(t_ref, np.float64), np.asarray(t_other, np.float64)) if t_ref else 0.0
    frames_ok = len(reference) == len(other)
    ok = (frames_ok and count_diff <= tolerance.count_diff and median <= tolerance.median_px
          and worst <= tolerance.max_px and transl <= tolerance.transl_rel)
    return {"what": name, "people": people, "matched": len(t_ref), "count_diff": int(count_diff),
            "joints_median_px": median, "joints_max_px": worst, "transl_rel_l2": transl,
            "tolerance": tolerance.describe(), "ok": bool(ok)}


def letterbox_comparison(host: torch.Tensor, device: torch.Tensor) -> dict:
    """The device letterbox (torch bicubic) against cv2's, in grey levels."""
    diff = (device.detach().float().cpu() - host.detach().float().cpu()).abs()
    same_shape = diff.shape == host.shape
    max_d = float(diff.max()) if same_shape and diff.numel() else float("inf")
    mean_d = float(diff.mean()) if same_shape and diff.numel() else float("inf")
    return {"what": "letterbox device vs cv2", "max_abs": max_d, "mean_abs": mean_d,
            "tolerance": f"max <= {LETTERBOX_MAX_DIFF:g}, mean < {LETTERBOX_MEAN_DIFF:g} grey levels",
            "ok": bool(max_d <= LETTERBOX_MAX_DIFF and mean_d < LETTERBOX_MEAN_DIFF)}


def tolerances_table() -> dict[str, dict]:
    return {name: asdict(t) | {"text": t.describe()} for name, t in TOLERANCES.items()}


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)
