"""Expected failures and their stable codes, shared by the command line and the service protocol.

An expected failure is the user's to fix (a missing file, an unknown estimator); it is shown as one line. Anything
else is a bug and keeps its traceback on stderr.
"""

from __future__ import annotations


class OptionError(ValueError):
    """An option value the user gave is out of range or unknown (a field of view of 200 degrees, say)."""


def error_code(exc: BaseException) -> str | None:
    """The protocol's stable code for an expected failure, or None for an unexpected one.

    Looks only at modules already imported (an exception of a class can only exist once its module is): the
    server answers even if torch or a body model cannot load, and a refused option costs no torch import."""
    import sys

    for module, name, code in _EXPECTED:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return code
    return None


_EXPECTED = [
    ("backend.pipeline", "Cancelled", "CANCELLED"),
    ("backend.sources", "SourceError", "INPUT_ERROR"),
    ("backend.estimators.base", "EstimatorError", "ESTIMATOR_ERROR"),
    ("backend.body.errors", "BodyModelError", "BODY_MODEL_ERROR"),
    ("backend.device", "DeviceError", "DEVICE_ERROR"),
    ("backend.result", "ResultFileError", "RESULT_ERROR"),
    ("backend.errors", "OptionError", "INVALID_OPTION"),
]
