"""The estimator registry: names users type, and how each is created.

Only estimators that really run are registered. The others from the design are listed in ``PLANNED`` so the
command line and ``doctor`` can say plainly that they are not available yet instead of failing obscurely.
"""

from __future__ import annotations

from typing import Any, Callable

from backend.estimators.base import Estimator, EstimatorError, FrameEstimates, PersonEstimate

DEFAULT_ESTIMATOR = "mediapipe-fit"

PLANNED = {
    "romp": "ROMP (one-stage multi-person) is not implemented yet",
    "bev": "BEV (ROMP with relative depth) is not implemented yet",
    "pare": "PARE (part attention against occlusion) is not implemented yet",
    "crmh": "Jiang et al. (coherent multi-person R-CNN) is not implemented yet",
    "lasor": "LASOR (keypoints and silhouettes regressor) is not implemented yet",
    "dimr": "DIMR has no public weights or code; not available",
}


def _create_mediapipe_fit(body_model: Any, device: Any, **options: Any) -> Estimator:
    from backend.estimators.mediapipe_fit import MediapipeFitEstimator

    return MediapipeFitEstimator(body_model, device=device, **options)


FACTORIES: dict[str, Callable[..., Estimator]] = {"mediapipe-fit": _create_mediapipe_fit}


def estimator_names() -> list[str]:
    return sorted(FACTORIES)


def create_estimator(name: str, body_model: Any, device: Any, **options: Any) -> Estimator:
    """Instantiate the estimator ``name``; unknown or unavailable names raise :class:`EstimatorError`."""
    if name in FACTORIES:
        return FACTORIES[name](body_model, device, **options)
    if name in PLANNED:
        raise EstimatorError(f"estimator {name!r} is not available: {PLANNED[name]}")
    raise EstimatorError(f"unknown estimator {name!r}; available: {', '.join(estimator_names())}")


__all__ = [
    "DEFAULT_ESTIMATOR",
    "Estimator",
    "EstimatorError",
    "FrameEstimates",
    "PersonEstimate",
    "create_estimator",
    "estimator_names",
]
