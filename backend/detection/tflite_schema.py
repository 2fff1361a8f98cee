"""MediaPipe's generated TFLite flatbuffer schema, the one part of the mediapipe package Troupe uses.

It is loaded from its file, not imported as ``mediapipe.tasks.metadata...``: importing anything under
``mediapipe`` first runs the package's ``__init__``, which imports its drawing utilities and with them matplotlib
(seconds of start-up, and matplotlib writes its config and font cache into the user's home folder).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_MODULE_NAME = "_troupe_tflite_schema"
_RELATIVE = Path("tasks", "metadata", "schema_py_generated.py")


def schema_path() -> Path:
    """Where the installed mediapipe keeps the schema; ImportError naming the fix when it is not there."""
    spec = importlib.util.find_spec("mediapipe")  # finds the package without running its __init__
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / _RELATIVE).is_file():
            return Path(folder) / _RELATIVE
    raise ImportError("mediapipe's TFLite schema (mediapipe/tasks/metadata/schema_py_generated.py) is not installed; "
                      "pip install -r backend/requirements.txt")


def load_schema() -> ModuleType:
    """The schema module, loaded once."""
    if _MODULE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, schema_path())
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_MODULE_NAME]
            raise
    return sys.modules[_MODULE_NAME]
