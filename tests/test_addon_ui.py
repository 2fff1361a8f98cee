"""Panels, preferences, status bar and the Esc handler, driven without a window (background mode has none).

The draw functions run against a recording layout that checks every property and operator they name exists,
so a renamed property or operator fails here instead of leaving an empty panel in the UI.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.test_addon_fixtures import enable_addon, isolate_blender, make_fake_backend, poll_until

isolate_blender()
bpy = pytest.importorskip("bpy")


@pytest.fixture()
def addon():
    module = enable_addon("extension")
    bpy.ops.wm.read_homefile(use_empty=True)
    prefs = module.jobs.preferences()
    saved = prefs.python_path
    yield module
    module.jobs.shutdown()
    prefs.python_path = saved


class RecordingLayout:
    """Stands in for ``UILayout``: validates names, records labels and operators."""

    def __init__(self, log: dict) -> None:
        self.log = log

    def __getattr__(self, name: str):  # use_property_split, alert, scale_y, active, ...
        raise AttributeError(name)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _child(self, *args: object, **kwargs: object) -> RecordingLayout:
        return RecordingLayout(self.log)

    row = column = box = split = _child

    def prop(self, data: object, name: str, **kwargs: object) -> None:
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.setdefault("props", []).append(name)

    def operator(self, idname: str, **kwargs: object) -> SimpleNamespace:
        module, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), name), f"no operator {idname}"
        self.log.setdefault("operators", []).append(idname)
        return SimpleNamespace()

    def label(self, text: str = "", **kwargs: object) -> None:
        self.log.setdefault("labels", []).append(text)

    def progress(self, factor: float = 0.0, type: str = "BAR", text: str = "") -> None:
        assert 0.0 <= factor <= 1.0
        self.log.setdefault("progress", []).append(text)


class _PrefsProxy:
    """The real preferences with a recording layout (``AddonPreferences.layout`` is read-only)."""

    def __init__(self, prefs: object, layout: RecordingLayout) -> None:
        self._prefs, self.layout = prefs, layout

    def __getattr__(self, name: str) -> object:
        return getattr(self._prefs, name)


def _draw(cls: type, context: object) -> dict:
    log: dict = {}
    panel = SimpleNamespace(layout=RecordingLayout(log), _draw_run=lambda *a: cls._draw_run(panel, *a))
    cls.draw(panel, context)
    return log


def test_sidebar_panels_draw_every_setting_and_action(addon) -> None:
    context = bpy.context
    log = _draw(addon.panels.VIEW3D_PT_troupe, context)
    assert {"source_path", "estimator", "body_model", "smoothing", "coherence", "camera", "use_frame_range",
            "frame_start", "frame_end", "use_fov", "fov"} <= set(log["props"])
    assert {"troupe.reconstruct", "troupe.import_result"} <= set(log["operators"])
    assert context.scene.troupe.estimator == "mediapipe-fit" and context.scene.troupe.body_model == "open-body"
    export_log = _draw(addon.panels.VIEW3D_PT_troupe_export, context)
    assert {"troupe.export_fbx", "troupe.export_bvh", "troupe.export_amass"} <= set(export_log["operators"])
    _draw(addon.panels.VIEW3D_PT_troupe_backend, context)


def test_research_licence_is_shown_as_soon_as_pare_is_chosen(addon) -> None:
    settings = bpy.context.scene.troupe
    assert not any("licence" in text for text in _draw(addon.panels.VIEW3D_PT_troupe, bpy.context).get("labels", []))
    settings.estimator = "pare"
    try:
        labels = _draw(addon.panels.VIEW3D_PT_troupe, bpy.context)["labels"]
    finally:
        settings.estimator = "mediapipe-fit"
    assert any("research-only" in text for text in labels)


def test_the_chosen_estimators_own_settings_are_drawn_and_sent_with_the_job(addon, tmp_path: Path) -> None:
    from backend.options import FIELDS, check_options

    settings = bpy.context.scene.troupe
    source = str(tmp_path / "clip.mp4")
    settings.estimator = "romp"
    try:
        props = _draw(addon.panels.VIEW3D_PT_troupe, bpy.context)["props"]
        untouched = addon.operators._options(settings, source).estimator_options
        settings.estimator_options.romp__center_thresh = 0.4
        settings.estimator_options.romp__backbone = "resnet50"
        request = addon.operators._options(settings, source).request("job")
    finally:
        settings.estimator = "mediapipe-fit"
    assert {"romp__center_thresh", "romp__backbone", "romp__precision"} <= set(props)
    assert "mediapipe_fit__initialiser" not in props  # only the chosen estimator's settings
    assert untouched == {}  # defaults are the backend's: nothing to send
    assert request["estimator_options"] == {"center_thresh": pytest.approx(0.4), "backbone": "resnet50"}
    checked = check_options({key: value for key, value in request.items() if key in FIELDS})
    assert checked["estimator_options"]["backbone"] == "resnet50"  # the backend's schema takes the request as sent


def test_the_camera_mode_is_sent_with_the_job_and_the_backend_schema_accepts_it(addon, tmp_path: Path) -> None:
    from backend.options import CAMERA_CHOICES, FIELDS, check_options

    settings = bpy.context.scene.troupe
    source = str(tmp_path / "clip.mp4")
    modes = [item.identifier for item in settings.bl_rna.properties["camera"].enum_items]
    assert modes == list(CAMERA_CHOICES)  # the panel offers exactly the backend's modes
    assert settings.camera == FIELDS["camera"].default  # and starts from the backend's default
    try:
        sent = {}
        for mode in modes:
            settings.camera = mode
            sent[mode] = addon.operators._options(settings, source).request("job")
    finally:
        settings.camera = FIELDS["camera"].default
    for mode, request in sent.items():
        assert request["camera"] == mode
        assert check_options({key: value for key, value in request.items() if key in FIELDS})["camera"] == mode


def test_running_job_shows_progress_cancel_and_status_bar(addon, tmp_path: Path) -> None:
    python, _ = make_fake_backend(tmp_path, "slow")
    addon.jobs.preferences().python_path = python
    bpy.context.scene.troupe.source_path = str(tmp_path / "clip.mp4")
    (tmp_path / "clip.mp4").write_bytes(b"x")
    bpy.context.scene.troupe.output_dir = str(tmp_path)
    bpy.ops.troupe.reconstruct()
    state = bpy.context.window_manager.troupe_job
    poll_until(addon, lambda: state.done > 0)
    log = _draw(addon.panels.VIEW3D_PT_troupe, bpy.context)
    assert "troupe.cancel" in log["operators"] and "troupe.reconstruct" not in log["operators"]
    assert any("estimating" in text for text in log["progress"])
    status: dict = {}
    addon.panels.draw_status(SimpleNamespace(layout=RecordingLayout(status)), bpy.context)
    assert status["progress"][0].startswith("Troupe:")
    addon.jobs.reconstruction.cancel()
    poll_until(addon, addon.jobs.reconstruction.outcome_ready)


def test_escape_cancels_and_the_modal_handler_reports_the_outcome(addon, tmp_path: Path) -> None:
    """The modal part of troupe.reconstruct (Esc), called directly: background mode delivers no events."""
    python, _ = make_fake_backend(tmp_path, "slow")
    addon.jobs.preferences().python_path = python
    settings = bpy.context.scene.troupe
    settings.source_path, settings.output_dir = str(tmp_path / "clip.mp4"), str(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    bpy.ops.troupe.reconstruct()
    poll_until(addon, lambda: bpy.context.window_manager.troupe_job.done > 0)
    reports: list = []
    operator = SimpleNamespace(_timer=object(), report=lambda kind, text: reports.append((kind, text)))
    operator._report_outcome = lambda status: addon.operators.TROUPE_OT_reconstruct._report_outcome(operator, status)
    removed: list = []
    context = SimpleNamespace(window_manager=SimpleNamespace(event_timer_remove=removed.append))
    modal = addon.operators.TROUPE_OT_reconstruct.modal
    assert modal(operator, context, SimpleNamespace(type="MOUSEMOVE", value="NOTHING")) == {"PASS_THROUGH"}
    assert modal(operator, context, SimpleNamespace(type="ESC", value="PRESS")) == {"RUNNING_MODAL"}
    # cancel() polls the backend once: a quick backend has already answered (seen under load in a CI run)
    assert bpy.context.window_manager.troupe_job.state in {"cancelling", "cancelled"}
    poll_until(addon, addon.jobs.reconstruction.outcome_ready)
    assert modal(operator, context, SimpleNamespace(type="TIMER", value="NOTHING")) == {"CANCELLED"}
    assert removed == [operator._timer]
    assert ({"WARNING"}, "Troupe: reconstruction cancelled") in reports


def test_preferences_draw_and_detect(addon, monkeypatch: pytest.MonkeyPatch) -> None:
    prefs = addon.jobs.preferences()
    log: dict = {}
    addon.preferences.TroupePreferences.draw(_PrefsProxy(prefs, RecordingLayout(log)), bpy.context)
    assert {"python_path", "torch_flavor", "env_dir", "smpl_file", "weights_dir", "device"} <= set(log["props"])
    assert {"troupe.create_backend_env", "troupe.install_smpl", "troupe.check_backend",
            "troupe.detect_backend"} <= set(log["operators"])
    monkeypatch.setenv("TROUPE_PYTHON", __import__("sys").executable)
    prefs.python_path = ""
    assert bpy.ops.troupe.detect_backend() == {"FINISHED"}
    assert prefs.python_path == __import__("sys").executable
    prefs.python_path = ""


def _menu_entries(menu: type, package: str) -> list[str]:
    """The operators the add-on's own draw functions put into ``menu`` (other add-ons' entries left out)."""
    log: dict = {}
    for draw in getattr(menu.draw, "_draw_funcs", []):
        if draw.__module__.startswith(package):
            draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    return log.get("operators", [])


def test_file_menus_offer_import_and_every_export(addon) -> None:
    """File > Import and File > Export name Troupe's operators (checked to exist by the recording layout), and
    disabling the add-on takes the entries away again."""
    package = addon.__name__
    assert _menu_entries(bpy.types.TOPBAR_MT_file_import, package) == ["troupe.import_result"]
    exports = _menu_entries(bpy.types.TOPBAR_MT_file_export, package)
    assert exports == ["troupe.export_fbx"] * 3 + ["troupe.export_bvh", "troupe.export_gltf", "troupe.export_amass"]
    addon.menus.unregister()
    try:
        assert _menu_entries(bpy.types.TOPBAR_MT_file_import, package) == []
        assert _menu_entries(bpy.types.TOPBAR_MT_file_export, package) == []
    finally:
        addon.menus.register()
