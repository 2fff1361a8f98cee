"""The estimator registry: names users type, and how each is created (only the chosen one is imported).

What each estimator is, its class and its checkpoints are declared once, in :mod:`backend.estimators.catalog`;
the ones that do not run yet are listed there too, so the command line and ``doctor`` can say plainly why.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from backend.estimators.base import Estimator, EstimatorError
from backend.estimators.catalog import available_estimators, estimator_info


def estimator_names() -> list[str]:
    return available_estimators()


def estimator_class(name: str) -> type:
    """The class implementing ``name``; unknown or unavailable names raise :class:`EstimatorError`."""
    info = estimator_info(name)
    if info is not None and info.implementation:
        module_name, class_name = info.implementation.split(":")
        try:
            module = importlib.import_module(module_name)  # only when used: one estimator's heavy dependencies
        except ImportError as exc:  # never slow down or break another
            raise EstimatorError(f"estimator {name!r} cannot be loaded: {exc}") from exc
        return getattr(module, class_name)
    if info is not None:
        raise EstimatorError(f"estimator {name!r} is not available: {info.unavailable}")
    raise EstimatorError(f"unknown estimator {name!r}; available: {', '.join(estimator_names())}")


def create_estimator(name: str, body_model: Any, device: Any, **options: Any) -> Estimator:
    """Instantiate the estimator ``name`` for ``body_model`` on ``device``; options it does not take are refused."""
    cls = estimator_class(name)
    try:
        inspect.signature(cls).bind(body_model, device=device, **options)
    except TypeError as exc:
        raise EstimatorError(f"estimator {name!r} does not take the options {sorted(options)}: {exc}") from exc
    return cls(body_model, device=device, **options)
