"""The one schema of a reconstruction's options, shared by the command line, the service and the add-on's job.

Every value is checked here, before any frame is read or any model loaded, so a wrong type or an out-of-range
value fails in a second with one line instead of after the whole run (or as an internal error). The checks need
nothing heavier than the standard library: the command line runs them before it imports torch.

The paths are checked here too: the output must not be one of the input files (writing it would destroy the
footage) and its folder must accept a new file, which is tried by creating and removing one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from backend.errors import OptionError
from backend.estimators.catalog import DEFAULT_ESTIMATOR, estimator_info

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # plus "cuda:N"
# auto: measure the camera's motion and leave static shots still; static: never measure it; moving: keep the
# measured motion even when it is below the static threshold (backend.world)
CAMERA_CHOICES = ("auto", "static", "moving")
MAX_FOCAL_PX = 1e6
MAX_FRAME = 10_000_000


def _positive_focal(value: float) -> str | None:
    if not 0.0 < value <= MAX_FOCAL_PX:
        return f"must be a positive number of pixels up to {MAX_FOCAL_PX:g}"
    return None


def _fov_range(value: float) -> str | None:
    return None if 1.0 < value < 179.0 else "must be between 1 and 179 degrees"


def _unit(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _frame(value: int) -> str | None:
    return None if 0 <= value <= MAX_FRAME else f"must be a frame number from 0 to {MAX_FRAME}"


def _device(value: str) -> str | None:
    if value in DEVICE_CHOICES or (value.startswith("cuda:") and value[5:].isdigit()):
        return None
    return f"must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N)"


def _camera_mode(value: str) -> str | None:
    return None if value in CAMERA_CHOICES else f"must be one of {', '.join(CAMERA_CHOICES)}"


def _name(value: str) -> str | None:
    return None if value.strip() and len(value) <= 100 else "must be a non-empty name"


@dataclass(frozen=True)
class OptionField:
    """One option, declared once: its JSON/Python type, its check, its command-line flag, the value used when it
    is not given, and its help. The command line's arguments and ``ReconstructOptions``' defaults come from here."""

    kind: type  # str, int, float, bool or dict
    check: Callable[[Any], str | None] | None = None
    flag: str = ""
    default: Any = None  # None: decided later (the camera's field of view, the frame range's end)
    help: str = ""


DEFAULT_ESTIMATOR_OPTIONS: dict = {}
DEFAULT_FOV_DEGREES = 55.0  # across the longer image side, when neither a field of view nor a focal is given

# Names are the service's request fields and ReconstructOptions' attributes.
FIELDS: dict[str, OptionField] = {
    "estimator": OptionField(str, _name, "--estimator", DEFAULT_ESTIMATOR,
                             "one of {estimators}; `doctor` says which can run here"),
    "body_model": OptionField(str, _name, "--body-model", "open-body",
                              "open-body (built in), anny (realistic bodies of every age; pip install anny==0.6.2) "
                              "or smpl-neutral/-male/-female (your SMPL file)"),
    "device": OptionField(str, _device, "--device", "auto", "auto (CUDA when available, else the CPU), cpu, cuda, "
                                                             "cuda:N"),
    "fov": OptionField(float, _fov_range, "--fov", None, "camera field of view in degrees across the longer side "
                                                         f"(when no --focal is given: {DEFAULT_FOV_DEGREES:g})"),
    "focal": OptionField(float, _positive_focal, "--focal", None, "camera focal length in pixels"),
    "frame_start": OptionField(int, _frame, "--start", None, "first frame (0-based, inclusive)"),
    "frame_end": OptionField(int, _frame, "--end", None, "last frame (inclusive)"),
    "keep_partial": OptionField(bool, None, "--keep-partial", False, "on cancel or a broken video, keep what was "
                                                                      "done"),
    "smoothing": OptionField(float, _unit, "--smoothing", 0.5, "temporal smoothing 0..1 (0 = off): zero-phase per "
                                                               "track, stronger on depth"),
    "coherence": OptionField(bool, None, "--no-coherence", True, "skip the refinement that separates "
                             "interpenetrating people and fixes their depth order"),
    "camera": OptionField(str, _camera_mode, "--camera", "auto",
                          "clips: auto measures the camera's rotation and zoom on the background and leaves still "
                          "shots still; static skips it; moving keeps even the smallest measured motion. The result "
                          "then also holds the camera and the people in a gravity-up world, floor at z = 0"),
    "estimator_options": OptionField(dict, None, "--option", DEFAULT_ESTIMATOR_OPTIONS,
                                     "a setting of the chosen estimator, NAME=VALUE (repeatable; listed below)"),
}


def default(name: str) -> Any:
    """The value ``name`` takes when it is not given (a fresh copy for mutable ones)."""
    value = FIELDS[name].default
    return dict(value) if isinstance(value, dict) else value


def check_options(raw: Mapping[str, Any], cli: bool = False) -> dict[str, Any]:
    """The options in ``raw`` that are set (None means "the default"), typed and checked; raises
    :class:`OptionError` naming the first bad one. ``cli`` names options by their flags in messages."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in FIELDS:
            raise OptionError(f"unknown option {name!r}")
        if value is not None:
            values[name] = _checked(name, value, FIELDS[name], cli)
    if "fov" in values and "focal" in values:
        raise OptionError("give either a field of view or a focal length, not both")
    start, end = values.get("frame_start", 0), values.get("frame_end")
    if end is not None and end < start:
        raise OptionError(f"the last frame ({end}) comes before the first ({start})")
    if "estimator_options" in values:
        estimator = values.get("estimator", DEFAULT_ESTIMATOR)
        values["estimator_options"] = check_estimator_options(estimator, values["estimator_options"], cli)
    return values


def check_estimator_options(estimator: str, raw: Mapping[str, Any], cli: bool = False) -> dict[str, Any]:
    """``raw`` checked against the settings ``estimator`` declares in the catalog (an unknown estimator is left
    to the registry, which names the known ones)."""
    info = estimator_info(estimator)
    if info is None:
        return dict(raw)
    checked: dict[str, Any] = {}
    for name, value in raw.items():
        option = info.option(name) if isinstance(name, str) else None
        if option is None:
            known = ", ".join(o.name for o in info.options) or "none"
            raise OptionError(f"{estimator} has no option {name!r} (its options: {known})")
        problem = option.check(value)
        if problem:
            label = f"--option {name}" if cli else f"{estimator} option {name}"
            raise OptionError(f"{label} {problem}, got {_shown(value)}")
        checked[name] = float(value) if isinstance(option.default, float) else value
    return checked


def parse_option_assignments(estimator: str, assignments: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` words from the command line as typed values of ``estimator``'s options (checked later)."""
    info = estimator_info(estimator)
    parsed: dict[str, Any] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"--option takes NAME=VALUE, got {_shown(text)}")
        option = info.option(name.strip()) if info is not None else None
        parsed[name.strip()] = option.parse(value) if option is not None else value
    return parsed


def _checked(name: str, value: Any, field: OptionField, cli: bool) -> Any:
    """``value`` as ``field.kind``; JSON's true/false never pass as numbers, nor numbers as true/false."""
    label = field.flag if cli else name
    if field.kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, field.kind) and (field.kind is bool or not isinstance(value, bool))
    if not ok:
        raise OptionError(f"{label} must be {_KIND_NAMES[field.kind]}, got {_shown(value)}")
    problem = field.check(value) if field.check else None
    if problem:
        raise OptionError(f"{label} {problem}, got {_shown(value)}")
    return value


_KIND_NAMES = {str: "a string", int: "a whole number", float: "a finite number", bool: "true or false",
               dict: "an object of option names and values"}


def _shown(value: Any) -> str:
    """A value in a message: short, on one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- paths ----------------------------------------------------------------------------------------------------


def resolve_request_path(text: str, field: str, base: str | None) -> Path:
    """A path from a service request: absolute as given, or relative to the request's absolute ``base``; a
    relative path without a base is refused (it would land in the service's own working directory)."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    if base is None:
        raise OptionError(f"{field} {text!r} is relative: send an absolute path, or the folder it is relative to "
                          "as 'base'")
    return Path(base) / path


def check_paths(input_path: str | os.PathLike, output_path: str | os.PathLike) -> None:
    """Refuse, before any work, an input that does not exist and an output that cannot be written or that is
    one of the input files. Raises ``SourceError`` or ``ResultFileError`` (one line each)."""
    from backend.result.contract import ResultFileError

    source, output = Path(input_path), Path(output_path)
    if not source.exists():
        from backend.sources.frames import SourceError

        raise SourceError(f"input not found: {source}")
    if output.exists() or output.is_symlink():
        if output.is_dir():
            raise ResultFileError(f"output is a folder, not a file: {output}")
        if not output.is_file():
            raise ResultFileError(f"output exists and is not a regular file: {output}")
        if _is_an_input(source, output):
            raise ResultFileError(f"output {output} is the input itself; choose another name (the input would be "
                                  "overwritten)")
    _check_writable(output)


def _is_an_input(source: Path, output: Path) -> bool:
    """Whether ``output`` names the input file, or one of the images of an input folder, under any name
    (relative, absolute, symbolic or hard link)."""
    try:
        if source.is_file():
            return os.path.samefile(source, output)
        return any(os.path.samefile(entry, output) for entry in source.iterdir() if entry.is_file())
    except OSError:
        return False


def _check_writable(output: Path) -> None:
    """Create and remove a file where the output's temporary file will go: a read-only folder or filesystem,
    a missing permission or a path through a file fails now, not after the run."""
    from backend.result.contract import ResultFileError
    from backend.runtime.atomic import probe_writable

    try:
        probe_writable(output)
    except OSError as exc:
        raise ResultFileError(f"cannot write the output {output}: {exc.strerror or exc}") from None


__all__ = ["CAMERA_CHOICES", "DEFAULT_FOV_DEGREES", "DEVICE_CHOICES", "FIELDS", "OptionField", "default", "check_estimator_options", "check_options", "check_paths",
           "parse_option_assignments", "resolve_request_path"]
