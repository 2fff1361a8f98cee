"""Expected failures and their stable codes, shared by the command line and the service protocol.

An expected failure is the user's to fix (a missing file, an unknown estimator); it is shown as one line. Anything
else is a bug and keeps its traceback on stderr.
"""

from __future__ import annotations


class OptionError(ValueError):
    """An option value the user gave is out of range or unknown (a field of view of 200 degrees, say)."""


def error_code(exc: BaseException) -> str | None:
    """The protocol's stable code for an expected failure, or None for an unexpected one."""
    for cls, code in _expected():
        if isinstance(exc, cls):
            return code
    return None


def _expected() -> list[tuple[type, str]]:
    # Imported here: the server must answer protocol errors even if torch or a body model cannot load.
    from backend.body import BodyModelError
    from backend.device import DeviceError
    from backend.estimators.base import EstimatorError
    from backend.pipeline import Cancelled
    from backend.result import ResultFileError
    from backend.sources import SourceError

    return [
        (Cancelled, "CANCELLED"),
        (SourceError, "INPUT_ERROR"),
        (EstimatorError, "ESTIMATOR_ERROR"),
        (BodyModelError, "BODY_MODEL_ERROR"),
        (DeviceError, "DEVICE_ERROR"),
        (ResultFileError, "RESULT_ERROR"),
        (OptionError, "INVALID_OPTION"),
    ]
