"""Checkpoint loading: every official layout, precise errors, the weights folder, file:// installs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from backend.estimators import weights
from backend.estimators.weights import WeightsError, load_weights, read_state_dict
from backend.nets.romp import ROMPv1

REPO_ROOT = Path(__file__).resolve().parents[1]


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))


def layouts(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """The layouts of specs/estimators.md §1.2/§7: plain, original (module. + parser buffers), wrapped."""
    original = {f"module.{k}": v for k, v in state.items()}
    original["module._result_parser.params_map_parser.smpl_model.v_template"] = torch.zeros(5, 3)
    original["_calc_loss.joint_weights"] = torch.ones(3)
    return {
        "plain": state,
        "original": original,
        "model_state_dict": {"model_state_dict": original, "epoch": torch.tensor(3)},
        "state_dict": {"state_dict": state},
    }


@pytest.mark.parametrize("layout", ["plain", "original", "model_state_dict", "state_dict"])
def test_every_layout_loads(tmp_path: Path, layout: str) -> None:
    source = small_net()
    for p in source.parameters():
        nn.init.normal_(p)
    path = tmp_path / "ckpt.pth"
    torch.save(layouts(source.state_dict())[layout], path)
    target = load_weights(small_net(), path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ROMP.pkl"
    torch.save(small_net().state_dict(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match=r"cannot read checkpoint .*ROMP\.pkl"):
        read_state_dict(path)


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path: Path) -> None:
    state = small_net().state_dict()
    state["0.weight"] = torch.zeros(4, 3, 5, 5)
    del state["1.running_mean"]
    state.update({f"extra.{i}": torch.zeros(1) for i in range(7)})
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_weights(small_net(), path)
    message = str(info.value)
    assert "1 missing: 1.running_mean" in message
    assert "7 unexpected: extra.0, extra.1, extra.2, extra.3, extra.4, ... (2 more)" in message
    assert "1 mis-shaped: 0.weight (4, 3, 5, 5) != (4, 3, 3, 3)" in message


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"net": small_net()}, path)  # a whole module: needs weights_only=False, refused
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        read_state_dict(path)


def test_weights_folder_and_verified_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsError, match=r"ROMP\.pkl not found .*releases/download/V2\.0/ROMP\.pkl"):
        weights.find_checkpoint("romp-hrnet32")
    monkeypatch.setenv("TROUPE_WEIGHTS_DIR", str(tmp_path / "mine"))
    good = tmp_path / "download.pkl"
    torch.save({f"module.{k}": v for k, v in ROMPv1("hrnet32").state_dict().items()}, good)  # original layout
    installed = weights.install_checkpoint("romp-hrnet32", good.resolve().as_uri())
    assert installed == tmp_path / "mine" / "ROMP.pkl"
    assert weights.find_checkpoint("romp-hrnet32") == installed
    before = installed.read_bytes()

    wrong = tmp_path / "wrong.pkl"
    torch.save(small_net().state_dict(), wrong)
    result = subprocess.run(
        [sys.executable, "-m", "backend", "weights", "install", "romp-hrnet32", str(wrong)],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "TROUPE_WEIGHTS_DIR": str(tmp_path / "mine")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "does not fit ROMPv1" in result.stderr and "missing" in result.stderr
    assert installed.read_bytes() == before, "a wrong file replaced a working checkpoint"
    assert sorted(p.name for p in installed.parent.iterdir()) == ["ROMP.pkl"]
    with pytest.raises(WeightsError, match="does not exist"):
        weights.find_checkpoint("bev", tmp_path / "nope.pth")
