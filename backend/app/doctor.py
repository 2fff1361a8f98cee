"""``python -m backend doctor``: what is installed and usable, and a plain reason for what is not.

Exit code 0 when the default pipeline (mediapipe-fit on the open body) can run.
"""

from __future__ import annotations

import importlib
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from backend.estimators.catalog import CATALOG, DEFAULT_ESTIMATOR, EstimatorInfo

INSTALL_HINT = ("pip install -r backend/requirements.txt in the backend's environment (in Blender: Create Backend "
                "Environment in the add-on's preferences)")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True  # needed by the default pipeline


def run_doctor(out: TextIO) -> int:
    """Print one line per check; return 0 when every required check passed."""
    checks = collect_checks()
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.required else "--  ")
        print(f"{mark} {check.name:26s} {check.detail}", file=out)
    failed = [c.name for c in checks if c.required and not c.ok]
    if failed:
        print(f"\nthe default pipeline cannot run: {', '.join(failed)}", file=out)
        return 1
    print("\nthe default pipeline (mediapipe-fit, open-body) can run", file=out)
    return 0


def collect_checks() -> list[Check]:
    checks = [_python_check()]
    for probe in (_package("numpy"), _package("cv2", "opencv"), _torch_check, _cuda_check, _mediapipe_check,
                  _mediapipe_models_check, _people_models_check):
        checks.append(_guarded(probe))
    checks.extend(_guarded_many(_body_checks))
    checks.extend(_estimator_checks())
    checks.append(Check("cache directory", True, str(_cache_dir()), required=False))
    return checks


def _guarded(probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - a broken install is exactly what doctor must describe
        name = getattr(probe, "__name__", "check").strip("_").replace("_check", "")
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _guarded_many(probe: Callable[[], list[Check]]) -> list[Check]:
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001
        return [Check("body models", False, f"{type(exc).__name__}: {exc}")]


def _python_check() -> Check:
    ok = sys.version_info >= (3, 10)
    detail = f"{platform.python_version()} at {sys.executable}"
    return Check("python", ok, detail if ok else f"{detail}: Python 3.10 or newer is needed")


def _package(module: str, label: str | None = None) -> Callable[[], Check]:
    def probe() -> Check:
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            return Check(label or module, False, f"not importable: {exc}")
        return Check(label or module, True, getattr(imported, "__version__", "installed"))

    probe.__name__ = module
    return probe


def _torch_check() -> Check:
    try:
        import torch
    except ImportError as exc:
        return Check("torch", False, f"not importable ({exc}): {INSTALL_HINT}")
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    return Check("torch", True, f"{torch.__version__} ({build})")


def _cuda_check() -> Check:
    try:
        import torch
    except ImportError:
        return Check("cuda", False, "needs torch (see above)", required=False)

    if not torch.cuda.is_available():
        reason = "torch is a CPU build" if torch.version.cuda is None else "no CUDA device visible"
        return Check("cuda", False, f"not available ({reason}); estimators run on the CPU", required=False)
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return Check("cuda", True, ", ".join(names), required=False)


def _mediapipe_check() -> Check:
    """mediapipe is needed for its TFLite schema only (the models come from its pinned 0.10.21 wheel)."""
    import importlib.metadata

    from backend.detection.tflite_schema import load_schema

    try:
        load_schema()  # what backend.detection.tflite reads
        version = importlib.metadata.version("mediapipe")
    except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
        return Check("mediapipe", False, f"not importable: {exc} (pip install -r backend/requirements.txt)")
    return Check("mediapipe", True, f"{version} (its TFLite schema reads the model files)")


def _mediapipe_models_check() -> Check:
    """MediaPipe's detector and landmark models: needed; installed from the pinned wheel, never from the package."""
    from backend.detection.models import MEDIAPIPE_MODELS, ModelsError, model_path

    try:
        folders = {model_path(name).parent for name in MEDIAPIPE_MODELS.files}
    except ModelsError as exc:
        return Check("mediapipe models", False, str(exc))
    return Check("mediapipe models", True, f"{', '.join(MEDIAPIPE_MODELS.files)} in {', '.join(map(str, folders))} "
                 f"(from {MEDIAPIPE_MODELS.filename}, sha256-checked; {MEDIAPIPE_MODELS.licence})")


def _people_models_check() -> Check:
    """The optional body detector (installed from npm) and how the networks run."""
    from backend.detection.models import NPM_MODELS, DamagedModelError, ModelsError, model_path
    from backend.detection.runtime import use_onnx

    runtime = "ONNX Runtime on the CPU" if use_onnx() else "torch (ONNX Runtime off or not installed: slower on a CPU)"
    found, missing = [], []
    for name, model in NPM_MODELS.items():
        try:
            found.append(f"{name} in {model_path(name).parent} (from {model.package}@{model.version}, "
                         f"checksum-checked; {model.licence})")
        except DamagedModelError:
            missing.append(f"{name} (damaged)")
        except ModelsError:
            missing.append(name)
    if missing:
        return Check("people-finding models", False, f"{', '.join(missing)} not usable: run `python -m backend "
                     f"models install` (people seen from behind or cut by the frame are missed without them); "
                     f"networks run on {runtime}", required=False)
    return Check("people-finding models", True, f"{'; '.join(found)}; networks run on {runtime}", required=False)


def _body_checks() -> list[Check]:
    from backend.body import available_body_models

    checks = []
    for name, status in available_body_models().items():
        usable = not status.startswith(("not installed", "unusable"))  # else it is the file it loads from
        checks.append(Check(f"body: {name}", usable, status, required=name == "open-body"))
    return checks


def _estimator_checks() -> list[Check]:
    """One check per estimator of the catalog: its class loads and its weights are in place (or why not)."""
    checks = []
    for info in CATALOG:
        if not info.implementation:
            checks.append(Check(f"estimator: {info.name}", False, info.unavailable, required=False))
            continue
        try:
            from backend.estimators.registry import estimator_class

            estimator_class(info.name)
            ok, detail = _estimator_weights(info)
        except Exception as exc:  # noqa: BLE001 - EstimatorError, or torch missing: doctor says which
            ok, detail = False, f"{exc}"
        checks.append(Check(f"estimator: {info.name}", ok, detail, required=info.name == DEFAULT_ESTIMATOR))
    return checks


def _estimator_weights(info: EstimatorInfo) -> tuple[bool, str]:
    """Whether the estimator's weights are where it looks for them, and which file or what is missing."""
    from backend.estimators.weights import checkpoint_status

    if info.name in ("lasor", "mediapipe-fit"):  # mediapipe-fit's default start reads LASOR too
        from backend.lasor.train import DEFAULT_WEIGHTS

        if DEFAULT_WEIGHTS.is_file():
            return True, f"shipped LASOR weights {DEFAULT_WEIGHTS.name}"
        return False, f"shipped LASOR weights missing: {DEFAULT_WEIGHTS}"
    names = [c.name for c in info.checkpoints]
    if not names:
        return True, "ready (no weights needed)"
    status = checkpoint_status()
    installed = [c for c in names if not status[c].startswith("not installed")]
    if installed:
        return True, f"ready with {', '.join(installed)}"
    return False, f"weights {status[names[0]]}; then `backend weights install {names[0]}`"


def _cache_dir() -> Path:
    from backend.runtime.paths import cache_dir

    return cache_dir()
