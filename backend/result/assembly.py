"""From tracks to the result file's arrays: one shape per track, short gaps bridged, motion smoothed, 2D joints.

Each track gets one body shape (the median of its per-frame shapes); translations are corrected so each row's
pelvis stays where the estimator put it. In a clip, gaps of at most ``smoothing.filled_gap_frames(fps)`` frames
(0.15 s) are bridged by interpolated rows, flagged in ``observed``; longer gaps stay empty, and the Blender scene
hides the person there rather than show a body guessed across them. Then each track's motion is smoothed
(``smoothing``; None or smoothness 0 = raw) and ``joints2d`` is computed from the final bodies, so
``FK(poses, betas) + transl`` projects exactly onto ``joints2d``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from backend.body import BodyModel
from backend.geometry.camera import Camera
from backend.result.contract import empty_track_arrays
from backend.sources.frames import SourceInfo
from backend.tracking.smoothing import SmoothingSettings, fill_short_gaps, filled_gap_frames, smooth_motion
from backend.tracking.tracker import Track


def assemble_result(
    tracks: list[Track], body: BodyModel, camera: Camera, info: SourceInfo, estimator: str, num_frames: int,
    smoothing: SmoothingSettings | None = None,
) -> dict[str, np.ndarray]:
    """The result-file arrays of ``tracks`` (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {
        "fps": np.float64(info.fps),
        "image_size": np.array([info.width, info.height], np.int64),
        "focal_length": np.array([camera.fx, camera.fy], np.float64),
        "principal_point": np.array([camera.cx, camera.cy], np.float64),
        "num_frames": np.int64(num_frames),
        "body_model": np.str_(body.name),
        "estimator": np.str_(estimator),
        "source_path": np.str_(str(Path(info.path).resolve())),
        "frame_indices": np.arange(info.first_frame, info.first_frame + num_frames, dtype=np.int64),
        "joint_names": np.array(body.joint_names),
        "parents": body.parents.cpu().numpy().astype(np.int64),
        "faces": body.faces.cpu().numpy().astype(np.int64),
        "skin_weights": body.skin_weights.detach().cpu().numpy().astype(np.float32),
    }
    if not tracks:
        arrays.update(empty_track_arrays(body.num_betas))
        arrays["rest_vertices"] = np.zeros((0, body.num_vertices, 3), np.float32)
    else:
        fill = filled_gap_frames(info.fps) if info.kind != "image" else 0
        arrays.update(_track_arrays(tracks, body, camera, info.fps, smoothing, fill))
    arrays.update(phenotype_arrays(body, arrays["betas"]))
    arrays.update(rig_arrays(body, arrays["betas"]))
    return _in_full_size_pixels(arrays, info)


def rig_arrays(body: BodyModel, betas: np.ndarray) -> dict[str, np.ndarray]:
    """Anny's own rig for the add-on (bodies that have one): its bones, their rest heads and tails per track in
    the frame of ``rest_joints`` (linear in the betas), and its skin weights (sparse: bones and weights per
    vertex); nothing for other bodies."""
    rig = getattr(body, "rig", None)
    if not rig:
        return {}
    k = min(betas.shape[1], rig["rig_bone_end_dirs"].shape[-1])
    ends = rig["rig_bone_ends"] + np.einsum("abck,tk->tabc", rig["rig_bone_end_dirs"][..., :k], betas[:, :k])
    return {"rig_bone_names": rig["rig_bone_names"], "rig_bone_parents": rig["rig_bone_parents"].astype(np.int64),
            "rig_bone_joints": rig["rig_bone_joints"].astype(np.int64), "rig_bone_ends": ends.astype(np.float32),
            "rig_weight_bones": rig["rig_weight_bones"].astype(np.int64),
            "rig_weight_values": rig["rig_weight_values"].astype(np.float32)}


def phenotype_arrays(body: BodyModel, betas: np.ndarray) -> dict[str, np.ndarray]:
    """Each track's phenotype, for bodies that have one (Anny); nothing for the others."""
    phenotype = getattr(body, "phenotype", None)
    if phenotype is None:
        return {}
    values = phenotype.of_betas(betas) if len(betas) else np.zeros((0, len(phenotype.names)), np.float32)
    return {"phenotype": values, "phenotype_names": np.array(phenotype.names)}


def _in_full_size_pixels(arrays: dict[str, np.ndarray], info: SourceInfo) -> dict[str, np.ndarray]:
    """A source scaled down for people-finding (``SourceInfo.scale``) is reported in the original picture's
    pixels: its size, and the intrinsics and 2D joints divided by the scale. The 3D bodies do not change (the
    same lens sees the same scene), so the Blender camera matches the picture shown behind it."""
    if not info.full_width:
        return arrays
    scale = info.scale
    arrays["image_size"] = np.array([info.full_width, info.full_height], np.int64)
    for key in ("focal_length", "principal_point"):
        arrays[key] = (arrays[key] / scale).astype(np.float64)
    if "joints2d" in arrays:
        arrays["joints2d"] = (arrays["joints2d"] / scale).astype(np.float32)
    return arrays


@torch.no_grad()
def _track_arrays(tracks: list[Track], body: BodyModel, camera: Camera, fps: float,
                  smoothing: SmoothingSettings | None, fill: int) -> dict[str, np.ndarray]:
    device = body.faces.device
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
    track_betas = torch.stack([as_tensor(np.stack([_padded(p.betas, body.num_betas) for p in t.people])).median(0)
                               .values for t in tracks])
    rest_pelvis = body.rest_joints(track_betas)[:, 0].cpu().numpy().astype(np.float64)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("track", "frame", "poses", "pelvis", "confidence",
                                                             "observed")}
    for index, track in enumerate(tracks):
        frames, poses, pelvis, confidence = _rows(track, body)
        observed = np.ones(len(frames), bool)
        if fill:
            frames, poses, pelvis, observed, source = fill_short_gaps(frames, poses, pelvis, fill)
            confidence = np.where(observed, confidence[source], 0.0)
        if smoothing is not None and smoothing.smoothness > 0:
            poses, pelvis = smooth_motion(poses, pelvis, frames, fps, smoothing)
        for key, value in zip(columns, (np.full(len(frames), index), frames, poses, pelvis, confidence, observed)):
            columns[key].append(np.asarray(value))
    cat = {key: np.concatenate(values) for key, values in columns.items()}
    row_track = cat["track"].astype(np.int64)
    transl = cat["pelvis"] - rest_pelvis[row_track]
    output = body(as_tensor(cat["poses"]), track_betas[row_track], as_tensor(transl))
    joints = output.joints.cpu().numpy().astype(np.float64)
    return {
        "track_id": np.array([t.track_id for t in tracks], np.int64),
        "betas": track_betas.cpu().numpy().astype(np.float32),
        "rest_joints": body.rest_joints(track_betas).cpu().numpy().astype(np.float32),
        "rest_vertices": body.shaped_vertices(track_betas).cpu().numpy().astype(np.float32),
        "row_track": row_track,
        "row_frame": cat["frame"].astype(np.int64),
        "poses": cat["poses"].astype(np.float32),
        "transl": transl.astype(np.float32),
        "joints2d": camera.project(joints).astype(np.float32),
        "confidence": cat["confidence"].astype(np.float32),
        "observed": cat["observed"].astype(bool),
    }


def _rows(track: Track, body: BodyModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frames, poses, pelvis positions, confidences) of a track's observations: the pelvis where the estimator
    put it, under the row's own shape (it stays there when the track's shape replaces the row's)."""
    people = track.people
    betas = torch.as_tensor(np.stack([_padded(p.betas, body.num_betas) for p in people]), dtype=torch.float32,
                            device=body.faces.device)
    row_pelvis = body.rest_joints(betas)[:, 0].cpu().numpy().astype(np.float64)
    transl = np.stack([np.asarray(p.transl, np.float64) for p in people])
    poses = np.stack([np.asarray(p.poses, np.float64) for p in people])
    return (np.asarray(track.frames, np.int64), poses, transl + row_pelvis,
            np.array([p.confidence for p in people], np.float64))


def _padded(betas: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, np.float32)
    out[: min(size, len(betas))] = np.asarray(betas, np.float32)[:size]
    return out
