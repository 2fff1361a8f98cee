"""Every estimator Troupe knows, in one place: what it is, which class runs it, its checkpoints and the terms of
their weights.

Standard library only and outside ``backend.estimators`` (whose package imports torch), so the command line's
help, ``doctor`` and the Blender add-on (which loads this file by path, as it loads ``result.py``) read it
without torch. Adding an estimator with weights is its entry here plus its module (and its network under
``backend/nets`` when it has one).
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


_ROMP_NET = "backend.nets.romp:ROMPv1"
_BEV_NET = "backend.nets.bev:BEVv1"
_PARE_NET = "backend.nets.pare:PARE"

DEFAULT_ESTIMATOR = "mediapipe-fit"
CATALOG: tuple[EstimatorInfo, ...] = (
    EstimatorInfo(
        "mediapipe-fit", "MediaPipe fit",
        "MediaPipe landmarks fitted with the body model; needs no weights (default)",
        "backend.estimators.mediapipe_fit:MediapipeFitEstimator"),
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
        terms="ROMP weights: SMPL model licence and the training datasets' terms apply"),
    EstimatorInfo(
        "bev", "BEV", "ROMP with relative depth, suits groups and children; needs the BEV checkpoint",
        "backend.estimators.bev:BevEstimator",
        checkpoints=(
            Checkpoint("bev", "BEV.pth", f"{_ROMP_RELEASES}/V2.0/BEV.pth", _BEV_NET),
            Checkpoint("bev-ft-agora", "BEV_ft_agora.pth", f"{_ROMP_RELEASES}/V2.0/BEV_ft_agora.pth", _BEV_NET),
        ),
        terms="BEV weights: SMPL model licence and the training datasets' terms apply"),
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
        terms="PARE weights: research-only, non-commercial licence"),
    EstimatorInfo(
        "lasor", "LASOR", "Keypoints + silhouettes regressor trained by the project; weights ship with it",
        "backend.estimators.lasor:LasorEstimator"),
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
