"""The result file: atomic writes, validation of shapes, dtypes and version."""

from __future__ import annotations

import numpy as np
import pytest

from backend.result.contract import FORMAT, ResultFileError, read_result, write_result


def minimal_result(people: int = 2, frames: int = 3) -> dict[str, np.ndarray]:
    rows = people * frames
    rng = np.random.default_rng(0)
    return {
        "fps": np.float64(30.0),
        "image_size": np.array([640, 480]),
        "focal_length": np.array([500.0, 500.0]),
        "principal_point": np.array([320.0, 240.0]),
        "num_frames": np.int64(frames),
        "body_model": np.str_("open-body"),
        "estimator": np.str_("mediapipe-fit"),
        "track_id": np.arange(people),
        "betas": rng.normal(size=(people, 10)).astype(np.float32),
        "rest_joints": rng.normal(size=(people, 24, 3)).astype(np.float32),
        "row_track": np.repeat(np.arange(people), frames),
        "row_frame": np.tile(np.arange(frames), people),
        "poses": rng.normal(size=(rows, 24, 3)).astype(np.float32),
        "transl": rng.normal(size=(rows, 3)).astype(np.float32),
        "joints2d": rng.normal(size=(rows, 24, 2)).astype(np.float32),
        "confidence": np.ones(rows, np.float32),
    }


def test_round_trip_keeps_every_key_and_adds_format(tmp_path):
    path = write_result(tmp_path / "r.npz", minimal_result())
    data = read_result(path)
    assert str(data["format"]) == FORMAT
    for key, value in minimal_result().items():
        np.testing.assert_array_equal(data[key], value)


def test_no_temporary_file_is_left_behind(tmp_path):
    write_result(tmp_path / "r.npz", minimal_result())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]


def test_invalid_arrays_are_refused_before_anything_is_written(tmp_path):
    bad = minimal_result()
    bad["poses"] = bad["poses"][:, :23]
    with pytest.raises(ResultFileError, match="poses"):
        write_result(tmp_path / "r.npz", bad)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = write_result(tmp_path / "r.npz", minimal_result(people=1))
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", explode)
    with pytest.raises(ResultFileError, match="cannot write the result file .*r.npz: disk full"):
        write_result(path, minimal_result(people=2))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("transl"), "lacks required keys: transl"),
        (lambda d: d.__setitem__("row_track", np.full(6, 5)), "row_track"),
        (lambda d: d.__setitem__("row_frame", np.full(6, 3)), "row_frame"),
        (lambda d: d.__setitem__("betas", np.zeros((3, 10), np.float32)), "T=3 disagrees"),
        (lambda d: d.__setitem__("transl", np.full((6, 3), np.nan, np.float32)), "NaN"),
        (lambda d: d.__setitem__("poses", np.zeros((6, 24, 3), np.int64)), "dtype"),
    ],
)
def test_inconsistent_files_are_rejected_with_the_offending_key(tmp_path, mutate, message):
    data = minimal_result()
    mutate(data)
    data["format"] = np.str_(FORMAT)
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ResultFileError, match=message):
        read_result(tmp_path / "bad.npz")


def test_newer_format_version_says_update(tmp_path):
    data = minimal_result()
    data["format"] = np.str_("troupe-result/2")
    np.savez(tmp_path / "new.npz", **data)
    with pytest.raises(ResultFileError, match="newer than this Troupe reads"):
        read_result(tmp_path / "new.npz")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ResultFileError, match="not found"):
        read_result(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip")
    with pytest.raises(ResultFileError, match="not a readable result file"):
        read_result(tmp_path / "junk.npz")


def test_pickled_objects_are_never_loaded(tmp_path):
    data = minimal_result()
    data["format"] = np.str_(FORMAT)
    data["estimator"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickled.npz", **data)
    with pytest.raises(ResultFileError, match="not a readable result file"):
        read_result(tmp_path / "pickled.npz")


def test_reading_needs_nothing_but_numpy_as_the_addon_loads_it(tmp_path):
    """The Blender add-on loads backend/result/contract.py alone, by path, where the ``backend`` package is not importable."""
    import subprocess
    import sys
    from pathlib import Path

    path = write_result(tmp_path / "r.npz", minimal_result())
    source = Path(__file__).resolve().parents[1] / "backend" / "result" / "contract.py"
    script = f"""
import importlib.util, sys
class BlockBackend:
    def find_spec(self, name, path=None, target=None):
        if name == "backend" or name.startswith("backend."):
            raise ImportError("the backend package is not importable inside Blender")
sys.meta_path.insert(0, BlockBackend())
spec = importlib.util.spec_from_file_location("troupe_result", {str(source)!r})
module = importlib.util.module_from_spec(spec)
sys.modules["troupe_result"] = module  # as blender_addon/result_data.py does
spec.loader.exec_module(module)
print(len(module.read_result({str(path)!r})["track_id"]))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "2"
