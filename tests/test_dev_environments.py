"""dev.py's test environments: each has its requirement file, the Blender 5.3 one gets a real Python 3.13."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from tests.test_addon_fixtures import REPO_ROOT


def _dev():
    spec = importlib.util.spec_from_file_location("troupe_dev", REPO_ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_addon_blender_has_an_environment_with_its_requirements() -> None:
    dev = _dev()
    assert set(dev.ADDON_BLENDERS) <= set(dev.ENVIRONMENTS)
    assert "Blender 5.3" in dev.ADDON_BLENDERS.values()
    for requirements in dev.ENVIRONMENTS.values():
        assert (REPO_ROOT / requirements).is_file(), requirements
    assert "bpy==5.3." in (REPO_ROOT / dev.ENVIRONMENTS[".venv-bpy53"]).read_text()


def test_python_313_is_found_and_is_313() -> None:
    python = _dev().find_python("3.13")  # the development machines and CI have it (bpy 5.3 needs it)
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version == "(3, 13)"


def test_a_missing_python_stops_with_what_to_do(monkeypatch) -> None:
    monkeypatch.delenv("TROUPE_PYTHON29", raising=False)
    with pytest.raises(SystemExit, match=r"needs Python 2\.9 .*install it, or point TROUPE_PYTHON29 at it"):
        _dev().find_python("2.9")


def test_addon_runs_side_by_side_keep_their_own_output_and_exit_codes(monkeypatch, tmp_path, capsys) -> None:
    """dev.py test's add-on step: every run's output printed whole, in order, and a failing run's exit code kept
    (real pytest subprocesses of this interpreter standing in for the Blender environments)."""
    import sys

    dev = _dev()
    monkeypatch.setattr(dev, "ADDON_BLENDERS", {".venv-a": "Blender A", ".venv-b": "Blender B"})
    monkeypatch.setattr(dev, "python_in", lambda env: sys.executable)
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    (tmp_path / "test_two.py").write_text("import os\n\ndef test_two():\n    assert os.environ['FAIL_TWO'] != '1'\n")
    monkeypatch.setenv("FAIL_TWO", "0")
    runs = dev.start_addon_suites([str(tmp_path / "test_one.py"), str(tmp_path / "test_two.py")], tmp_path)
    assert [blender for blender, *_ in runs] == ["Blender A", "Blender B"]
    assert dev.finish_addon_suites(runs) == [0, 0]
    monkeypatch.setenv("FAIL_TWO", "1")
    codes = dev.finish_addon_suites(dev.start_addon_suites([str(tmp_path / "test_two.py")], tmp_path))
    assert codes == [1, 1]
    out = capsys.readouterr().out
    assert out.index("=== add-on tests again on Blender A") < out.index("=== Blender A: exit code 0") < out.index(
        "=== add-on tests again on Blender B") < out.index("=== Blender B: exit code 0")
    assert out.count("2 passed") == 2 and out.count("=== Blender B: exit code 1") == 1
    assert "test_two.py " + str(tmp_path / "test_one.py") in out  # B started at the second file


def test_addon_environments_made_beside_the_suite_keep_quiet_until_asked_and_report_a_failure(
        monkeypatch, tmp_path, capfd) -> None:
    """dev.py test makes the Blender environments while the main suite runs: a real venv and pip run whose
    output waits in the log (the suite's output stays whole), then is printed with the time; a failing pip
    comes out as FAILED with pip's own reason, and the step says the add-on tests were not run."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor, wait

    dev = _dev()
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    (tmp_path / "backend").mkdir()
    for name in ("backend/requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_text("")
    (tmp_path / "requirements-a.txt").write_text("# nothing to install\n")
    (tmp_path / "requirements-b.txt").write_text("./no-such-package-folder\n")  # pip fails, offline
    monkeypatch.setattr(dev, "ENVIRONMENTS", {".venv-a": "requirements-a.txt", ".venv-b": "requirements-b.txt"})
    for envs, made in (({".venv-a": "Blender A"}, True), ({".venv-b": "Blender B"}, False)):
        monkeypatch.setattr(dev, "ADDON_BLENDERS", envs)
        with tempfile.TemporaryFile("w+") as log, ThreadPoolExecutor(1) as pool:
            setting_up = pool.submit(dev.setup_addon_environments, log)
            wait([setting_up])
            assert capfd.readouterr().out == ""  # nothing reached the terminal while the suite would be running
            assert dev.finish_addon_environments(setting_up, log) is made
        out = capfd.readouterr().out
        env = next(iter(envs))
        assert f"creating {env}" in out and f"-r {dev.ENVIRONMENTS[env]}" in out
        if made:
            assert "=== add-on test environments: ready, " in out
            assert (tmp_path / env / ".troupe-requirements").is_file()
        else:
            assert "no-such-package-folder" in out.split("=== add-on test environments: FAILED")[0]  # pip's reason
            assert "their tests were not run ===" in out


def test_the_demo_on_a_machine_with_only_the_repository_reconstructs_the_photo_inside_scikit_image(
        monkeypatch, tmp_path, capsys) -> None:
    """Without ../shared the demo's footage is NASA's astronaut portrait from the scikit-image wheel (a backend
    requirement): the real command line puts one body on her (face centre (222, 120), 90 px wide, by hand)."""
    import sys

    import numpy as np

    from backend.evaluation.photos import head_centres

    dev = _dev()
    monkeypatch.setattr(dev, "DEMO_INPUT", dev.ROOT.parent / "elsewhere" / "football_dribble.mp4")
    photo = dev.sample_footage(dev.Path(sys.executable))
    assert photo.is_file() and photo.name == "astronaut.png"
    assert "elsewhere/football_dribble.mp4 beside the repository) is not here" in capsys.readouterr().out
    result = tmp_path / "astro naut.npz"
    subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(photo), "-o", str(result)], check=True,
                   cwd=REPO_ROOT, capture_output=True)
    with np.load(result) as data:
        heads = head_centres(data)
    assert len(heads) == 1 and np.linalg.norm(heads[0] - [222, 120]) < 90, heads


def test_the_demo_without_the_sample_clip_or_its_photo_says_what_to_pass(monkeypatch) -> None:
    """A backend environment where the photo cannot be found (scikit-image broken): one message, no traceback."""
    import sys

    dev = _dev()
    monkeypatch.setattr(dev, "DEMO_INPUT", dev.ROOT.parent / "elsewhere" / "football_dribble.mp4")
    monkeypatch.setattr(dev, "SAMPLE_PHOTO_LOCATOR", "import skimage_that_is_not_there")
    with pytest.raises(SystemExit, match=r"no astronaut\.png \(.*skimage_that_is_not_there.*\); run: python3 dev\.py "
                                         r"demo YOUR_CLIP\.mp4"):
        dev.sample_footage(dev.Path(sys.executable))
