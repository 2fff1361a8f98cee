"""Every estimator Troupe knows, in one place: what it is, which class runs it, its checkpoints and the terms of
their weights.

Standard library only (and ``backend/estimators/__init__.py`` imports nothing), so the command line's help,
``doctor``, the option checks and the Blender add-on (which loads this file by path, as it loads the result
contract) read it without torch. Adding an estimator with weights is its entry here plus its module (and its
network under ``backend/nets`` when it has one); its user-facing settings are declared here too, and reach it
from the command line (``--option NAME=VALUE``), the service and the add-on's panel unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

_ROMP_RELEASES = "https://github.com/Arthur151/ROMP/releases/download"
_ROMP_TERMS = (
    "ROMP/BEV code is MIT/Apache-2.0, but the weights were trained with SMPL and academic datasets: the SMPL "
    "model licence and the datasets' terms apply to their use"
)
_PARE_DATA = "https://drive.google.com/uc?id=1qIq0CBBj-O6wVc9nJXG-JDEtWPzRQ4KC"  # pare-github-data.zip (gdown id)
_PARE_TERMS = (
    "RESEARCH ONLY: PARE's code, model and data are under the MPI non-commercial scientific research licence "
    "(no commercial use, no redistribution; the SMPL model licence also applies). Each user must accept it at "
    "pare.is.tue.mpg.de and download the weights themselves; Troupe never ships them"
)


@dataclass(frozen=True)
class Checkpoint:
    """An official checkpoint: the file name Troupe looks for, where users get it, its licence note, and the
    network (``module:Class`` plus arguments) whose layout a file must match."""

    name: str
    filename: str
    url: str
    network: str
    network_args: tuple = ()
    note: str = _ROMP_TERMS
    lightning: bool = False  # a Lightning .ckpt: read with the restricted fallback (see backend.estimators.weights)


@dataclass(frozen=True)
class EstimatorOption:
    """A setting of one estimator that users may change. ``name`` is the estimator's keyword argument; the type
    is the default's (bool, float or str); ``choices`` bound a string, ``minimum``/``maximum`` a number."""

    name: str
    label: str
    description: str
    default: bool | float | str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: object) -> str | None:
        """Why ``value`` is not allowed (None when it is)."""
        kind = type(self.default)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                return "must be a number"
            if (self.minimum is not None and value < self.minimum) or (
                    self.maximum is not None and value > self.maximum):
                return f"must be between {self.minimum:g} and {self.maximum:g}"
            return None
        if not isinstance(value, kind):
            return "must be true or false" if kind is bool else "must be a string"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        return None

    def parse(self, text: str) -> bool | float | str:
        """A command-line value as this option's type (checked by :meth:`check` afterwards)."""
        kind = type(self.default)
        if kind is bool:
            lowered = text.strip().lower()
            return {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False,
                    "off": False}.get(lowered, text)
        if kind is float:
            try:
                return float(text)
            except ValueError:
                return text
        return text


_PRECISION = EstimatorOption(
    "precision", "Precision", "Arithmetic of the network: auto is bf16 on CUDA and fp32 on the CPU", "auto", choices=("auto", "fp32", "bf16", "fp16"))


@dataclass(frozen=True)
class EstimatorInfo:
    """One estimator as users meet it: ``implementation`` is ``module:Class`` (empty: not available, and
    ``unavailable`` says why); ``checkpoints`` are the files it runs with by name, the first its default;
    ``alternatives`` other official files it can be given by path; ``terms`` one line on the weights' licence,
    shown before anything runs (empty: no third-party weights)."""

    name: str
    label: str
    summary: str
    implementation: str = ""
    checkpoints: tuple[Checkpoint, ...] = ()
    alternatives: tuple[Checkpoint, ...] = ()
    terms: str = ""
    unavailable: str = ""
    options: tuple[EstimatorOption, ...] = ()
    # its bodies are fitted, pose included, onto 2D keypoints of the picture through the lens it is given, so its
    # joints2d are the picture's; a regressor's pose comes from appearance and its joints2d are its projection
    # (under a zoom, backend.world re-fits the former onto joints2d and only re-places the latter)
    fits_keypoints: bool = False

    def option(self, name: str) -> EstimatorOption | None:
        return next((option for option in self.options if option.name == name), None)


_ROMP_NET = "backend.nets.romp:ROMPv1"
_BEV_NET = "backend.nets.bev:BEVv1"
_PARE_NET = "backend.nets.pare:PARE"

DEFAULT_ESTIMATOR = "mediapipe-fit"
CATALOG: tuple[EstimatorInfo, ...] = (
    EstimatorInfo(
        "mediapipe-fit", "MediaPipe fit",
        "MediaPipe landmarks fitted with the body model; needs no weights (default)",
        "backend.estimators.mediapipe_fit:MediapipeFitEstimator", fits_keypoints=True,
        options=(
            EstimatorOption(
                "initialiser", "Fit start",
                "Where each new person's fit starts: MediaPipe's 3D landmarks (neutral), LASOR's prediction "
                "(lasor), the landmarks turned and moved to LASOR's orientation and depth (lasor-root), or both "
                "neutral and lasor-root, keeping the fit of lower energy", "neutral+lasor-root",
                choices=("neutral+lasor-root", "neutral", "lasor-root", "lasor")),
            EstimatorOption(
                "depth_order", "Depth order from occlusion",
                "Order overlapping people in depth by who hides whom before fitting", True),
            EstimatorOption(
                "second_opinion", "Heavy second opinion",
                "Read the faintly seen people of a still picture once more with BlazePose GHUM Heavy, when "
                "installed: finds small, dark and turned people, about a second slower", True),
        )),
    EstimatorInfo(
        "romp", "ROMP", "One-stage regressor; needs the ROMP checkpoint in the weights folder",
        "backend.estimators.romp:RompEstimator",
        checkpoints=(
            Checkpoint("romp-hrnet32", "ROMP.pkl", f"{_ROMP_RELEASES}/V2.0/ROMP.pkl", _ROMP_NET, ("hrnet32",)),
            Checkpoint("romp-resnet50", "ROMP_ResNet50_V1.pkl", f"{_ROMP_RELEASES}/v1.1/trained_models.zip",
                       _ROMP_NET, ("resnet50",), f"extract it from the zip; {_ROMP_TERMS}"),
        ),
        alternatives=(
            Checkpoint("romp-hrnet32-v1", "ROMP_HRNet32_V1.pkl", f"{_ROMP_RELEASES}/v1.1/trained_models.zip",
                       _ROMP_NET, ("hrnet32",), f"extract it from the zip; {_ROMP_TERMS}"),
        ),
        terms="ROMP weights: SMPL model licence and the training datasets' terms apply",
        options=(
            EstimatorOption("backbone", "Backbone", "ROMP's network: HRNet-32 (ROMP.pkl) or ResNet-50",
                            "hrnet32", choices=("hrnet32", "resnet50")),
            EstimatorOption("center_thresh", "Centre threshold",
                            "Confidence a body centre needs to become a person (lower finds more, and more ghosts)",
                            0.25, minimum=0.01, maximum=0.99),
            _PRECISION,
        )),
    EstimatorInfo(
        "bev", "BEV", "ROMP with relative depth, suits groups and children; needs the BEV checkpoint",
        "backend.estimators.bev:BevEstimator",
        checkpoints=(
            Checkpoint("bev", "BEV.pth", f"{_ROMP_RELEASES}/V2.0/BEV.pth", _BEV_NET),
            Checkpoint("bev-ft-agora", "BEV_ft_agora.pth", f"{_ROMP_RELEASES}/V2.0/BEV_ft_agora.pth", _BEV_NET),
        ),
        terms="BEV weights: SMPL model licence and the training datasets' terms apply",
        options=(
            EstimatorOption("model", "Checkpoint", "BEV.pth, or the one fine-tuned on AGORA", "bev",
                            choices=("bev", "bev-ft-agora")),
            _PRECISION,
        )),
    EstimatorInfo(
        "pare", "PARE", "Part-attention regressor against occlusion; weights under a research-only licence",
        "backend.estimators.pare:PareEstimator",
        checkpoints=(
            Checkpoint("pare-hrnet32-3dpw", "pare_w_3dpw_checkpoint.ckpt", _PARE_DATA, _PARE_NET,
                       note="extract data/pare/checkpoints/pare_w_3dpw_checkpoint.ckpt from pare-github-data.zip "
                            f"(the PARE demo default, trained with 3DPW); {_PARE_TERMS}", lightning=True),
            Checkpoint("pare-hrnet32", "pare_checkpoint.ckpt", _PARE_DATA, _PARE_NET,
                       note="extract data/pare/checkpoints/pare_checkpoint.ckpt from pare-github-data.zip (no 3DPW "
                            f"in training); {_PARE_TERMS}", lightning=True),
        ),
        terms="PARE weights: research-only, non-commercial licence",
        options=(
            EstimatorOption("model", "Checkpoint", "PARE trained with 3DPW (the PARE demo default) or without it",
                            "pare-hrnet32-3dpw", choices=("pare-hrnet32-3dpw", "pare-hrnet32")),
            _PRECISION,
        )),
    EstimatorInfo(
        "lasor", "LASOR", "Keypoints + silhouettes regressor trained by the project; weights ship with it",
        "backend.estimators.lasor:LasorEstimator",
        options=(
            EstimatorOption("min_visibility", "Minimum visibility",
                            "Keypoints less visible than this are left out of LASOR's input", 0.4,
                            minimum=0.0, maximum=1.0),
        )),
    EstimatorInfo(
        "crmh", "CRMH", "Coherent multi-human (Jiang et al.)",
        terms="CRMH weights: research-only, non-commercial licence",
        unavailable="Jiang et al. (coherent multi-person R-CNN) is not implemented yet"),
    EstimatorInfo(
        "dimr", "DIMR", "Dense UV completion", unavailable="DIMR has no public weights or code; not available"),
)


def estimator_info(name: str) -> EstimatorInfo | None:
    return next((info for info in CATALOG if info.name == name), None)


def available_estimators() -> list[str]:
    """Names of the estimators that run, sorted."""
    return sorted(info.name for info in CATALOG if info.implementation)


def all_checkpoints() -> dict[str, Checkpoint]:
    """Every official checkpoint by name (the default ones and the alternatives)."""
    return {c.name: c for info in CATALOG for c in (*info.checkpoints, *info.alternatives)}
