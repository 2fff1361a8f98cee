"""Where estimator checkpoints live and how they are loaded.

Folder: ``$TROUPE_WEIGHTS_DIR`` if set (e.g. a shared folder of downloads), else the cache's ``weights/``.
Loading is always ``torch.load(weights_only=True)`` (plain tensors, no pickled code). Accepted layouts:
a plain state_dict (simple_romp's ROMP.pkl / BEV.pth), the original training layout with a ``module.`` prefix
and ``_result_parser.*`` / ``_calc_loss.*`` extras (dropped), either optionally wrapped in
``{'model_state_dict': ...}`` or ``{'state_dict': ...}``. A mismatch raises :class:`WeightsError` naming the
missing, unexpected and mis-shaped keys. Official file names and URLs are data for users' machines; this module
only copies from a URL it is given (``file://`` works) and never downloads on its own.

PyTorch Lightning checkpoints (PARE's ``.ckpt``): ``{'state_dict': {'model.<key>': tensor, 'loss_fn.*': ...,
'model.smpl.smpl.*': SMPL buffers}, 'hyper_parameters': <yacs CfgNode / AttributeDict>, 'optimizer_states': ...,
...}``. Only ``model.*`` is kept, prefix stripped, ``model.smpl.*`` dropped (the body comes from the pipeline).
The extra entries hold pickled classes (yacs, pytorch_lightning) that ``weights_only=True`` refuses. For entries
marked ``lightning`` the loader then retries with :func:`restricted_load`: the same torch zip reader, but every
global outside torch's own weights_only allowlist becomes an inert placeholder that only records its arguments
and state, so no module is imported and no pickled code runs; the hyper-parameters come back as plain dicts.
A user who prefers to check by hand can extract the weights themselves on a trusted machine:
``torch.save({'state_dict': torch.load(ckpt, weights_only=False)['state_dict']}, 'pare_state_dict.pt')``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import shutil
import types
import urllib.request
from pathlib import Path
from typing import IO, Any, Mapping

import torch

from backend.estimators.base import EstimatorError
from backend.estimators.catalog import Checkpoint, all_checkpoints
from backend.runtime.atomic import atomic_path
from backend.runtime.paths import cache_subdir

DROPPED_PREFIXES = ("_result_parser.", "_calc_loss.")
WRAPPER_KEYS = ("model_state_dict", "state_dict")
LIGHTNING_PREFIX = "model."  # PyTorch Lightning: the LightningModule's ``self.model``
LIGHTNING_DROPPED = ("smpl.",)  # after the prefix: PARE's SMPL layer buffers (model.smpl.smpl.*)


class WeightsError(EstimatorError):
    """A checkpoint is missing, unreadable or does not fit the network."""


CHECKPOINTS: dict[str, Checkpoint] = all_checkpoints()  # declared with their estimators in the catalog


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
    with atomic_path(target) as tmp:
        with tmp.open("wb") as handle:
            _copy_source(source, handle)
        state = read_state_dict(tmp, restricted_fallback=CHECKPOINTS[name].lightning, label=str(source))
        check_state_dict(network_for(name), state, f"{source}")
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
    info = CHECKPOINTS[name]
    module_name, class_name = info.network.split(":")
    return getattr(importlib.import_module(module_name), class_name)(*info.network_args)


def checkpoint_status() -> dict[str, str]:
    """Each known checkpoint -> where it is installed, or where to get it (for ``weights list`` and ``doctor``)."""
    out = {}
    for name, info in CHECKPOINTS.items():
        found = weights_dir() / info.filename
        out[name] = str(found) if found.is_file() else f"not installed ({info.filename} from {info.url})"
    return out


def read_state_dict(path: str | os.PathLike, restricted_fallback: bool = False, label: str | None = None
                    ) -> dict[str, torch.Tensor]:
    """Load a checkpoint with ``weights_only=True`` and normalise it to plain, unprefixed network keys.

    ``restricted_fallback``: when weights_only refuses a global, retry with :func:`restricted_load` (Lightning).
    ``label``: the file's name in messages (the user's file, not the temporary copy being checked)."""
    return read_checkpoint(path, restricted_fallback, label)[0]


def read_checkpoint(path: str | os.PathLike, restricted_fallback: bool = False, label: str | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(normalised state_dict, hyper-parameters as plain data or None) of a checkpoint file."""
    label = label or str(path)
    try:
        raw = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a pickled class weights_only does not allow
        if not restricted_fallback:
            raise WeightsError(f"cannot read checkpoint {label}: {_load_problem(exc)}") from None
        raw = restricted_load(path, label)
    except Exception as exc:  # truncated zip, not a torch file
        raise WeightsError(f"cannot read checkpoint {label}: {_load_problem(exc)}") from None
    hparams = plain_data(raw.get("hyper_parameters")) if isinstance(raw, Mapping) else None
    return normalize_state_dict(raw, label), hparams if isinstance(hparams, dict) else None


def _load_problem(exc: BaseException) -> str:
    """What is wrong with a file torch could not load, in one line, without torch's advice to load it unsafely
    (``weights_only=False`` would run whatever code the file holds)."""
    text = str(exc)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        return f"it asks to run {refused.group(1)}, which a weights file never needs; refused without running it"
    if "Unsupported operand" in text or "zip archive" in text or isinstance(exc, EOFError):
        return "not a PyTorch checkpoint, or the file is truncated"
    if "Weights only load failed" in text:
        return "it holds pickled Python objects, not only weights; refused without running them"
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f"not a PyTorch checkpoint, or the file is truncated ({type(exc).__name__}: {first})".replace(": )", ")")


class Opaque(dict):
    """Stand-in for a pickled class the restricted loader does not trust: records arguments, items and state as
    data. Its methods are the only code that runs for such an object."""

    global_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE / INST: never forwards to a real class
        super().__init__()
        self.__dict__["_args"] = args
        self.__dict__["_list"] = []

    def __call__(self, *args: Any, **kwargs: Any) -> "Opaque":  # REDUCE with a placeholder as the callable
        return Opaque(*args)

    def __setstate__(self, state: Any) -> None:  # BUILD
        self.__dict__["_state"] = state

    def append(self, item: Any) -> None:  # APPEND on a list subclass
        self.__dict__.setdefault("_list", []).append(item)

    def extend(self, items: Any) -> None:
        self.__dict__.setdefault("_list", []).extend(items)

    def __reduce__(self) -> Any:  # never re-pickled as the original class
        return (dict, (dict(self),))


def _allowed_globals() -> dict[str, Any]:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return dict(_get_allowed_globals())
    except Exception:  # a torch without that private helper: the tensor rebuilders are enough for checkpoints
        import collections

        import torch._utils as tu

        return {"torch._utils._rebuild_tensor_v2": tu._rebuild_tensor_v2,
                "torch._utils._rebuild_parameter": tu._rebuild_parameter,
                "collections.OrderedDict": collections.OrderedDict}


def _restricted_pickle_module() -> types.ModuleType:
    allowed = _allowed_globals()
    placeholders: dict[str, type] = {}

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            full = f"{module}.{name}"
            if full in allowed:
                return allowed[full]
            if full not in placeholders:
                placeholders[full] = type(name, (Opaque,), {"global_name": full})
            return placeholders[full]

    module = types.ModuleType("troupe_restricted_pickle")
    module.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    module.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    module.__name__ = "troupe_restricted_pickle"
    return module


def restricted_load(path: str | os.PathLike, label: str | None = None) -> Any:
    """torch.load of a zip checkpoint where only torch's weights_only allowlist is trusted; any other global
    (yacs CfgNode, Lightning AttributeDict, callbacks, ...) becomes an :class:`Opaque` placeholder. Nothing is
    imported and no pickled code runs, so it is as safe as ``weights_only=True``; only tensors and plain data
    are used from the result."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=False,
                          pickle_module=_restricted_pickle_module())
    except Exception as exc:
        raise WeightsError(f"cannot read checkpoint {label or path} (restricted loader): {_load_problem(exc)}"
                           ) from None


def plain_data(obj: Any, depth: int = 0) -> Any:
    """Placeholders -> dicts of their items (a yacs CfgNode's config), recursively; other values unchanged."""
    if depth > 32:
        return None
    if isinstance(obj, Opaque):
        items = dict(obj)
        state = obj.__dict__.get("_state")
        if not items and isinstance(state, Mapping):
            items = {k: v for k, v in state.items() if not str(k).startswith("__")}
        return {str(k): plain_data(v, depth + 1) for k, v in items.items()}
    if isinstance(obj, Mapping):
        return {str(k): plain_data(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v, depth + 1) for v in obj]
    return obj


def normalize_state_dict(raw: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap ``model_state_dict`` / ``state_dict``, strip ``module.``, drop ``_result_parser.*`` / ``_calc_loss.*``;
    Lightning (any ``model.*`` key): keep only ``model.*`` without the prefix, minus ``smpl.*``."""
    for key in WRAPPER_KEYS:
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsError(f"{source} is not a state_dict of tensors")
    if any(str(k).startswith(LIGHTNING_PREFIX) for k in raw):  # Lightning: keep model.*, minus its SMPL layer
        raw = {k[len(LIGHTNING_PREFIX):]: v for k, v in raw.items() if k.startswith(LIGHTNING_PREFIX)
               and not k[len(LIGHTNING_PREFIX):].startswith(LIGHTNING_DROPPED)}
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


def load_weights(module: torch.nn.Module, path: str | os.PathLike, restricted_fallback: bool = False
                 ) -> torch.nn.Module:
    """Read ``path`` and load it into ``module`` strictly (after the checks above)."""
    state = read_state_dict(path, restricted_fallback)
    check_state_dict(module, state, str(path))
    module.load_state_dict(state, strict=True)
    return module
