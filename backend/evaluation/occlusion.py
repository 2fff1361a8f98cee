"""Occlusion sensitivity map (PARE, Kocabas et al. 2021, Fig. 1 d/g, after Zeiler & Fergus): slide a grey square over
the image, run the estimator on every occluded copy and record how far each person's 3D joints move.

Without ground truth the error is measured against the estimator's own unoccluded prediction: per person the
mean Euclidean distance (mm) of the 24 root-relative 3D joints (FK of the predicted pose and shape, pelvis at
the origin, as in PA-free MPJPE after root alignment), averaged over the people of the image. The value at a
grid position is that error when the patch is centred there. People are matched to the unoccluded ones by
their 2D joints; a person the estimator loses under the occluder counts as the largest error of the map.

Box-based estimators (those with ``estimate_boxes``, e.g. ``pare``) keep the unoccluded detections' boxes, as in
the paper's analysis where the crop is given; the detector is then not part of what is measured, and positions
whose patch misses every crop are exactly 0 without running the network. Other estimators run in full on
every occluded copy (slow: positions x frame time).

Patch size: the paper uses 40 px at the 224 crop; by default the patch is 40/224 of the median person crop side
(box-based) or of the image's shorter side, and the stride is half the patch.

Output: a PNG of the image's size, the map (nearest grid position per pixel, JET colours, 0 = blue, the map's
maximum = red) blended over the image, with a white square of the patch size in the top-left corner (the
paper's convention); :class:`OcclusionResult` holds the raw grid in mm.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from backend.errors import OptionError
from backend.geometry.camera import Camera

GREY = 128
PAPER_PATCH_FRACTION = 40 / 224


@dataclass
class OcclusionResult:
    grid: np.ndarray  # (gh, gw) mean joint displacement in mm with the patch centred at (ys[i], xs[j])
    xs: np.ndarray  # (gw,) patch centre columns, pixels
    ys: np.ndarray  # (gh,) patch centre rows, pixels
    patch: int
    stride: int
    people: int
    output: Path
    lost: int = 0  # positions where at least one person was not found any more
    per_person: np.ndarray = field(default_factory=lambda: np.zeros((0,)))  # (people, gh, gw) mm, NaN = lost


def _joints(body: Any, poses: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Root-relative posed joints (N, 24, 3), metres."""
    from backend.body.kinematics import forward_kinematics
    from backend.body.rotations import axis_angle_to_matrix

    dtype = body.v_template.dtype
    p = torch.as_tensor(np.asarray(poses), dtype=dtype, device=body.v_template.device)
    b = torch.as_tensor(np.asarray(betas), dtype=dtype, device=body.v_template.device)
    with torch.inference_mode():
        joints, _ = forward_kinematics(axis_angle_to_matrix(p), body.rest_joints(b), body.parents.tolist())
    joints = joints - joints[:, :1]
    return joints.cpu().numpy()


def _match(ref2d: np.ndarray, people: list, scale: np.ndarray) -> list[int | None]:
    """For each reference person (R, 24, 2), the index of the closest estimate by mean 2D joint distance,
    if closer than half the person's size; greedy, one estimate per reference."""
    if not people:
        return [None] * len(ref2d)
    cand = np.stack([p.joints2d for p in people])
    dist = np.linalg.norm(ref2d[:, None] - cand[None], axis=-1).mean(-1)  # (R, C)
    out: list[int | None] = [None] * len(ref2d)
    used: set[int] = set()
    for flat in np.argsort(dist, axis=None):
        r, c = divmod(int(flat), dist.shape[1])
        if out[r] is None and c not in used and dist[r, c] < 0.5 * scale[r]:
            out[r], _ = c, used.add(c)
    return out


def _occlude(image: np.ndarray, x: int, y: int, patch: int, grey: int) -> np.ndarray:
    out = image.copy()
    h = patch // 2
    out[max(0, y - h):max(0, y - h + patch), max(0, x - h):max(0, x - h + patch)] = grey
    return out


def _hits(squares: np.ndarray, x: int, y: int, patch: int) -> bool:
    """Does the patch centred at (x, y) overlap any crop square (cx, cy, side)?"""
    h = patch / 2
    return bool(np.any((np.abs(squares[:, 0] - x) < squares[:, 2] / 2 + h)
                       & (np.abs(squares[:, 1] - y) < squares[:, 2] / 2 + h)))


def render_map(image: np.ndarray, result_grid: np.ndarray, xs: np.ndarray, ys: np.ndarray, patch: int,
               alpha: float = 0.55) -> np.ndarray:
    """RGB uint8 (H, W, 3): the grid as a JET heat map over the image (nearest grid position per pixel)."""
    h, w = image.shape[:2]
    grid = np.asarray(result_grid, dtype=np.float64)
    finite = np.isfinite(grid)
    top = float(grid[finite].max()) if finite.any() else 0.0
    grid = np.where(finite, grid, top)
    ix = np.abs(np.arange(w)[:, None] - xs[None]).argmin(1)
    iy = np.abs(np.arange(h)[:, None] - ys[None]).argmin(1)
    full = grid[iy][:, ix]
    norm = np.zeros_like(full) if top <= 0 else full / top
    heat = cv2.applyColorMap(np.round(norm * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    grey = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    out = np.round(alpha * heat + (1 - alpha) * grey).astype(np.uint8)
    side = min(patch, h - 3, w - 3)
    cv2.rectangle(out, (2, 2), (2 + side, 2 + side), (255, 255, 255), 1)
    return out


def occlusion_map(
    estimator_name: str,
    image_path: str | Path,
    out_png: str | Path,
    *,
    body_model: str = "open-body",
    device: str = "cpu",
    patch: int | None = None,
    stride: int | None = None,
    boxes: np.ndarray | None = None,
    estimator_options: dict | None = None,
    camera: Camera | None = None,
    batch: int = 8,
    grey: int = GREY,
    estimator: Any = None,
    body: Any = None,
) -> OcclusionResult:
    """Write the occlusion sensitivity map of ``estimator_name`` on one image to ``out_png`` (see module doc).

    ``boxes`` (P, 4) x0, y0, x1, y1 fixes the people for box-based estimators (default: the estimator's own
    detector on the unoccluded image). ``estimator`` / ``body`` reuse already created objects."""
    from backend.body import load_body_model
    from backend.estimators.registry import EstimatorError, create_estimator
    from backend.runtime.device import resolve_device

    path = Path(image_path)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OptionError(f"cannot read image {path}")
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    camera = camera or Camera.from_fov(width, height)
    torch_device = resolve_device(device) if estimator is None or body is None else None
    body = body if body is not None else load_body_model(body_model, device=torch_device)
    own = estimator is None
    estimator = estimator if estimator is not None else create_estimator(
        estimator_name, body, torch_device, **(estimator_options or {}))
    try:
        box_based = hasattr(estimator, "estimate_boxes")
        if box_based:
            if boxes is None:
                boxes = estimator.detect(image)[0]
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

            def run(frames: Sequence[np.ndarray]) -> list:
                return estimator.estimate_boxes(frames, [boxes] * len(frames), camera)
        else:
            def run(frames: Sequence[np.ndarray]) -> list:
                return estimator.estimate(frames, camera)

        reference = run([image])[0]
        if not reference:
            raise EstimatorError(f"{estimator_name}: nobody found in {path}; nothing to analyse")
        ref3d = _joints(body, np.stack([p.poses for p in reference]), np.stack([p.betas for p in reference]))
        ref2d = np.stack([p.joints2d for p in reference])
        size = np.linalg.norm(ref2d.max(1) - ref2d.min(1), axis=-1).clip(1.0)
        squares = np.stack([p.extras["crop_box"] for p in reference]) if box_based and all(
            "crop_box" in p.extras for p in reference) else None
        base = float(np.median(squares[:, 2])) if squares is not None else float(min(height, width))
        patch = int(patch or max(4, round(PAPER_PATCH_FRACTION * base)))
        stride = int(stride or max(1, patch // 2))
        if patch < 1 or stride < 1:
            raise OptionError("patch and stride must be positive")
        xs = np.arange(stride // 2, width, stride)
        ys = np.arange(stride // 2, height, stride)
        per_person = np.zeros((len(reference), len(ys), len(xs)))
        todo = [(i, j) for i, y in enumerate(ys) for j, x in enumerate(xs)
                if squares is None or _hits(squares, int(x), int(y), patch)]
        for start in range(0, len(todo), max(1, batch)):
            chunk = todo[start:start + batch]
            frames = [_occlude(image, int(xs[j]), int(ys[i]), patch, grey) for i, j in chunk]
            for (i, j), people in zip(chunk, run(frames)):
                match = _match(ref2d, people, size)
                found = [m for m in match if m is not None]
                joints = (_joints(body, np.stack([people[m].poses for m in found]),
                                  np.stack([people[m].betas for m in found])) if found else None)
                k = 0
                for r, m in enumerate(match):
                    if m is None:
                        per_person[r, i, j] = np.nan
                        continue
                    per_person[r, i, j] = 1000.0 * np.linalg.norm(joints[k] - ref3d[r], axis=-1).mean()
                    k += 1
    finally:
        if own:
            estimator.close()
    lost = int(np.isnan(per_person).any(0).sum())
    finite = per_person[np.isfinite(per_person)]
    worst = float(finite.max()) if finite.size else 0.0
    grid = np.where(np.isnan(per_person), worst, per_person).mean(0)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = render_map(image, grid, xs, ys, patch)
    tmp = out.with_name(out.stem + ".part" + (out.suffix or ".png"))
    if not cv2.imwrite(str(tmp), picture[..., ::-1]):
        raise OptionError(f"cannot write {out}")
    tmp.replace(out)
    return OcclusionResult(grid, xs, ys, patch, stride, len(reference), out, lost, per_person)


# ---------------------------------------------------------------- command line (wired by backend.app.cli)


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``occlusion IMAGE -o MAP.png [--estimator NAME] [--patch PX] [--stride PX] [--body-model] [--device]
    [--checkpoint PATH] [--option KEY=VALUE ...]``; the handler is :func:`run_cli`."""
    cmd = commands.add_parser("occlusion", help="occlusion sensitivity map of an estimator on one image (PNG)")
    cmd.add_argument("image", type=Path)
    cmd.add_argument("-o", "--output", type=Path, required=True, help="heat-map PNG to write")
    cmd.add_argument("--estimator", default="pare")
    cmd.add_argument("--body-model", default="open-body")
    cmd.add_argument("--device", default="auto")
    cmd.add_argument("--patch", type=int, help="occluder side in pixels (default: 40/224 of the person crop)")
    cmd.add_argument("--stride", type=int, help="step between patch positions in pixels (default: patch/2)")
    cmd.add_argument("--checkpoint", help="estimator checkpoint path (default: the installed one)")
    cmd.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="estimator option, repeatable (e.g. use_mean_camshape=true, bbox_scale=1.2)")
    cmd.set_defaults(handler=run_cli)
    return cmd


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_cli(args: argparse.Namespace) -> int:
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise OptionError(f"--option wants KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = _parse_value(value.strip())
    if args.checkpoint:
        options["checkpoint"] = args.checkpoint
    result = occlusion_map(args.estimator, args.image, args.output, body_model=args.body_model,
                           device=args.device, patch=args.patch, stride=args.stride, estimator_options=options)
    print(f"wrote {result.output}: {result.people} people, patch {result.patch} px, stride {result.stride} px, "
          f"max {np.nanmax(result.grid):.1f} mm", file=sys.stderr)
    return 0
