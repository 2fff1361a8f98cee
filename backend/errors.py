"""Expected failures and their stable codes, shared by the command line and the service protocol.

An expected failure is the user's to fix (a missing file, an unknown estimator); it is shown as one line. Anything
else is a bug and keeps its traceback on stderr. Every expected failure carries its protocol code as the class
attribute ``troupe_code``: the classes here (raised by the stages, which re-export them where callers look), and
``result.ResultFileError``, which stays in that module because the add-on loads it alone. So this module imports
nothing, and the service can name a failure even when torch cannot load.
"""

from __future__ import annotations


class TroupeError(Exception):
    """An expected failure; ``troupe_code`` is its stable protocol code."""

    troupe_code = "ERROR"


class OptionError(TroupeError, ValueError):
    """An option value the user gave is out of range or unknown (a field of view of 200 degrees, say)."""

    troupe_code = "INVALID_OPTION"


class SourceError(TroupeError, ValueError):
    """The input cannot be read as images or video; the message names the file and the reason."""

    troupe_code = "INPUT_ERROR"


class EstimatorError(TroupeError, RuntimeError):
    """An estimator cannot run: missing weights or dependencies, wrong checkpoint, unusable input."""

    troupe_code = "ESTIMATOR_ERROR"


class BodyModelError(TroupeError):
    """A body model cannot be loaded or installed; the message is one line that names the file or model."""

    troupe_code = "BODY_MODEL_ERROR"


class DeviceError(TroupeError, RuntimeError):
    """The requested device cannot be used here."""

    troupe_code = "DEVICE_ERROR"


class BatchError(TroupeError):
    """A batch cannot start or go on: Ray missing or unreachable, an unusable output folder or manifest."""

    troupe_code = "BATCH_ERROR"


class Cancelled(TroupeError):
    """The user cancelled the reconstruction."""

    troupe_code = "CANCELLED"


def error_code(exc: BaseException) -> str | None:
    """The protocol's stable code for an expected failure, or None for an unexpected one."""
    code = getattr(exc, "troupe_code", None)
    return code if isinstance(code, str) else None
