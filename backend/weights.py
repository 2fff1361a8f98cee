"""Where estimator checkpoints live and how they are loaded.

Folder: ``$TROUPE_WEIGHTS_DIR`` if set (e.g. a shared folder of downloads), else the cache's ``weights/``.
Loading is always ``torch.load(weights_only=True)`` (plain tensors, no pickled code). Accepted layouts:
a plain state_dict (simple_romp's ROMP.pkl / BEV.pth), the original training layout with a ``module.`` prefix
and ``_result_parser.*`` / ``_calc_loss.*`` extras (dropped), either optionally wrapped in
``{'model_state_dict': ...}`` or ``{'state_dict': ...}``. A mismatch raises :class:`WeightsError` naming the
missing, unexpected and mis-shaped keys. Official file names and URLs are data for users' machines; this module
only copies from a URL it is given (``file://`` works) and never downloads on its own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping

import torch

from backend.estimators.base import EstimatorError
from backend.paths import cache_subdir

_RELEASES = "https://github.com/Arthur151/ROMP/releases/download"
_ROMP_LICENCE = (
    "ROMP/BEV code is MIT/Apache-2.0, but the weights were trained with SMPL and academic datasets: the SMPL "
    "model licence and the datasets' terms apply to their use"
)
DROPPED_PREFIXES = ("_result_parser.", "_calc_loss.")
WRAPPER_KEYS = ("model_state_dict", "state_dict")


class WeightsError(EstimatorError):
    """A checkpoint is missing, unreadable or does not fit the network."""


@dataclass(frozen=True)
class Checkpoint:
    """An official checkpoint: the file name Troupe looks for, where users get it, and its licence note."""

    name: str
    filename: str
    url: str
    note: str = _ROMP_LICENCE


CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint("romp-hrnet32", "ROMP.pkl", f"{_RELEASES}/V2.0/ROMP.pkl"),
        Checkpoint("romp-hrnet32-v1", "ROMP_HRNet32_V1.pkl", f"{_RELEASES}/v1.1/trained_models.zip",
                   f"extract it from the zip; {_ROMP_LICENCE}"),
        Checkpoint("romp-resnet50", "ROMP_ResNet50_V1.pkl", f"{_RELEASES}/v1.1/trained_models.zip",
                   f"extract it from the zip; {_ROMP_LICENCE}"),
        Checkpoint("bev", "BEV.pth", f"{_RELEASES}/V2.0/BEV.pth"),
        Checkpoint("bev-ft-agora", "BEV_ft_agora.pth", f"{_RELEASES}/V2.0/BEV_ft_agora.pth"),
    )
}


def weights_dir() -> Path:
    """``$TROUPE_WEIGHTS_DIR`` (not created) or the cache's ``weights/`` (created)."""
    explicit = os.environ.get("TROUPE_WEIGHTS_DIR")
    return Path(explicit).expanduser() if explicit else cache_subdir("weights")


def find_checkpoint(name: str, path: str | os.PathLike | None = None) -> Path:
    """An explicit ``path``, else the official file name in :func:`weights_dir`; a clear error otherwise."""
    if path is not None:
        found = Path(path).expanduser()
        if not found.is_file():
            raise WeightsError(f"checkpoint {found} does not exist")
        return found
    info = CHECKPOINTS[name]
    found = weights_dir() / info.filename
    if not found.is_file():
        raise WeightsError(
            f"{name}: {info.filename} not found in {found.parent}; download it from {info.url} "
            f"(see the note: {info.note}) and put it there, or set TROUPE_WEIGHTS_DIR"
        )
    return found


def install_checkpoint(name: str, source: str | os.PathLike) -> Path:
    """Fetch ``source`` (a local path, file:// or http(s):// URL) and store it under its official name.

    The file is checked against the network's state_dict layout first: a wrong or truncated download is refused
    with the reason and never replaces a working checkpoint.
    """
    if name not in CHECKPOINTS:
        raise WeightsError(f"unknown checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}")
    target = weights_dir() / CHECKPOINTS[name].filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as tmp:
        try:
            _copy_source(source, tmp)
            tmp.close()
            check_state_dict(network_for(name), read_state_dict(tmp.name), f"{source}")
        except BaseException:
            tmp.close()
            Path(tmp.name).unlink(missing_ok=True)
            raise
    os.replace(tmp.name, target)
    return target


def _copy_source(source: str | os.PathLike, out: IO[bytes]) -> None:
    text = str(source)
    if "://" not in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(f"checkpoint file not found: {path}")
        with path.open("rb") as handle:
            shutil.copyfileobj(handle, out)
        return
    try:
        with urllib.request.urlopen(text) as response:  # noqa: S310 (the user's own or the official URL)
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise WeightsError(f"cannot download {text}: {exc}") from exc


def network_for(name: str) -> torch.nn.Module:
    """The network a checkpoint belongs to (randomly initialised: used to check a file's layout)."""
    from backend.nets.bev import BEVv1
    from backend.nets.romp import ROMPv1

    builders = {
        "romp-hrnet32": lambda: ROMPv1("hrnet32"),
        "romp-hrnet32-v1": lambda: ROMPv1("hrnet32"),
        "romp-resnet50": lambda: ROMPv1("resnet50"),
        "bev": BEVv1,
        "bev-ft-agora": BEVv1,
    }
    return builders[name]()


def checkpoint_status() -> dict[str, str]:
    """Each known checkpoint -> where it is installed, or where to get it (for ``weights list`` and ``doctor``)."""
    out = {}
    for name, info in CHECKPOINTS.items():
        found = weights_dir() / info.filename
        out[name] = str(found) if found.is_file() else f"not installed ({info.filename} from {info.url})"
    return out


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a checkpoint with ``weights_only=True`` and normalise it to plain, unprefixed network keys."""
    try:
        raw = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, pickled code refused by weights_only
        raise WeightsError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}".strip()) from exc
    return normalize_state_dict(raw, str(path))


def normalize_state_dict(raw: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap ``model_state_dict`` / ``state_dict``, strip ``module.``, drop ``_result_parser.*`` / ``_calc_loss.*``."""
    for key in WRAPPER_KEYS:
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsError(f"{source} is not a state_dict of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if not key.startswith(DROPPED_PREFIXES):
            out[key] = value
    return out


def _summary(label: str, items: list[str], shown: int = 5) -> str:
    head = ", ".join(items[:shown])
    more = f", ... ({len(items) - shown} more)" if len(items) > shown else ""
    return f"{len(items)} {label}: {head}{more}"


def check_state_dict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`WeightsError` unless ``state`` has exactly ``module``'s keys and shapes."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = [_summary(label, items) for label, items in
                (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)) if items]
    if problems:
        raise WeightsError(f"{source} does not fit {type(module).__name__}: " + "; ".join(problems))


def load_weights(module: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Read ``path`` and load it into ``module`` strictly (after the checks above)."""
    state = read_state_dict(path)
    check_state_dict(module, state, str(path))
    module.load_state_dict(state, strict=True)
    return module
