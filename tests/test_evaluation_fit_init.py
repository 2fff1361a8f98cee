"""``eval --fit-init``: LASOR alone, the fit from a neutral start and from LASOR's start, on tiny scenes."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from backend.evaluation.cli import add_parser
from backend.evaluation.fit_init import ROWS, evaluate_fit_init, format_fit_init
from backend.evaluation.scenes import SceneConfig
from backend.fitting import FitOptions


def test_fit_init_comparison_reports_the_rows() -> None:
    torch.set_num_threads(1)
    results = evaluate_fit_init(2, (2, 2), seed=1, config=SceneConfig(width=320, height=240),
                                fit_options=FitOptions(orient_steps=5, full_steps=10))
    assert list(results) == list(ROWS)
    for row in results.values():
        assert row["people"] >= 1 and np.isfinite(row["PA-MPJPE"]) and 0 < row["s/person"] < 5
        assert row["PA-MPJPE"] <= row["MPJPE"] + 1e-6
    table = format_fit_init(results)
    assert all(name in table for name in ROWS) and "PA-MPJPE" in table and "s/person" in table


def test_eval_command_fit_init(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--fit-init", "--scenes", "1", "--min-people", "2", "--max-people", "2",
                              "--seed", "3"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "fit (neutral start)" in out and "fit (lasor start)" in out and "lasor" in out and "PA-MPJPE" in out


def test_world_landmark_noise_is_what_the_options_say() -> None:
    from backend.body import load_body_model
    from backend.evaluation.fit_init import observations
    from backend.evaluation.scenes import make_scene
    from backend.fitting import BodyPoints

    body = load_body_model("open-body")
    config = SceneConfig(width=320, height=240, max_boxes=0)
    scene = make_scene(np.random.default_rng(5), body, 2, config)
    points = BodyPoints(body)
    exact = [observations(scene, points, np.random.default_rng(s), config, (0.0, 0.0))[0].world for s in (1, 2)]
    noisy = [observations(scene, points, np.random.default_rng(s), config, (8.0, 0.03))[0].world for s in (1, 2)]
    assert np.allclose(exact[0], exact[1])  # only the noise depends on the generator
    spread = np.abs(noisy[0] - noisy[1]).mean()
    assert 0.01 < spread < 0.2, spread


def test_eval_command_refuses_negative_world_noise() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--fit-init", "--scenes", "1", "--world-noise-m", "-0.1"])
    with pytest.raises(ValueError, match="world-noise"):
        args.handler(args)
