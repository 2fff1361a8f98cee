"""Batched SMPL fitting to 2D/3D landmarks: the model-side half of the ``mediapipe-fit`` estimator.

``mapping`` (which landmark observes which body point), ``body_points`` (those points as a cheap function of
pose and shape), ``init`` (starting values), ``losses`` and ``priors`` (the energy), ``optimize`` (the loop).
"""

from backend.fitting.body_points import BodyPoints
from backend.fitting.optimize import FitInput, FitOptions, FitResult, fit_people

__all__ = ["BodyPoints", "FitInput", "FitOptions", "FitResult", "fit_people"]
