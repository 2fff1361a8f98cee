"""Reading the user's SMPL file (official .pkl or .npz) safely, and installing it as a plain npz.

The official .pkl files are Python 2 pickles holding chumpy objects and a scipy.sparse J_regressor; chumpy
does not import on current Python/numpy. A restricted unpickler maps every ``chumpy.*`` class to a stub that
keeps only its array (``state['x']``), allows the numpy/scipy reconstructors an SMPL file needs and refuses
every other global, so a malicious file cannot run code. Installing converts once to a plain npz in the
cache; the npz layout is the official one (smplx loads it too).
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from backend.body.errors import BodyModelError
from backend.body.skeleton import PARENTS
from backend.runtime.atomic import save_npz
from backend.runtime.paths import cache_subdir

GENDERS = ("neutral", "male", "female")
REQUIRED_KEYS = ("v_template", "f", "weights", "shapedirs", "posedirs", "J_regressor", "kintree_table")
_ZIP_MAGIC = b"PK\x03\x04"


class _ChumpyStub:
    """Stands in for any chumpy class: keeps the array value ``x`` and drops the rest of the state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.x = None

    def __setstate__(self, state: Any) -> None:
        self.x = state.get("x") if isinstance(state, dict) else None


def _numpy_attr(module: str, name: str) -> Callable[[], Any]:
    """numpy moved ``core`` to ``_core`` in 2.0; pickles name either."""
    def resolve() -> Any:
        alternatives = (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core"))
        for candidate in (module, *alternatives):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"numpy has no {module}.{name}")
    return resolve


_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    **{(m, n): _numpy_attr(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
       for n in ("_reconstruct", "scalar")},
    **{(m, "_frombuffer"): _numpy_attr(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("copy_reg", "_reconstructor"): lambda: importlib.import_module("copyreg")._reconstructor,
    ("copyreg", "_reconstructor"): lambda: importlib.import_module("copyreg")._reconstructor,
    ("__builtin__", "object"): lambda: object,
    ("builtins", "object"): lambda: object,
    ("_codecs", "encode"): lambda: importlib.import_module("_codecs").encode,
    **{(f"scipy.sparse.{m}", f"{kind}_matrix"): (lambda kind=kind: getattr(scipy.sparse, f"{kind}_matrix"))
       for kind in ("csc", "csr", "coo") for m in (kind, f"_{kind}")},
}


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the globals an SMPL pickle needs; anything else aborts the load before it can run."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return resolve()


def _plain(value: Any) -> np.ndarray | None:
    """An array from a pickled value (chumpy stub, sparse matrix, ndarray); None for anything else."""
    if isinstance(value, _ChumpyStub):
        value = value.x
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    return None


def _one_line(exc: BaseException) -> str:
    """An exception's message as one line (messages are shown to the user one line each)."""
    return " ".join(str(exc).split())[:200]


def _read_pickle(path: Path, raw: bytes) -> dict[str, np.ndarray]:
    try:
        content = _SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused global"):
            raise BodyModelError(f"{path}: not loaded, it is not a plain SMPL file ({exc})") from None
        raise BodyModelError(f"{path}: not a readable SMPL file ({_one_line(exc)})") from None
    except EOFError:
        raise BodyModelError(f"{path}: truncated SMPL file") from None
    except Exception as exc:  # corrupt pickles raise many kinds of errors
        raise BodyModelError(f"{path}: not a readable SMPL file ({type(exc).__name__}: {_one_line(exc)})") from None
    if not isinstance(content, dict):
        raise BodyModelError(f"{path}: not an SMPL file (holds a {type(content).__name__}, not a dict)")
    arrays = {str(key): _plain(value) for key, value in content.items()}
    return {key: value for key, value in arrays.items() if value is not None}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as exc:  # zipfile, ValueError (object arrays), OSError, ...
        raise BodyModelError(f"{path}: not a readable npz body model ({type(exc).__name__}: {exc})") from None


def _validate(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check the SMPL layout and normalise dtypes; raise a one-line error naming what is wrong."""
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise BodyModelError(f"{path}: not an SMPL model (missing {', '.join(missing)})")
    out = dict(arrays)
    out["f"] = arrays["f"].astype(np.int64)
    parents = arrays["kintree_table"].astype(np.int64).reshape(-1, len(PARENTS))[0].copy()
    parents[0] = -1
    out["kintree_table"] = np.stack([parents, np.arange(len(PARENTS))])
    for key in ("v_template", "weights", "shapedirs", "posedirs", "J_regressor"):
        out[key] = arrays[key].astype(np.float64)
    num_v = len(out["v_template"])
    expected = {
        "v_template": (num_v, 3), "weights": (num_v, len(PARENTS)), "J_regressor": (len(PARENTS), num_v),
        "posedirs": (num_v, 3, 9 * (len(PARENTS) - 1)),
    }
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise BodyModelError(f"{path}: {key} has shape {out[key].shape}, expected {shape}")
    if out["shapedirs"].ndim != 3 or out["shapedirs"].shape[:2] != (num_v, 3):
        raise BodyModelError(f"{path}: shapedirs has shape {out['shapedirs'].shape}, expected ({num_v}, 3, K)")
    if out["f"].ndim != 2 or out["f"].shape[1] != 3 or out["f"].min() < 0 or out["f"].max() >= num_v:
        raise BodyModelError(f"{path}: f is not a (F, 3) array of vertex indices")
    if tuple(parents) != PARENTS:
        raise BodyModelError(f"{path}: kinematic tree differs from SMPL's 24-joint skeleton")
    return out


def load_smpl_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays of an SMPL model file (.pkl or .npz, told apart by content), validated, in the official layout.

    J_regressor is returned dense (24, V), chumpy objects as plain arrays, posedirs as (V, 3, 207).
    """
    path = Path(path)
    if not path.is_file():
        raise BodyModelError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw:
        raise BodyModelError(f"{path}: empty file")
    arrays = _read_npz(path) if raw.startswith(_ZIP_MAGIC) else _read_pickle(path, raw)
    return _validate(path, arrays)


def detect_gender(path: str | os.PathLike[str], arrays: dict[str, np.ndarray] | None = None) -> str | None:
    """Gender from the file name (SMPL_MALE.pkl, basicModel_f_lbs_10_207_0_v1.0.0.pkl, ...) or a 'gender' entry.

    Official names carry "neutral"/"male"/"female" or the tokens "n"/"m"/"f"; "female" is checked before
    "male" because it contains it. Returns None when neither tells.
    """
    tokens = set(re.split(r"[^a-z0-9]+", Path(path).name.lower()))
    for gender, short in (("neutral", "n"), ("female", "f"), ("male", "m")):
        if gender in tokens or short in tokens or any(t.endswith(gender) for t in tokens):
            return gender
    if arrays is not None and "gender" in arrays:
        value = str(arrays["gender"]).lower()
        return value if value in GENDERS else None
    return None


def installed_path(gender: str) -> Path:
    """Where the converted model of a gender lives in the cache."""
    return cache_subdir("body") / f"smpl-{gender}.npz"


def install_smpl(path: str | os.PathLike[str], gender: str | None = None) -> Path:
    """Convert the user's SMPL file once into the cache as ``smpl-{gender}.npz`` and return that path.

    ``gender`` (neutral, male, female) defaults to what the file name or content says (see
    ``detect_gender``); when neither tells, the user must pass it. The file is fully validated first, so a
    broken file never replaces a working installation.
    """
    arrays = load_smpl_file(path)
    gender = (gender or detect_gender(path, arrays) or "").lower()
    if gender not in GENDERS:
        raise BodyModelError(f"{path}: cannot tell whether this SMPL model is neutral, male or female; pass the gender")
    target = installed_path(gender)
    return save_npz(target, {"gender": np.array(gender), **{key: arrays[key] for key in REQUIRED_KEYS}})
