"""The result file (``.npz``, ``format = "troupe-result/1"``): writing atomically, reading with validation.

Contract keys (see DESIGN.md) plus the body-model data the Blender add-on needs to build a skinned mesh
without importing torch: ``joint_names``, ``parents``, ``faces``, ``skin_weights`` and per-track
``rest_vertices`` (the mesh in the model's rest pose for that track's betas, same frame as ``rest_joints``).

The Blender add-on loads this file on its own, by path, to validate results with the same rules: reading must need
nothing but numpy and the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np


FORMAT = "troupe-result/1"
FORMAT_FAMILY = "troupe-result"
FORMAT_VERSION = 1
NUM_JOINTS = 24


class ResultFileError(ValueError):
    """A result file that is missing, unreadable, from a newer version, or inconsistent (defined here, not in
    backend.errors: the add-on loads this module alone)."""

    troupe_code = "RESULT_ERROR"


@dataclass(frozen=True)
class KeySpec:
    shape: tuple  # symbolic: ints, or names that must agree across keys ("T", "N", "B", "V", "F")
    kind: str  # numpy dtype kind letters accepted: "f", "iu", "U"


# Keys every result file carries. Optional keys are validated when present.
REQUIRED: dict[str, KeySpec] = {
    "fps": KeySpec((), "fiu"),
    "image_size": KeySpec((2,), "iu"),
    "focal_length": KeySpec((2,), "f"),
    "principal_point": KeySpec((2,), "f"),
    "num_frames": KeySpec((), "iu"),
    "body_model": KeySpec((), "U"),
    "estimator": KeySpec((), "U"),
    "track_id": KeySpec(("T",), "iu"),
    "betas": KeySpec(("T", "B"), "f"),
    "rest_joints": KeySpec(("T", NUM_JOINTS, 3), "f"),
    "row_track": KeySpec(("N",), "iu"),
    "row_frame": KeySpec(("N",), "iu"),
    "poses": KeySpec(("N", NUM_JOINTS, 3), "f"),
    "transl": KeySpec(("N", 3), "f"),
    "joints2d": KeySpec(("N", NUM_JOINTS, 2), "f"),
    "confidence": KeySpec(("N",), "f"),
}
OPTIONAL: dict[str, KeySpec] = {
    "joint_names": KeySpec((NUM_JOINTS,), "U"),
    "parents": KeySpec((NUM_JOINTS,), "iu"),
    "faces": KeySpec(("F", 3), "iu"),
    "skin_weights": KeySpec(("V", NUM_JOINTS), "f"),
    "rest_vertices": KeySpec(("T", "V", 3), "f"),
    "source_path": KeySpec((), "U"),
    "frame_indices": KeySpec(("M",), "iu"),
    # per row: True where the person was seen, False for rows that bridge a short gap (backend.assembly);
    # files without it (older versions) have only observed rows
    "observed": KeySpec(("N",), "b"),
}


def write_result(path: str | os.PathLike, arrays: Mapping[str, object]) -> Path:
    """Validate ``arrays`` and write them to ``path`` atomically (temporary file in the same folder, then rename).

    Either the complete file appears at ``path`` or nothing does: a crash or cancel never leaves half a file.
    """
    path = Path(path)
    data = {key: np.asarray(value) for key, value in arrays.items()}
    data["format"] = np.asarray(FORMAT)
    validate(data)
    from backend.atomic import save_npz  # here, not at the top: the add-on loads this file alone (see docstring)

    return save_npz(path, data, compressed=True)


def read_result(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load and validate a result file; raise :class:`ResultFileError` with a one-line reason otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"result file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except Exception as exc:  # zipfile/pickle/ValueError: all mean "not a readable result file"
        raise ResultFileError(f"not a readable result file ({type(exc).__name__}): {path}") from exc
    validate(data)
    return data


def validate(data: Mapping[str, np.ndarray]) -> None:
    """Check format version, presence, dtypes and mutually consistent shapes of the result arrays."""
    _check_format(data.get("format"))
    missing = sorted(set(REQUIRED) - set(data))
    if missing:
        raise ResultFileError(f"result file lacks required keys: {', '.join(missing)}")
    sizes: dict[str, int] = {}
    for key, spec in {**REQUIRED, **OPTIONAL}.items():
        if key in data:
            _check_key(key, np.asarray(data[key]), spec, sizes)
    _check_indices(data, sizes)


def _check_format(value: object) -> None:
    if value is None:
        raise ResultFileError("not a Troupe result file: no 'format' key")
    text = str(np.asarray(value))
    family, _, version = text.partition("/")
    if family != FORMAT_FAMILY or not version.isdigit():
        raise ResultFileError(f"not a Troupe result file: format is {text!r}")
    if int(version) > FORMAT_VERSION:
        raise ResultFileError(
            f"result file has format {text}, newer than this Troupe reads ({FORMAT}); update Troupe"
        )


def _check_key(key: str, array: np.ndarray, spec: KeySpec, sizes: dict[str, int]) -> None:
    if array.dtype.kind not in spec.kind:
        raise ResultFileError(f"result key {key!r} has dtype {array.dtype}, expected kind {spec.kind!r}")
    if array.ndim != len(spec.shape):
        raise ResultFileError(f"result key {key!r} has shape {array.shape}, expected {len(spec.shape)} dims")
    for axis, (want, got) in enumerate(zip(spec.shape, array.shape)):
        if isinstance(want, int):
            if want != got:
                raise ResultFileError(f"result key {key!r} has shape {array.shape}: axis {axis} should be {want}")
        elif sizes.setdefault(want, got) != got:
            raise ResultFileError(
                f"result key {key!r} has shape {array.shape}: size {want}={got} disagrees with {sizes[want]}"
            )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ResultFileError(f"result key {key!r} contains NaN or infinite values")


def _check_indices(data: Mapping[str, np.ndarray], sizes: dict[str, int]) -> None:
    row_track = np.asarray(data["row_track"])
    if row_track.size and (row_track.min() < 0 or row_track.max() >= sizes.get("T", 0)):
        raise ResultFileError("result key 'row_track' points outside the track arrays")
    row_frame = np.asarray(data["row_frame"])
    if row_frame.size and (row_frame.min() < 0 or row_frame.max() >= int(data["num_frames"])):
        raise ResultFileError("result key 'row_frame' points outside 0..num_frames-1")
    if "faces" in data and "V" in sizes and np.asarray(data["faces"]).size:
        if np.asarray(data["faces"]).max() >= sizes["V"]:
            raise ResultFileError("result key 'faces' points outside the vertex arrays")


def empty_track_arrays(num_betas: int) -> dict[str, np.ndarray]:
    """Track and row arrays of a result with no people (an image or clip where nobody was found)."""
    return {
        "track_id": np.zeros((0,), np.int64),
        "betas": np.zeros((0, num_betas), np.float32),
        "rest_joints": np.zeros((0, NUM_JOINTS, 3), np.float32),
        "row_track": np.zeros((0,), np.int64),
        "row_frame": np.zeros((0,), np.int64),
        "poses": np.zeros((0, NUM_JOINTS, 3), np.float32),
        "transl": np.zeros((0, 3), np.float32),
        "joints2d": np.zeros((0, NUM_JOINTS, 2), np.float32),
        "confidence": np.zeros((0,), np.float32),
        "observed": np.zeros((0,), bool),
    }
