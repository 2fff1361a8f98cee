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
