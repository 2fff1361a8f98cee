"""Reading result files inside Blender with plain numpy (no torch, no backend import).

The validation rules are the backend's own ``backend/result/contract.py`` (numpy only), loaded by file path from the
bundled or repository backend, so the add-on and the writer can never disagree about the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from . import backend_env, rig

_CONTRACT_MODULE = "_troupe_result_contract"


class ResultError(ValueError):
    """A result file the add-on cannot use; the message is one line for the user."""


def _contract() -> ModuleType | None:
    return backend_env.load_backend_file("backend/result/contract.py", _CONTRACT_MODULE)


def load_result(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate a result file; raise :class:`ResultError` with the reason otherwise."""
    contract = _contract()
    try:
        if contract is not None:
            return contract.read_result(path)
        with np.load(path, allow_pickle=False) as npz:  # no backend source at all: read without validation
            return {key: npz[key] for key in npz.files}
    except (ValueError, OSError) as exc:
        raise ResultError(str(exc)) from exc


@dataclass
class Track:
    """One person: the rows where they were observed, sorted by frame."""

    index: int
    track_id: int
    frames: np.ndarray  # (n,) result frame indices
    poses: np.ndarray  # (n, 24, 3)
    transl: np.ndarray  # (n, 3)
    joints2d: np.ndarray  # (n, 24, 2)
    betas: np.ndarray  # (B,)
    rest_joints: np.ndarray  # (24, 3)
    rest_vertices: np.ndarray | None  # (V, 3)
    observed: np.ndarray | None = None  # (n,) bool: seen (True) or bridging a short gap (False)

    def visible_runs(self) -> list[tuple[int, int]]:
        """(first, last) result frames of each stretch the person is shown: consecutive frames with rows. Where
        the backend found nobody for longer than it bridges, there are no rows: the person is hidden there."""
        breaks = np.flatnonzero(np.diff(self.frames) > 1) + 1
        return [(int(run[0]), int(run[-1])) for run in np.split(self.frames, breaks) if len(run)]


def has_world(data: dict[str, np.ndarray]) -> bool:
    """The result carries the camera's motion and the people in a gravity-up world (``backend/world``)."""
    return "camera_rotation" in data and "world_transl" in data and "world_orient" in data


def _world_rows(data: dict[str, np.ndarray], rows: np.ndarray, rest_pelvis: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Poses and translations of ``rows`` placed in the result's world, written as the camera-frame values that
    the scene's fixed mapping (``rig.CAM_TO_WORLD``) turns into those world values: everything downstream
    (bones, contacts, export) keeps reading camera-frame rows and gets the world."""
    c = rig.CAM_TO_WORLD
    # under a zoom the backend re-fitted the bodies through each frame's lens: those poses hold in the world
    poses = np.asarray(data["world_poses" if "world_poses" in data else "poses"][rows], dtype=np.float64).copy()
    orient = rig.axis_angle_to_matrix(np.asarray(data["world_orient"][rows], dtype=np.float64))
    poses[:, 0] = rig.matrix_to_axis_angle(c.T @ orient)
    transl = (np.asarray(data["world_transl"][rows], dtype=np.float64) + rest_pelvis) @ c - rest_pelvis
    return poses, transl


def tracks(data: dict[str, np.ndarray], world: bool = True) -> list[Track]:
    """Split the observation rows per track; tracks without rows are skipped. With ``world`` (and world keys in
    the file) the people are placed in the world the animated camera moves through."""
    out = []
    for t, track_id in enumerate(np.asarray(data["track_id"]).tolist()):
        rows = np.nonzero(np.asarray(data["row_track"]) == t)[0]
        if rows.size == 0:
            continue
        rows = rows[np.argsort(data["row_frame"][rows], kind="stable")]
        verts = data.get("rest_vertices")
        poses = np.asarray(data["poses"][rows], dtype=np.float64)
        transl = np.asarray(data["transl"][rows], dtype=np.float64)
        if world and has_world(data):
            poses, transl = _world_rows(data, rows, np.asarray(data["rest_joints"][t][0], dtype=np.float64))
        out.append(
            Track(
                index=t,
                track_id=int(track_id),
                frames=np.asarray(data["row_frame"][rows], dtype=np.int64),
                poses=poses,
                transl=transl,
                joints2d=np.asarray(data["joints2d"][rows], dtype=np.float64),
                betas=np.asarray(data["betas"][t], dtype=np.float64),
                rest_joints=np.asarray(data["rest_joints"][t], dtype=np.float64),
                rest_vertices=None if verts is None else np.asarray(verts[t], dtype=np.float64),
                observed=None if "observed" not in data else np.asarray(data["observed"][rows], dtype=bool),
            )
        )
    return out


def check_skeleton(data: dict[str, np.ndarray]) -> None:
    """Bones follow SMPL's 24-joint tree; a file whose ``parents`` say otherwise cannot be rigged here."""
    parents = data.get("parents")
    if parents is not None and tuple(int(p) for p in parents) != rig.PARENTS:
        raise ResultError("result file uses a skeleton other than SMPL's 24 joints; cannot build bones")


def scalar(data: dict[str, np.ndarray], key: str, default: object = None) -> object:
    """A 0-d entry as a Python value (``str``, ``int``, ``float``)."""
    if key not in data:
        return default
    return np.asarray(data[key]).item()
