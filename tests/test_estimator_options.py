"""Each estimator's own settings are declared once, in the catalog, and reach the estimator: the declaration
matches the estimator's keyword arguments and defaults, and the one option schema checks them for the command
line and the service alike."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from backend.errors import OptionError
from backend.estimators.catalog import CATALOG
from backend.options import check_options, parse_option_assignments

ROOT = Path(__file__).resolve().parents[1]
DECLARING = [info for info in CATALOG if info.implementation and info.options]


@pytest.mark.parametrize("info", DECLARING, ids=lambda info: info.name)
def test_every_declared_option_is_a_keyword_of_the_estimator_with_the_same_default(info) -> None:
    module_name, class_name = info.implementation.split(":")
    parameters = inspect.signature(getattr(importlib.import_module(module_name), class_name)).parameters
    for option in info.options:
        assert option.name in parameters, f"{info.name} declares {option.name!r}, which its class does not take"
        default = parameters[option.name].default
        if default is not None:  # None: the class picks per model (BEV's threshold); the catalog states its own
            assert default == option.default, f"{info.name}.{option.name}: {default!r} != {option.default!r}"
        assert option.check(option.default) is None


def test_the_schema_types_and_checks_options_for_the_chosen_estimator() -> None:
    typed = parse_option_assignments("romp", ["center_thresh=0.4", "backbone=resnet50"])
    values = check_options({"estimator": "romp", "estimator_options": typed})
    assert values["estimator_options"] == {"center_thresh": 0.4, "backbone": "resnet50"}
    assert check_options({"estimator_options": {"depth_order": False}})["estimator_options"] == {"depth_order": False}
    with pytest.raises(OptionError, match="romp has no option 'initialiser'"):
        check_options({"estimator": "romp", "estimator_options": {"initialiser": "neutral"}})
    with pytest.raises(OptionError, match="must be one of hrnet32, resnet50"):
        check_options({"estimator": "romp", "estimator_options": {"backbone": "vgg"}})
    with pytest.raises(OptionError, match="must be true or false"):
        check_options({"estimator_options": parse_option_assignments("mediapipe-fit", ["depth_order=perhaps"])})
    with pytest.raises(OptionError, match="NAME=VALUE"):
        parse_option_assignments("romp", ["center_thresh"])


def test_the_command_line_lists_and_checks_estimator_options(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "backend", "reconstruct", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    help_text = run("--help").stdout
    for info in DECLARING:
        assert all(f"{info.name}: {option.name}=" in help_text for option in info.options)
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"not read: the options fail first")
    refused = run(str(image), "-o", str(tmp_path / "out.npz"), "--estimator", "lasor", "-O", "min_visibility=1.5")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--option min_visibility must be between 0 and 1, got 1.5" in refused.stderr
    assert not (tmp_path / "out.npz").exists()
