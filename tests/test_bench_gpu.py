"""The GPU check (``python -m backend bench gpu``) keeps working without a GPU: its quick CPU run writes both
reports with every case ran, skipped with a reason, or failed with its error; the comparisons it relies on
reject outputs that differ; the report survives a case that raises; the bench command line still runs romp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import gpu
from benchmarks.compare import (
    TOLERANCES,
    Tolerance,
    compare_people,
    compare_tensors,
    letterbox_comparison,
    rel_l2,
)
from benchmarks.report import STATUSES, Budget, Case, Report
from benchmarks.timing import BF16_PEAK_TFLOPS, forward_flops


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict:
    out = tmp_path_factory.mktemp("gpu-check")
    code = gpu.main(["--quick", "--device", "cpu", "--out", str(out), "--clip",
                     str(shared_data / "football_dribble.mp4"), "--budget-s", "240"])
    data = json.loads((out / "gpu_check.json").read_text())
    data["_markdown"] = (out / "gpu_check.md").read_text()
    data["_code"] = code
    return data


def test_quick_cpu_run_reports_every_case(quick_report: dict) -> None:
    data = quick_report
    assert data["format"] == "troupe-gpu-check/1" and data["finished"] is True
    assert data["_code"] == 0, [c["error"] for c in data["cases"] if c["error"]]
    assert [c["name"] for c in data["cases"]] == [p[0] for p in gpu.PLAN]
    for case in data["cases"]:
        assert case["status"] in STATUSES
        assert case["status"] != "error", case["error"]
        if case["status"] in ("ok", "mismatch"):
            assert case["rows"], case["name"]
        else:  # skipped by design in a CPU run, never for the budget
            assert case["notes"] and "budget" not in " ".join(case["notes"]), case
    statuses = {c["name"]: c["status"] for c in data["cases"]}
    assert {n for n, s in statuses.items() if s == "skipped"} <= {"bev_speed", "compile"}
    assert all(s == "ok" for n, s in statuses.items() if n.endswith("correctness") or n == "letterbox")


def test_quick_report_content(quick_report: dict) -> None:
    cases = {c["name"]: c for c in quick_report["cases"]}
    speed = cases["romp_speed"]
    assert {r["batch"] for r in speed["rows"]} == set(gpu.QUICK_BATCHES)
    assert all(r["frames_per_s"] > 0 and r["people_per_frame"] > 0 for r in speed["rows"])
    assert speed["targets"] and speed["targets"][0]["met"] is None  # no target enforced on the CPU
    assert speed["profile"] and all({"name", "calls", "ms_per_step", "share"} <= set(r) for r in speed["profile"])
    flops = cases["romp_flops"]["rows"][0]
    assert 70 < flops["gflop_per_frame_at_512"] < 100  # ROMP HRNet-32 at 512: about 86 GFLOP
    parsing = [r for r in cases["romp_correctness"]["rows"] if r["what"].startswith("centre parsing")]
    assert parsing and parsing[0]["identical"] and parsing[0]["centres"] > 0
    assert cases["clip_romp"]["rows"][0]["frames"] == 3
    md = quick_report["_markdown"]
    assert md.startswith("# Troupe GPU check (complete)") and "## Targets" in md
    assert all(f"## {p[1]}" in md for p in gpu.PLAN)


def test_tensor_comparison_rejects_a_perturbed_output() -> None:
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 145, 16, 16, generator=gen)
    tol = TOLERANCES["fp32"]
    assert compare_tensors("same", maps, maps.clone(), tol)["ok"]
    assert compare_tensors("rounding", maps, maps * (1 + 1e-4), tol)["ok"]
    bumped = maps.clone()
    bumped[0, 3] += 0.5  # one channel off
    assert not compare_tensors("one channel", maps, bumped, tol)["ok"]
    assert not compare_tensors("shape", maps, maps[:1], tol)["ok"]
    assert not compare_tensors("nan", maps, maps * float("nan"), tol)["ok"]
    assert rel_l2(torch.zeros(3), torch.zeros(3)) == 0.0


class _P:
    def __init__(self, joints2d: np.ndarray, transl: np.ndarray) -> None:
        self.joints2d, self.transl = joints2d, transl


def test_people_comparison_matches_people_and_rejects_moved_or_missing_ones() -> None:
    rng = np.random.default_rng(0)
    people = [_P(rng.uniform(0, 1000, (24, 2)), rng.uniform(1, 10, 3)) for _ in range(3)]
    shuffled = [people[2], people[0], people[1]]  # another order: matched, not compared by index
    tol = TOLERANCES["fp32"]
    assert compare_people("order", [people], [shuffled], tol)["ok"]
    moved = [_P(p.joints2d + 20.0, p.transl) for p in people]
    assert not compare_people("moved", [people], [moved], tol)["ok"]
    farther = [_P(p.joints2d, p.transl * 1.2) for p in people]
    assert not compare_people("farther", [people], [farther], tol)["ok"]
    assert not compare_people("missing", [people], [people[:2]], tol)["ok"]
    assert compare_people("missing, allowed", [people], [people[:2]], Tolerance(1.0, 1.0, 8.0, 0.01, 1))["ok"]


def test_letterbox_comparison_bounds() -> None:
    host = torch.randint(0, 256, (1, 64, 64, 3)).float()
    assert letterbox_comparison(host, host + 1)["ok"] is False  # mean 1 grey level
    off_by_one = host.clone()
    off_by_one[0, 0, 0, 0] += 1
    assert letterbox_comparison(host, off_by_one)["ok"]
    off_by_one[0, 0, 0, 1] += 2
    assert not letterbox_comparison(host, off_by_one)["ok"]


def test_a_failing_case_is_recorded_and_the_rest_still_run(tmp_path: Path) -> None:
    report = Report(tmp_path, {"device": "test"})
    budget = Budget(60)

    def broken(case: Case) -> None:
        raise RuntimeError("CUDA error: an illegal memory access\nsecond line")

    def fine(case: Case) -> None:
        case.rows.append({"what": "x", "ok": True})

    def differs(case: Case) -> None:
        case.rows.append({"what": "y", "ok": False})

    report.run("broken", "Broken", broken, budget, 1)
    report.run("fine", "Fine", fine, budget, 1)
    report.run("differs", "Differs", differs, budget, 1)
    report.run("long", "Long", fine, budget, 3600)
    data = json.loads(report.json_path.read_text())  # written after each case: a killed run leaves this
    status = {c["name"]: c for c in data["cases"]}
    assert status["broken"]["status"] == "error" and status["broken"]["error"] == (
        "RuntimeError: CUDA error: an illegal memory access")
    assert status["fine"]["status"] == "ok" and status["differs"]["status"] == "mismatch"
    assert status["long"]["status"] == "skipped" and "budget" in status["long"]["notes"][0]
    assert data["finished"] is False and "partial" in report.markdown_path.read_text().splitlines()[0]


def test_a_case_outliving_the_budget_is_cut_off(tmp_path: Path) -> None:
    import time

    report = Report(tmp_path, {})
    case = report.run("slow", "Slow", lambda c: time.sleep(5), Budget(1.2), 0)
    assert case.status == "error" and "CaseTimeout" in case.error and case.seconds < 4


def test_flops_and_peak_table() -> None:
    gflop = forward_flops(lambda: torch.nn.Conv2d(3, 8, 3, padding=1), (1, 3, 10, 10)) / 1e9
    assert gflop == pytest.approx(2 * 8 * 3 * 9 * 100 / 1e9)
    assert dict(BF16_PEAK_TFLOPS)["H200"] == 989.0 and dict(BF16_PEAK_TFLOPS)["A100"] == 312.0


def test_bench_command_line_routes_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks as bench
    from backend.app import cli

    calls = []
    monkeypatch.setattr(bench, "run_benchmark", lambda name, argv: calls.append((name, list(argv))) or 0)
    assert cli.main(["bench", "gpu", "--quick", "--device", "cpu"]) == 0
    assert cli.main(["bench", "romp", "--device", "cpu"]) == 0
    assert cli.main(["bench", "--estimator", "romp"]) == 0  # the older form
    assert calls == [("gpu", ["--quick", "--device", "cpu"]), ("romp", ["--device", "cpu"]), ("romp", [])]
    assert cli.main(["bench", "nope"]) == 1


def test_autocast_module_scopes_autocast_to_the_network() -> None:
    from benchmarks.gpu_cases import AutocastModule

    net = torch.nn.Linear(4, 3)
    net.config = "kept"  # type: ignore[assignment]
    wrapped = AutocastModule(net, torch.device("cpu"), torch.bfloat16)
    x = torch.randn(5, 4)
    out = wrapped(x)
    assert out.dtype == torch.float32 and wrapped.config == "kept"
    assert list(wrapped.parameters()) == list(net.parameters())
    assert compare_tensors("bf16", net(x), out, TOLERANCES["bf16"])["ok"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphed_forward_replays_the_eager_network() -> None:
    from backend.nets.romp import ROMPv1
    from benchmarks.timing import GraphedForward

    device = torch.device("cuda")
    net = ROMPv1("resnet50").eval().to(device)
    images = torch.rand(2, 512, 512, 3, device=device) * 255
    graphed = GraphedForward(net, tuple(images.shape), device, None)
    with torch.inference_mode():
        eager = net(images)
        replayed = graphed(images)
        other = graphed(images[:1])  # another shape: the eager module
    for a, b in zip(eager, replayed):
        assert compare_tensors("graph", a, b, TOLERANCES["fp32-strict"])["ok"]
    assert other[0].shape[0] == 1 and graphed.backbone_name == "resnet50"
