"""The result file (``.npz``, ``format = "troupe-result/1"``): writing atomically, reading with validation.

Contract keys (see DESIGN.md) plus the body-model data the Blender add-on needs to build a skinned mesh
without importing torch: ``joint_names``, ``parents``, ``faces``, ``skin_weights`` and per-track
``rest_vertices`` (the mesh in the model's rest pose for that track's betas, same frame as ``rest_joints``).
Anny bodies add each track's ``phenotype`` (Anny's values in [0, 1], named by ``phenotype_names``) and Anny's
own rig (``rig_*``); files without them (older ones, other bodies) load as before.

The Blender add-on loads this file on its own, by path, to validate results with the same rules: reading must need
nothing but numpy and the standard library.
"""

from __future__ import annotations

import os
import zipfile
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
    low: float | None = None  # every value at least this (numbers only)
    high: float | None = None  # every value at most this


# Files are read from anywhere (a download, a colleague's disk): every size and value is bounded before Blender
# builds anything from it, and sizes are known from the zip's directory and each array's header before an array
# is inflated, so a small file cannot unpack into gigabytes.
MAX_SIZES_A = 1000  # bones of a body's own rig
MAX_SIZES = {"T": 10_000, "N": 1_000_000, "B": 300, "V": 200_000, "F": 400_000, "M": 1_000_000, "S": 100_000,
             "P": 64, "A": MAX_SIZES_A, "W": 16}
MAX_FRAMES = 1_000_000  # 9 hours at 30 frames/s
MAX_MEMBER_BYTES = 512 << 20  # one array, inflated
MAX_TOTAL_BYTES = 768 << 20  # all arrays, inflated
MAX_TEXT = 4096  # characters of a string entry
METRES = 1e4  # no body or camera offset beyond 10 km
PIXELS = 1e6


# Keys every result file carries. Optional keys are validated when present.
REQUIRED: dict[str, KeySpec] = {
    "fps": KeySpec((), "fiu", 0, 1000),
    "image_size": KeySpec((2,), "iu", 1, 100_000),
    "focal_length": KeySpec((2,), "f", 1e-3, PIXELS),
    "principal_point": KeySpec((2,), "f", -PIXELS, PIXELS),
    "num_frames": KeySpec((), "iu", 1, MAX_FRAMES),
    "body_model": KeySpec((), "U"),
    "estimator": KeySpec((), "U"),
    "track_id": KeySpec(("T",), "iu", 0, 2**31 - 1),
    "betas": KeySpec(("T", "B"), "f", -1e3, 1e3),
    "rest_joints": KeySpec(("T", NUM_JOINTS, 3), "f", -METRES, METRES),
    "row_track": KeySpec(("N",), "iu"),
    "row_frame": KeySpec(("N",), "iu"),
    "poses": KeySpec(("N", NUM_JOINTS, 3), "f", -1e3, 1e3),
    "transl": KeySpec(("N", 3), "f", -METRES, METRES),
    "joints2d": KeySpec(("N", NUM_JOINTS, 2), "f", -1e9, 1e9),
    "confidence": KeySpec(("N",), "f", -1e3, 1e3),
}
OPTIONAL: dict[str, KeySpec] = {
    "joint_names": KeySpec((NUM_JOINTS,), "U"),
    "parents": KeySpec((NUM_JOINTS,), "iu", -1, NUM_JOINTS - 1),
    "faces": KeySpec(("F", 3), "iu", 0, None),
    "skin_weights": KeySpec(("V", NUM_JOINTS), "f", -1e3, 1e3),
    "rest_vertices": KeySpec(("T", "V", 3), "f", -METRES, METRES),
    "source_path": KeySpec((), "U"),
    "frame_indices": KeySpec(("M",), "iu", 0, None),
    # per row: True where the person was seen, False for rows that bridge a short gap (backend.result.assembly);
    # files without it (older versions) have only observed rows
    "observed": KeySpec(("N",), "b"),
    # Anny bodies: per track, the phenotype (gender, age, muscle, weight, height, proportions) of its betas
    "phenotype": KeySpec(("T", "P"), "f", 0.0, 1.0),
    "phenotype_names": KeySpec(("P",), "U"),
    # Anny bodies: Anny's own rig ("A" bones, "W" skin weights per vertex) for the add-on's option to keep it;
    # each bone follows one of the 24 joints (backend.body.anny_skeleton)
    "rig_bone_names": KeySpec(("A",), "U"),
    "rig_bone_parents": KeySpec(("A",), "iu", -1, MAX_SIZES_A - 1),
    "rig_bone_joints": KeySpec(("A",), "iu", 0, NUM_JOINTS - 1),
    "rig_bone_ends": KeySpec(("T", "A", 2, 3), "f", -METRES, METRES),  # rest heads and tails, as rest_joints
    "rig_weight_bones": KeySpec(("V", "W"), "iu", 0, MAX_SIZES_A - 1),
    "rig_weight_values": KeySpec(("V", "W"), "f", 0.0, 1.0),
    # the camera and the people in a gravity-up world with the floor at z = 0 (backend.world); per frame ("M"
    # frames: num_frames) and per segment ("S": a segment per shot); files without them are in the camera frame
    "camera_rotation": KeySpec(("M", 3, 3), "f", -1.001, 1.001),  # world -> camera (OpenCV axes)
    "camera_position": KeySpec(("M", 3), "f", -METRES, METRES),  # camera centre in the world, metres
    "camera_focal": KeySpec(("M", 2), "f", 1e-3, PIXELS),  # fx, fy of each frame (zoom)
    "camera_segment": KeySpec(("M",), "iu", 0, None),
    "segment_static": KeySpec(("S",), "b"),
    "world_orient": KeySpec(("N", 3), "f", -1e3, 1e3),  # joint 0's axis-angle in the world
    "world_transl": KeySpec(("N", 3), "f", -METRES, METRES),  # posed joints = FK(world pose) + world_transl
    # only under a zoom, with the keys above: the rows re-fitted through their frame's lens (joint 0 =
    # world_orient); in the world they replace "poses" (backend.world.refit)
    "world_poses": KeySpec(("N", NUM_JOINTS, 3), "f", -1e3, 1e3),
    # the focal length (pixels) the camera's turns imply (backend.world.focal), written only when the user gave
    # no lens and it is determined; a suggestion: focal_length, camera_focal and the bodies use the given lens
    "camera_focal_estimate": KeySpec((), "f", 1e-3, PIXELS),
}
CAMERA_KEYS = ("camera_rotation", "camera_position", "camera_focal", "camera_segment", "segment_static",
               "world_orient", "world_transl")
WORLD_KEYS = (*CAMERA_KEYS, "world_poses")  # every key of the world extension (CAMERA_KEYS come together)


def write_result(path: str | os.PathLike, arrays: Mapping[str, object]) -> Path:
    """Validate ``arrays`` and write them to ``path`` atomically (temporary file in the same folder, then rename).

    Either the complete file appears at ``path`` or nothing does: a crash or cancel never leaves half a file.
    """
    path = Path(path)
    data = {key: np.asarray(value) for key, value in arrays.items()}
    data["format"] = np.asarray(FORMAT)
    validate(data)
    from backend.runtime.atomic import (
        save_npz,  # here, not at the top: the add-on loads this file alone (see docstring)
    )

    try:
        return save_npz(path, data, compressed=True)
    except (OSError, ValueError) as exc:  # a full disk fails in zipfile, then its cleanup on the closed file
        raise ResultFileError(f"cannot write the result file {path}: {_os_reason(exc)}") from None


def _os_reason(exc: BaseException) -> str:
    """The operating system's reason behind a failed write (``No space left on device``), in one line."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__context__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_result(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load and validate a result file; raise :class:`ResultFileError` with a one-line reason otherwise.

    Never unpickles, and refuses a file whose arrays would inflate beyond the limits before inflating them."""
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"result file not found: {path}")
    try:
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except ResultFileError:
        raise
    except Exception as exc:  # zipfile/pickle/ValueError: all mean "not a readable result file"
        raise ResultFileError(f"not a readable result file ({type(exc).__name__}): {path}") from exc
    validate(data)
    return data


def _check_sizes(path: Path) -> None:
    """Sizes from the zip directory and each ``.npy`` header (read without inflating the data): every array
    within :data:`MAX_MEMBER_BYTES`, all within :data:`MAX_TOTAL_BYTES`, each header agreeing with its member."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > MAX_MEMBER_BYTES:
                raise ResultFileError(f"result file {path.name}: entry {info.filename!r} would unpack to "
                                      f"{info.file_size >> 20} MiB, more than a result can hold")
            with archive.open(info) as member:
                declared = _npy_bytes(member)
            if declared is not None and declared > info.file_size:
                raise ResultFileError(f"result file {path.name}: entry {info.filename!r} declares more data "
                                      "than it holds (damaged or forged)")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ResultFileError(f"result file {path.name} would unpack to more than "
                                      f"{MAX_TOTAL_BYTES >> 20} MiB, more than a result can hold")


def _npy_bytes(member) -> int | None:
    """Bytes of array data an ``.npy`` member's header declares (None if it is not an ``.npy``)."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(member)
    except ValueError:
        return None
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(member, max_header_size=10_000)
    elif version == (2, 0):
        shape, _, dtype = npy.read_array_header_2_0(member, max_header_size=10_000)
    else:
        raise ResultFileError(f"array format {version} is not one a result file uses")
    count = 1
    for size in shape:
        count *= int(size)
    return count * dtype.itemsize


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


def _check_bounds(key: str, array: np.ndarray, spec: KeySpec) -> None:
    """Values inside the key's plausible range (a focal length of 0, a negative face index, a translation of
    1e30 m would each break or hang the scene built from them)."""
    if array.dtype.kind == "U":
        if array.size and max(len(str(v)) for v in array.ravel()) > MAX_TEXT:
            raise ResultFileError(f"result key {key!r} holds a string longer than {MAX_TEXT} characters")
        return
    if not array.size or array.dtype.kind == "b":
        return
    low, high = array.min(), array.max()
    if spec.low is not None and low < spec.low:
        raise ResultFileError(f"result key {key!r} has a value {low:g} below its minimum {spec.low:g}")
    if spec.high is not None and high > spec.high:
        raise ResultFileError(f"result key {key!r} has a value {high:g} above its maximum {spec.high:g}")


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
        elif got > MAX_SIZES.get(want, got):
            raise ResultFileError(f"result key {key!r} has shape {array.shape}: more than {MAX_SIZES[want]} "
                                  f"along axis {axis}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ResultFileError(f"result key {key!r} contains NaN or infinite values")
    _check_bounds(key, array, spec)


def _check_indices(data: Mapping[str, np.ndarray], sizes: dict[str, int]) -> None:
    row_track = np.asarray(data["row_track"])
    if row_track.size and (row_track.min() < 0 or row_track.max() >= sizes.get("T", 0)):
        raise ResultFileError("result key 'row_track' points outside the track arrays")
    row_frame = np.asarray(data["row_frame"])
    if row_frame.size and (row_frame.min() < 0 or row_frame.max() >= int(data["num_frames"])):
        raise ResultFileError("result key 'row_frame' points outside 0..num_frames-1")
    _check_camera(data)
    if "faces" in data and "V" in sizes and np.asarray(data["faces"]).size:
        if np.asarray(data["faces"]).max() >= sizes["V"]:
            raise ResultFileError("result key 'faces' points outside the vertex arrays")


def _check_camera(data: Mapping[str, np.ndarray]) -> None:
    """The world keys come together, one camera per frame, one segment per shot, rotations that are rotations."""
    present = [key for key in CAMERA_KEYS if key in data]
    if not present:
        if "world_poses" in data:
            raise ResultFileError("result key 'world_poses' comes without the camera keys")
        return
    if len(present) != len(CAMERA_KEYS):
        missing = sorted(set(CAMERA_KEYS) - set(present))
        raise ResultFileError(f"result file has camera keys but lacks {', '.join(missing)}")
    frames = int(data["num_frames"])
    if len(data["camera_rotation"]) != frames:
        raise ResultFileError(f"result key 'camera_rotation' has {len(data['camera_rotation'])} frames, "
                              f"num_frames is {frames}")
    rotation = np.asarray(data["camera_rotation"], np.float64)
    if rotation.size and np.abs(rotation @ np.swapaxes(rotation, 1, 2) - np.eye(3)).max() > 1e-3:
        raise ResultFileError("result key 'camera_rotation' holds a matrix that is not a rotation")
    segment = np.asarray(data["camera_segment"])
    if segment.size and segment.max() >= len(data["segment_static"]):
        raise ResultFileError("result key 'camera_segment' points outside 'segment_static'")


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
