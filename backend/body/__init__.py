"""Body models behind one interface: the user's SMPL (after ``body install``), the built-in open body and Anny
(the ``anny`` package, an optional requirement; see ``anny_body``).

``load_body_model(name)`` returns a ``BodyModel`` (torch). Torch is imported only when a model is loaded, so
``available_body_models()`` works for the doctor command even where torch is missing.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from backend.body.errors import BodyModelError

if TYPE_CHECKING:
    import torch

    from backend.body.model import BodyModel, BodyOutput

BODY_MODEL_NAMES: tuple[str, ...] = ("open-body", "anny", "smpl-neutral", "smpl-male", "smpl-female")
SMPL_MODEL_NAMES = BODY_MODEL_NAMES[2:]
SMPL_DEFAULT_BETAS = 10
# The fit moves Anny's betas this many times faster than the pose: its shape space spans toddlers to elders
# (python -m backend eval --fit-init --body-model anny: height error and root depth error fall, see README).
ANNY_FIT_SHAPE_STEP = 10.0

__all__ = [
    "BODY_MODEL_NAMES", "BodyModel", "BodyModelError", "BodyOutput", "available_body_models", "load_body_model",
]


def __getattr__(name: str) -> Any:
    """``BodyModel`` and ``BodyOutput`` on first use, so importing this package does not import torch."""
    if name in ("BodyModel", "BodyOutput"):
        from backend.body import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _smpl_gender(name: str) -> str:
    if name not in SMPL_MODEL_NAMES:
        raise BodyModelError(f"unknown body model {name!r}; choose one of {', '.join(BODY_MODEL_NAMES)}")
    return name.split("-", 1)[1]


def load_body_model(
    name: str = "open-body", device: Any = "cpu", dtype: torch.dtype | None = None, num_betas: int | None = None
) -> BodyModel:
    """A ready body model on ``device``; ``num_betas`` truncates the shape space (SMPL default: 10)."""
    import numpy as np
    import torch

    from backend.body.model import BodyModel

    dtype = dtype or torch.float32
    if name == "open-body":
        from backend.body.open_body import open_body_arrays

        arrays = open_body_arrays()
        landmarks = dict(zip(arrays["landmark_names"].tolist(), arrays["landmark_vertices"].tolist(), strict=True))
    elif name == "anny":
        from backend.body.anny_body import anny_body_arrays

        arrays = anny_body_arrays()
        landmarks = dict(zip(arrays["landmark_names"].tolist(), arrays["landmark_vertices"].tolist(), strict=True))
    else:
        from backend.body.landmarks import smpl_landmarks
        from backend.body.smpl_file import installed_path, load_smpl_file

        path = installed_path(_smpl_gender(name))
        if not path.is_file():
            raise BodyModelError(f"{name} is not installed: run `python -m backend body install SMPL_FILE`")
        arrays = load_smpl_file(path)
        landmarks = smpl_landmarks(arrays["v_template"])
        num_betas = num_betas or min(SMPL_DEFAULT_BETAS, arrays["shapedirs"].shape[-1])
    model = BodyModel.from_arrays(name, arrays, num_betas=num_betas, landmark_vertices=landmarks, dtype=dtype)
    if "phenotype_map" in arrays:
        from backend.body.anny_body import Phenotype

        model.phenotype = Phenotype.from_arrays(arrays)
        model.fit_shape_step = ANNY_FIT_SHAPE_STEP
        # the fit's prior mean and start: a typical adult, not the mean over every age (anny_body._adult_mean)
        model.fit_floor_heights = True  # its people's statures follow the image (fitting.floor_height)
        # Anny's own rig, for the result file (the add-on's option to keep it; result.assembly.rig_arrays)
        model.rig = {key: np.asarray(value) for key, value in arrays.items() if key.startswith("rig_")}
        model.shape_prior_mean = np.asarray(arrays["shape_prior_mean"], np.float64)[: model.num_betas]
    return model.to(device)


def available_body_models() -> dict[str, str]:
    """Each known body model -> the file it loads from, or why it cannot be used (for ``doctor``)."""
    from backend.body.open_body import cache_path
    from backend.body.smpl_file import installed_path

    out: dict[str, str] = {}
    open_path = cache_path()
    if open_path.is_file() or importlib.util.find_spec("skimage") is not None:
        out["open-body"] = str(open_path)
    else:
        out["open-body"] = "unusable: generating it needs scikit-image (pip install scikit-image)"
    out["anny"] = _anny_status()
    for name in SMPL_MODEL_NAMES:
        path = installed_path(_smpl_gender(name))
        out[name] = str(path) if path.is_file() else "not installed: run `python -m backend body install SMPL_FILE`"
    return out


def _anny_status() -> str:
    """The Anny body's cache file, or why it cannot be used (its package is an optional requirement)."""
    from backend.body.anny_body import ANNY_REQUIREMENT, anny_installed, cache_path

    path, version = cache_path(), anny_installed()
    if path.is_file():
        return f"{path} (generated; loading it needs numpy only{f', anny {version} installed' if version else ''})"
    if version is None:
        return f"not installed: `pip install {ANNY_REQUIREMENT}` (optional, about 0.5 GB with warp-lang)"
    return f"{path} (generated from anny {version} on first use, about a minute)"
