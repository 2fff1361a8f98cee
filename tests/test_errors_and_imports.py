"""Expected failures carry their protocol codes; the backend's modules import each other without cycles
(function-level imports included); the module of expected errors imports nothing, so the service can name a
failure even when torch cannot load."""

from __future__ import annotations

import ast
import graphlib
import os
import subprocess
import sys
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[1] / "backend"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(BACKEND.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the backend modules it imports anywhere in its body (``from pkg import mod`` names ``pkg.mod``)."""
    modules = {module_name(p): p for p in BACKEND.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "backend":
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    graph[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name.split(".")[0] == "backend")
    return graph


def test_no_import_cycles_in_the_backend() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None


def test_the_cycle_check_sees_function_level_imports() -> None:
    graph = import_graph()
    graph["backend.errors"] = graph["backend.errors"] | {"backend.pipeline"}  # what errors._expected() once did
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError:
        return
    raise AssertionError("a cycle through backend.errors went unnoticed")


def test_errors_imports_nothing_from_the_backend() -> None:
    assert import_graph()["backend.errors"] == set()


def test_every_expected_failure_has_its_protocol_code() -> None:
    from backend.body import BodyModelError
    from backend.detection.models import ModelsError
    from backend.errors import BatchError, OptionError, error_code
    from backend.estimators.base import EstimatorError
    from backend.estimators.weights import WeightsError
    from backend.pipeline import Cancelled
    from backend.result.contract import ResultFileError
    from backend.runtime.device import DeviceError
    from backend.sources.frames import SourceError

    expected = {Cancelled: "CANCELLED", SourceError: "INPUT_ERROR", EstimatorError: "ESTIMATOR_ERROR",
                WeightsError: "ESTIMATOR_ERROR", ModelsError: "ESTIMATOR_ERROR", BodyModelError: "BODY_MODEL_ERROR",
                DeviceError: "DEVICE_ERROR", ResultFileError: "RESULT_ERROR", OptionError: "INVALID_OPTION",
                BatchError: "BATCH_ERROR"}
    assert {cls: error_code(cls("x")) for cls in expected} == expected
    assert error_code(ValueError("a bug")) is None and error_code(KeyError("x")) is None


def test_reading_the_tflite_models_imports_neither_mediapipe_nor_matplotlib(tmp_path) -> None:
    """Only mediapipe's schema file is read: importing the mediapipe package runs its __init__, which pulls in
    matplotlib (seconds, and its config and font cache written into the home folder)."""
    code = ("import sys, backend.detection.tflite as t; assert t.tfl.BuiltinOperator.CONV_2D >= 0; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mediapipe', 'matplotlib'}))")
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME")}
    run = subprocess.run([sys.executable, "-c", code], cwd=BACKEND.parent, capture_output=True, text=True, timeout=120,
                         env={**env, "HOME": str(home)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]" and not any(home.iterdir())


def test_loading_onnx_runtime_writes_nothing_into_the_home_folder(tmp_path) -> None:
    """ONNX Runtime's telemetry writes a device id under ~/.cache when it is imported; Troupe imports it with
    that cache pointed into its own cache folder."""
    home, cache = tmp_path / "home", tmp_path / "troupe-cache"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "XDG_CACHE_HOME"}
    code = "from backend.detection.runtime import _import_onnxruntime; _import_onnxruntime(); import os; " \
           "assert 'XDG_CACHE_HOME' not in os.environ"
    run = subprocess.run([sys.executable, "-c", code], cwd=BACKEND.parent, capture_output=True, text=True,
                         timeout=120, env={**env, "HOME": str(home), "TROUPE_CACHE_DIR": str(cache)})
    assert run.returncode == 0, run.stderr
    assert not any(home.iterdir()) and (cache / "onnxruntime").is_dir()
