"""Bad result files given to the reader (``backend.result.contract.read_result``, which the Blender add-on runs too): each
refused with a ResultFileError of one line naming what is wrong, before any array is inflated past the limits,
nothing unpickled, and the file left as it was."""

from __future__ import annotations

import hashlib
import struct
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from backend.result.contract import FORMAT, ResultFileError, read_result
from tests.test_result import minimal_result


def _arrays(**changes: object) -> dict[str, np.ndarray]:
    """A valid result's arrays with ``changes`` applied (None removes a key)."""
    data = {**minimal_result(), "format": np.asarray(FORMAT)}
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = np.asarray(value)
    return data


def changed(**changes: object) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **_arrays(**changes))


def _faces(values: list[list[int]]) -> Callable[[Path], None]:
    rng = np.random.default_rng(0)
    return changed(faces=np.asarray(values), skin_weights=rng.random((5, 24)).astype(np.float32),
                   rest_vertices=np.zeros((2, 5, 3), np.float32))


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _npy_member(header_shape: tuple, payload: bytes) -> bytes:
    """An ``.npy`` whose header declares ``header_shape`` float32 values, followed by ``payload``."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": header_shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def forged_header(path: Path) -> None:
    """A valid result plus a 1 kB member whose header claims a billion values."""
    changed()(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.npy", _npy_member((1_000_000_000,), b"\0" * 1024))


def inflates_to_one_gib(path: Path) -> None:
    """A valid result plus a member of 1 GiB of zeros, about 1 MB on disk."""
    changed()(path)
    chunk = b"\0" * (16 << 20)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("bomb.npy", "w", force_zip64=True) as member:
            member.write(_npy_member(((1 << 30) // 4,), b""))
            for _ in range(64):
                member.write(chunk)


def pickled(path: Path) -> None:
    np.savez(path, **_arrays(betas=np.array([{"run": "code"}], dtype=object)))


CASES = [
    # (id, how the file is made, the message's expected text)
    ("focal-zero", changed(focal_length=[0.0, 0.0]), "'focal_length' has a value 0 below its minimum"),
    ("focal-negative", changed(focal_length=[-500.0, 500.0]), "'focal_length' has a value -500 below"),
    ("focal-huge", changed(focal_length=[1e30, 1e30]), "'focal_length' has a value 1e+30 above its maximum"),
    ("image-size-negative", changed(image_size=[-640, 480]), "'image_size' has a value -640 below its minimum 1"),
    ("image-size-zero", changed(image_size=[0, 0]), "'image_size' has a value 0 below its minimum 1"),
    ("principal-point-far", changed(principal_point=[1e12, 0.0]), "'principal_point' has a value 1e+12 above"),
    ("num-frames-billion", changed(num_frames=np.int64(10**9)), "'num_frames' has a value 1e+09 above"),
    ("num-frames-zero", changed(num_frames=np.int64(0)), "'num_frames' has a value 0 below its minimum 1"),
    ("fps-negative", changed(fps=-30.0), "'fps' has a value -30 below its minimum 0"),
    ("translation-1e30", changed(transl=np.full((6, 3), 1e30, np.float32)), "'transl' has a value 1e+30 above"),
    ("pose-1e6", changed(poses=np.full((6, 24, 3), 1e6, np.float32)), "'poses' has a value 1e+06 above"),
    ("joints2d-nan", changed(joints2d=np.full((6, 24, 2), np.nan, np.float32)), "'joints2d' contains NaN"),
    ("betas-inf", changed(betas=np.full((2, 10), np.inf, np.float32)), "'betas' contains NaN or infinite"),
    ("faces-negative", _faces([[0, 1, -2]]), "'faces' has a value -2 below its minimum 0"),
    ("faces-beyond-vertices", _faces([[0, 1, 9]]), "'faces' points outside the vertex arrays"),
    ("parents-out-of-tree", changed(parents=np.full(24, 99)), "'parents' has a value 99 above its maximum 23"),
    ("track-id-negative", changed(track_id=[-1, 0]), "'track_id' has a value -1 below its minimum 0"),
    ("row-frame-past-the-end", changed(row_frame=np.full(6, 3)), "'row_frame' points outside 0..num_frames-1"),
    ("row-track-past-the-end", changed(row_track=np.full(6, 5)), "'row_track' points outside the track arrays"),
    ("too-many-tracks", changed(track_id=np.arange(10_001), betas=np.zeros((10_001, 1), np.float32)),
     "more than 10000 along axis 0"),
    ("source-path-huge", changed(source_path=np.str_("x" * 5000)), "'source_path' holds a string longer than 4096"),
    ("joint-names-wrong-count", changed(joint_names=np.array(["Pelvis"] * 3)), "'joint_names' has shape (3,)"),
    ("focal-as-text", changed(focal_length=np.array(["500", "500"])), "'focal_length' has dtype <U3"),
    ("missing-key", changed(transl=None), "lacks required keys: transl"),
    ("newer-format", changed(format=np.asarray("troupe-result/99")), "newer than this Troupe reads"),
    ("foreign-format", changed(format=np.asarray("other/1")), "not a Troupe result file"),
    ("pickled-objects", pickled, "not a readable result file (ValueError)"),
    ("not-a-zip", _bytes(b"this is not a zip"), "not a readable result file (BadZipFile)"),
    ("empty-file", _bytes(b""), "not a readable result file (BadZipFile)"),
    ("truncated-zip", lambda path: (changed()(path), path.write_bytes(path.read_bytes()[:400])),
     "not a readable result file"),
    ("forged-array-header", forged_header, "entry 'extra.npy' declares more data than it holds"),
    ("inflates-to-1-GiB", inflates_to_one_gib, "entry 'bomb.npy' would unpack to 1024 MiB"),
]


@pytest.mark.parametrize("make, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_result_file_is_refused_in_one_line(tmp_path: Path, make, expected: str) -> None:
    path = tmp_path / "bad.npz"
    make(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    started = time.perf_counter()
    with pytest.raises(ResultFileError) as refused:
        read_result(path)
    assert expected in str(refused.value)
    assert "\n" not in str(refused.value)
    assert time.perf_counter() - started < 5, "refusing took long: the file was inflated"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest and list(tmp_path.iterdir()) == [path]


def test_the_one_gib_file_is_small_on_disk_and_refused_without_inflating(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "bomb.npz"
    inflates_to_one_gib(path)
    assert path.stat().st_size < 8 << 20
    tracemalloc.start()
    with pytest.raises(ResultFileError):
        read_result(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 << 20, f"reading the refused file allocated {peak >> 20} MiB"


def test_a_valid_file_still_reads(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", **_arrays())
    assert int(read_result(tmp_path / "ok.npz")["num_frames"]) == 3
