"""Add-on preferences: the backend interpreter and its environment, the SMPL file, weights, device, doctor."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import backend_env, jobs
from .tasks import CommandSequence, Step

DEVICES = [
    ("AUTO", "Auto", "CUDA when torch sees a GPU, else the CPU"),
    ("CPU", "CPU", "Always the CPU"),
    ("CUDA", "CUDA", "An NVIDIA GPU (needs the CUDA build of torch)"),
]
TORCH_FLAVORS = [
    ("cpu", "CPU", "torch for the CPU (smaller download, works everywhere)"),
    ("cuda", "CUDA", "torch built for NVIDIA GPUs (large download)"),
]


class TroupePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    python_path: StringProperty(name="Backend Python", subtype="FILE_PATH",
                                description="Interpreter of the backend's environment (empty: detect)")
    env_dir: StringProperty(name="Environment Folder", subtype="DIR_PATH",
                            description="Where 'Create Environment' puts the backend's virtual environment "
                            "(empty: the add-on's user folder)")
    torch_flavor: EnumProperty(name="torch", items=TORCH_FLAVORS, default="cpu")
    smpl_file: StringProperty(name="SMPL File", subtype="FILE_PATH",
                              description="Your SMPL model file (.pkl or .npz), never shipped with Troupe")
    weights_dir: StringProperty(name="Weights Folder", subtype="DIR_PATH",
                                description="Folder with estimator checkpoints (ROMP, BEV, ...)")
    device: EnumProperty(name="Device", items=DEVICES, default="AUTO")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        state = context.window_manager.troupe_job
        box = layout.box()
        box.label(text="Backend", icon="CONSOLE")
        row = box.row(align=True)
        row.prop(self, "python_path")
        row.operator("troupe.detect_backend", text="", icon="VIEWZOOM")
        if not self.python_path:
            found = backend_env.detect_interpreter(jobs.user_data_dir())
            box.label(text=f"Detected: {found}" if found else "No environment found: create one below",
                      icon="CHECKMARK" if found else "INFO")
        row = box.row(align=True)
        row.prop(self, "torch_flavor", expand=True)
        row.operator("troupe.create_backend_env", icon="ADD")
        box.prop(self, "env_dir")
        box = layout.box()
        box.label(text="Models", icon="ARMATURE_DATA")
        row = box.row(align=True)
        row.prop(self, "smpl_file")
        row.operator("troupe.install_smpl", text="Install")
        box.prop(self, "weights_dir")
        box.prop(self, "device")
        row = layout.row()
        row.operator("troupe.check_backend", icon="CHECKMARK")
        draw_task(layout, state)


def draw_task(layout: bpy.types.UILayout, state: bpy.types.PropertyGroup) -> None:
    """Progress, error and output of the last preference task (shared with the sidebar)."""
    if state.task_running:
        row = layout.row(align=True)
        row.progress(factor=state.task_progress, type="BAR", text=f"{state.task_title}: {state.task_line}")
        row.operator("troupe.cancel_task", text="", icon="X")
    if state.task_error:
        box = layout.box()
        box.alert = True
        for line in state.task_error.splitlines()[:6]:
            box.label(text=line, icon="ERROR")
    if state.task_log:
        layout.label(text=f"Log: {state.task_log}", icon="TEXT")
    if state.task_output:
        box = layout.box()
        for line in state.task_output.splitlines()[:40]:
            box.label(text=line)


def _require_python(operator: bpy.types.Operator) -> str:
    python = jobs.backend_python()
    if not python or not Path(python).is_file():
        operator.report({"ERROR"}, "Troupe: no backend interpreter; set one or create the environment first")
        return ""
    return python


def _run_task(operator: bpy.types.Operator, title: str, steps: list[Step], on_done=None, env=None) -> set[str]:
    """Start ``steps`` without blocking Blender; in background mode (no timers) run them to the end."""
    root = backend_env.backend_root()
    safe = title.lower().replace(" ", "-")
    task = CommandSequence(title, steps, jobs.log_dir() / f"{safe}.log", cwd=root, env=env)
    try:
        jobs.start_task(task, on_done)
    except RuntimeError as exc:
        operator.report({"ERROR"}, f"Troupe: {exc}")
        return {"CANCELLED"}
    if bpy.app.background:
        jobs.preference_task.wait()
        if task.state != "done":
            operator.report({"ERROR"}, f"Troupe: {task.error or task.state}")
            return {"CANCELLED"}
    else:
        jobs.preference_task.start_timer()
    return {"FINISHED"}


def _backend_env_vars() -> dict[str, str] | None:
    root = backend_env.backend_root()
    return backend_env.subprocess_env(root, jobs.backend_extra_env()) if root is not None else None


class TROUPE_OT_detect_backend(bpy.types.Operator):
    """Look for an existing backend environment and use its interpreter"""

    bl_idname = "troupe.detect_backend"
    bl_label = "Detect Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        found = backend_env.detect_interpreter(jobs.user_data_dir())
        if not found:
            self.report({"WARNING"}, "Troupe: no backend environment found; use Create Environment")
            return {"CANCELLED"}
        jobs.preferences().python_path = found
        self.report({"INFO"}, f"Troupe: using {found}")
        return {"FINISHED"}


class TROUPE_OT_create_backend_env(bpy.types.Operator):
    """Create the backend's own virtual environment and install its requirements (torch, MediaPipe, ...)"""

    bl_idname = "troupe.create_backend_env"
    bl_label = "Create Environment"

    base_python: StringProperty(name="Base Python", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                description="Python 3.10+ to create the environment with (empty: detect)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = jobs.preferences()
        base = self.base_python or backend_env.default_base_python()
        if not base:
            self.report({"ERROR"}, "Troupe: no Python found to create the environment with")
            return {"CANCELLED"}
        env_dir = Path(bpy.path.abspath(prefs.env_dir)) if prefs.env_dir else _default_env_dir()
        commands = backend_env.create_env_commands(base, env_dir, prefs.torch_flavor, backend_env.backend_root())
        steps = [Step(label, argv) for label, argv in commands]

        def use_it(task: CommandSequence) -> None:
            if task.state == "done":
                jobs.preferences().python_path = str(backend_env.venv_python(env_dir))

        return _run_task(self, "Create Environment", steps, use_it)


def _default_env_dir() -> Path:
    data = jobs.user_data_dir(create=True)
    root = backend_env.backend_root()
    return (data / "venv") if data is not None else (root or backend_env.ADDON_DIR) / ".venv"


class TROUPE_OT_install_smpl(bpy.types.Operator):
    """Convert your SMPL file into the backend's cache (python -m backend body install FILE)"""

    bl_idname = "troupe.install_smpl"
    bl_label = "Install SMPL File"

    def execute(self, context: bpy.types.Context) -> set[str]:
        python = _require_python(self)
        smpl = bpy.path.abspath(jobs.preferences().smpl_file)
        if not python:
            return {"CANCELLED"}
        if not smpl or not Path(smpl).is_file():
            self.report({"ERROR"}, f"Troupe: SMPL file not found: {smpl or '(none chosen)'}")
            return {"CANCELLED"}
        steps = [Step("installing the SMPL file", backend_env.backend_command(python, "body", "install", smpl))]
        return _run_task(self, "Install SMPL", steps, _show_output, env=_backend_env_vars())


class TROUPE_OT_check_backend(bpy.types.Operator):
    """Run the backend's doctor: what is installed and usable (torch, CUDA, body models, weights) and why not"""

    bl_idname = "troupe.check_backend"
    bl_label = "Check Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        python = _require_python(self)
        if not python:
            return {"CANCELLED"}
        context.window_manager.troupe_job.task_output = ""
        steps = [Step("running doctor", backend_env.backend_command(python, "doctor"))]
        return _run_task(self, "Check Backend", steps, _show_output, env=_backend_env_vars())


def _show_output(task: CommandSequence) -> None:
    text = "\n".join(line for line in task.output().splitlines() if not line.startswith(("$ ", "# ")))
    bpy.context.window_manager.troupe_job.task_output = text


class TROUPE_OT_cancel_task(bpy.types.Operator):
    """Stop the running preference task"""

    bl_idname = "troupe.cancel_task"
    bl_label = "Cancel Task"

    def execute(self, context: bpy.types.Context) -> set[str]:
        jobs.preference_task.cancel()
        return {"FINISHED"}


CLASSES = (TroupePreferences, TROUPE_OT_detect_backend, TROUPE_OT_create_backend_env, TROUPE_OT_install_smpl,
           TROUPE_OT_check_backend, TROUPE_OT_cancel_task)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
