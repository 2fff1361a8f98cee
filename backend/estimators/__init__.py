"""The estimator registry: names users type, and how each is created.

Only estimators that really run are registered. The others from the design are listed in ``PLANNED`` so the
command line and ``doctor`` can say plainly that they are not available yet instead of failing obscurely.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from backend.estimators.base import Estimator, EstimatorError, FrameEstimates, PersonEstimate

DEFAULT_ESTIMATOR = "mediapipe-fit"

PLANNED = {
    "crmh": "Jiang et al. (coherent multi-person R-CNN) is not implemented yet",
    "dimr": "DIMR has no public weights or code; not available",
}


# name -> (module, class); modules are imported only when the estimator is used, so one estimator's heavy
# dependencies never slow down or break another.
REGISTERED: dict[str, tuple[str, str]] = {
    "mediapipe-fit": ("backend.estimators.mediapipe_fit", "MediapipeFitEstimator"),
    "romp": ("backend.estimators.romp", "RompEstimator"),
    "bev": ("backend.estimators.bev", "BevEstimator"),
    "pare": ("backend.estimators.pare", "PareEstimator"),
    "lasor": ("backend.estimators.lasor", "LasorEstimator"),
}


def estimator_names() -> list[str]:
    return sorted(REGISTERED)


def estimator_class(name: str) -> type:
    """The class implementing ``name``; unknown or unavailable names raise :class:`EstimatorError`."""
    if name in REGISTERED:
        module_name, class_name = REGISTERED[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EstimatorError(f"estimator {name!r} cannot be loaded: {exc}") from exc
        return getattr(module, class_name)
    if name in PLANNED:
        raise EstimatorError(f"estimator {name!r} is not available: {PLANNED[name]}")
    raise EstimatorError(f"unknown estimator {name!r}; available: {', '.join(estimator_names())}")


def create_estimator(name: str, body_model: Any, device: Any, **options: Any) -> Estimator:
    """Instantiate the estimator ``name`` for ``body_model`` on ``device``; options it does not take are refused."""
    cls = estimator_class(name)
    try:
        inspect.signature(cls).bind(body_model, device=device, **options)
    except TypeError as exc:
        raise EstimatorError(f"estimator {name!r} does not take the options {sorted(options)}: {exc}") from exc
    return cls(body_model, device=device, **options)


__all__ = [
    "DEFAULT_ESTIMATOR",
    "Estimator",
    "EstimatorError",
    "FrameEstimates",
    "PersonEstimate",
    "create_estimator",
    "estimator_class",
    "estimator_names",
]
