"""Each estimator's own settings in the panel, built from the backend's catalog (``EstimatorInfo.options``).

The catalog is the one declaration: a setting added there appears here as a property named
``<estimator>__<option>``, is shown while that estimator is chosen, and reaches the backend in the request's
``estimator_options`` (only the values that differ from the catalog's defaults), where ``backend.options``
checks it like any other option.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty

from . import backend_env


def _catalog() -> Any:
    return backend_env.load_backend_file("backend/estimators/catalog.py", "_troupe_estimator_catalog")


def property_name(estimator: str, option: str) -> str:
    return f"{estimator.replace('-', '_')}__{option}"


def declared(estimator: str) -> list[Any]:
    """The ``EstimatorOption`` entries of ``estimator`` (none when the backend source is missing)."""
    catalog = _catalog()
    info = catalog.estimator_info(estimator) if catalog is not None else None
    return list(info.options) if info is not None else []


def _property(option: Any) -> Any:
    common = {"name": option.label, "description": option.description}
    if isinstance(option.default, bool):
        return BoolProperty(default=option.default, **common)
    if isinstance(option.default, float):
        return FloatProperty(default=option.default, min=option.minimum, max=option.maximum, **common)
    return EnumProperty(items=[(choice, choice, "") for choice in option.choices], default=option.default, **common)


def _build_group() -> type:
    catalog = _catalog()
    annotations = {}
    for info in catalog.CATALOG if catalog is not None else ():
        for option in info.options if info.implementation else ():
            annotations[property_name(info.name, option.name)] = _property(option)
    return type("TroupeEstimatorOptions", (bpy.types.PropertyGroup,), {
        "__annotations__": annotations, "__doc__": "Every estimator's own settings (from the backend's catalog)"})


TroupeEstimatorOptions = _build_group()


def request_values(group: bpy.types.PropertyGroup, estimator: str) -> dict[str, Any]:
    """The chosen estimator's settings that differ from their defaults, as the request sends them."""
    values = {}
    for option in declared(estimator):
        value = getattr(group, property_name(estimator, option.name))
        value = float(value) if isinstance(option.default, float) else value
        if (abs(value - option.default) > 1e-6) if isinstance(option.default, float) else value != option.default:
            values[option.name] = value
    return values


def draw(layout: bpy.types.UILayout, group: bpy.types.PropertyGroup, estimator: str) -> None:
    for option in declared(estimator):
        layout.prop(group, property_name(estimator, option.name))
