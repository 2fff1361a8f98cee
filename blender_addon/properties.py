"""Settings saved with the .blend (``Scene.troupe``) and the live job state (``WindowManager.troupe_job``)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import backend_env
from .estimator_options import TroupeEstimatorOptions


def _estimator_catalog() -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """The estimator menu and the weights' terms, from the backend's own catalog (loaded by path: no torch)."""
    catalog = backend_env.load_backend_file("backend/estimators/catalog.py", "_troupe_estimator_catalog")
    if catalog is None:  # no backend source beside the add-on: only the default, which needs no weights
        return [("mediapipe-fit", "MediaPipe fit", "The default estimator")], {}
    items = [(e.name, e.label, e.summary + (f" ({e.unavailable})" if e.unavailable else "")) for e in catalog.CATALOG]
    return items, {e.name: e.terms for e in catalog.CATALOG if e.terms}


# Shown in the panel as soon as an estimator is chosen: the user sees the weights' terms before anything runs.
ESTIMATORS, WEIGHT_LICENCE_NOTES = _estimator_catalog()
BODY_MODELS = [
    ("open-body", "Open body", "Built-in, licence-free SMPL-compatible body (default)"),
    ("anny", "Anny", "Realistic licence-free body from toddlers to elders, fitted age and build (backend needs "
     "the anny package: pip install anny==0.6.2)"),
    ("smpl-neutral", "SMPL neutral", "Your SMPL file, installed in the add-on preferences"),
    ("smpl-male", "SMPL male", "Your SMPL file, installed in the add-on preferences"),
    ("smpl-female", "SMPL female", "Your SMPL file, installed in the add-on preferences"),
]
FBX_PRESETS = [
    ("UNITY", "Unity", "Y up, metres, transform applied, Unity humanoid bone names, no leaf bones, all in one file"),
    ("UNREAL", "Unreal", "Y up, centimetres, UE5 mannequin bone names under a root bone, no leaf bones, "
     "one file per person"),
    ("MIXAMO", "Mixamo", "Y up, centimetres, mixamorig: bone names, no leaf bones, one file per person"),
]
# The backend's --camera modes (backend/options.py CAMERA_CHOICES; a test keeps the two lists equal).
CAMERA_MODES = [
    ("auto", "Auto", "Measure the camera's turn and zoom on the background; a still shot stays still"),
    ("static", "Static", "The camera never moves: skip the measurement"),
    ("moving", "Moving", "Keep even the smallest measured motion (a slow, steady pan)"),
]
SCOPES = [
    ("SELECTED", "Selected", "People whose armature or body is selected"),
    ("ALL", "All", "Every Troupe person in the scene"),
]


class TroupeSettings(bpy.types.PropertyGroup):
    """What to reconstruct and how; saved with the scene."""

    source_path: StringProperty(name="Source", subtype="FILE_PATH",
                                description="An image, a folder of images, or a video file")
    use_frame_range: BoolProperty(name="Frame Range", description="Process only part of a video", default=False)
    frame_start: IntProperty(name="Start", description="First source frame (0-based)", min=0, default=0)
    frame_end: IntProperty(name="End", description="Last source frame (inclusive)", min=0, default=100)
    estimator: EnumProperty(name="Estimator", items=ESTIMATORS, default="mediapipe-fit")
    estimator_options: PointerProperty(type=TroupeEstimatorOptions)
    body_model: EnumProperty(name="Body Model", items=BODY_MODELS, default="open-body")
    use_fov: BoolProperty(name="Field of View", description="Tell the backend the camera's field of view instead "
                          "of letting it guess", default=False)
    fov: FloatProperty(name="Field of View", description="Across the longer image side", subtype="ANGLE",
                       min=0.0175, max=3.05, default=1.0)
    smoothing: FloatProperty(name="Smoothing", description="Temporal smoothing strength", min=0.0, max=1.0,
                             default=0.5, subtype="FACTOR")
    coherence: BoolProperty(name="Coherence", description="Resolve interpenetration and depth order between people",
                            default=True)
    camera: EnumProperty(name="Camera", items=CAMERA_MODES, default="auto",
                         description="Clips: how the camera's motion is treated; a moving camera puts the people "
                         "and the animated camera in one gravity-up world")
    output_dir: StringProperty(name="Results", subtype="DIR_PATH",
                               description="Folder for result files (empty: beside the .blend, else temporary)")
    fbx_preset: EnumProperty(name="Preset", items=FBX_PRESETS, default="UNITY")
    export_scope: EnumProperty(name="People", items=SCOPES, default="ALL")


class TroupeJobState(bpy.types.PropertyGroup):
    """Live state shown by the panel and the status bar; never saved."""

    running: BoolProperty(default=False)
    state: StringProperty(default="")
    stage: StringProperty(default="")
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    done: IntProperty(default=0)
    total: IntProperty(default=0)
    fps: FloatProperty(default=0.0)
    eta_s: FloatProperty(default=-1.0)
    people: IntProperty(default=0)
    message: StringProperty(default="")
    last_error: StringProperty(default="")
    warnings: StringProperty(default="")
    task_running: BoolProperty(default=False)
    task_title: StringProperty(default="")
    task_progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    task_line: StringProperty(default="")
    task_error: StringProperty(default="")
    task_log: StringProperty(default="")
    task_output: StringProperty(default="")


CLASSES = (TroupeEstimatorOptions, TroupeSettings, TroupeJobState)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.troupe = PointerProperty(type=TroupeSettings)
    bpy.types.WindowManager.troupe_job = PointerProperty(type=TroupeJobState)


def unregister() -> None:
    del bpy.types.WindowManager.troupe_job
    del bpy.types.Scene.troupe
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
