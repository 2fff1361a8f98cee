"""One prepared GPU check (``python -m backend bench gpu``): CUDA correctness and speed of every estimator in a
single unattended command of at most five minutes, written as ``gpu_check.json`` and ``gpu_check.md``.

    python -m backend bench gpu [--out DIR] [--clip VIDEO] [--budget-s 280] [--device auto|cuda|cpu] [--quick]

Cases run in order of importance; one that the remaining budget cannot hold is skipped with a note, one that
fails is recorded with its error, and the report is rewritten after every case. ``--quick --device cpu`` is the
CI smoke run: batches 1 and 2, one repeat, ROMP at a 64-pixel input, no targets enforced. Weights are random
(seeded) in the official layouts: speed with random weights equals speed with trained ones except where work
depends on the data, the number of centres above the threshold, which is therefore forced (see gpu_cases).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from backend.errors import OptionError
from backend.runtime.device import resolve_device
from benchmarks import gpu_cases as cases
from benchmarks.compare import tolerances_table
from benchmarks.report import Budget, Case, Report

GPU_BATCHES = (1, 8, 32, 64, 128)
QUICK_BATCHES = (1, 2)

# (name, title, function, seconds it usually takes on an H200, in the quick CPU run): most important first.
PLAN: list[tuple[str, str, Callable[..., None], float, float]] = [
    ("letterbox", "Letterbox: device vs cv2", cases.letterbox_case, 3, 2),
    ("romp_correctness", "ROMP HRNet-32: device vs CPU, autocast vs fp32", cases.romp_correctness_case, 15, 8),
    ("romp_speed", "ROMP HRNet-32 speed", partial(cases.speed_case, model="romp-hrnet32", cap_s=70), 60, 5),
    ("romp_flops", "ROMP HRNet-32: FLOPs and share of the bf16 peak", cases.flops_case, 5, 2),
    ("bev_speed", "BEV speed", partial(cases.speed_case, model="bev", cap_s=55), 50, 10),
    ("clip_romp", "Clip pipeline with ROMP", cases.clip_romp_case, 25, 5),
    ("bev_correctness", "BEV: device vs CPU, autocast vs fp32", cases.bev_correctness_case, 15, 12),
    ("fit_speed", "Default fit + coherence: device vs CPU speed", cases.fit_speed_case, 45, 10),
    ("fit_correctness", "Default fit and coherence: device vs CPU", cases.fit_correctness_case, 20, 8),
    ("pare_correctness", "PARE: device vs CPU, autocast vs fp32", cases.pare_correctness_case, 10, 5),
    ("lasor_correctness", "People finder and LASOR: device vs CPU, autocast", cases.lasor_correctness_case, 15, 8),
    ("resnet_speed", "ROMP ResNet-50 speed", partial(cases.speed_case, model="romp-resnet50", cap_s=30), 30, 3),
    ("compile", "torch.compile of ROMP HRNet-32", cases.compile_case, 90, 0),
]


# Host work in the CUDA hot paths, read off the code (not yet measured on a GPU): where to look first when a
# target is missed. The report carries these notes next to the figures.
HOT_PATH_NOTES = (
    "preprocess (one_stage.py): np.stack then pin_memory() copies each batch twice on the host before the "
    "upload; stacking straight into a pinned buffer would save one copy (about 100 MB a batch of 128 at 512)",
    "centre parsing (centermaps._topk) and People.keep use boolean masks and nonzero: a few host syncs per "
    "batch (not per person); BEV's frame_slots reads counts.max() and post_process calls nonzero again",
    "People.split builds one PersonEstimate per person in Python after a single device-to-host copy: about "
    "1000 objects per batch of 128 frames with 8 people",
    "the camera solve (camera.solve_translation) no longer syncs: linalg.solve_ex instead of linalg.solve",
    "the pipeline decodes frames on the main thread between batches (no overlap of decode and upload with the "
    "GPU's work) and hands the estimator chunks of ReconstructOptions.chunk_size frames (8; the command line "
    "cannot change it): ROMP and BEV then run batch 8 (the clip case here uses 64)",
    "mediapipe-fit's fit runs on the CPU by design (fitting/body_points.py): on CUDA only its people finder "
    "and coherence move to the GPU, so a 10x speed-up of the whole is not expected from the device alone",
)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m backend bench gpu", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/gpu_check"), help="folder for the two report files")
    parser.add_argument("--clip", type=Path, default=None, help="a real video for the clip cases (else synthetic)")
    parser.add_argument("--budget-s", type=float, default=280.0, help="hard time budget for all cases")
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: tiny batches, one repeat")
    parser.add_argument("--cases", nargs="+", default=None, help="run only these cases (names in the report)")
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace, workdir: Path, budget: Budget) -> cases.Settings:
    device = resolve_device(args.device)
    if args.clip is not None and not args.clip.is_file():
        raise OptionError(f"--clip {args.clip}: no such file")
    quick = bool(args.quick)
    return cases.Settings(
        device=device, quick=quick, workdir=workdir, clip=args.clip, budget=budget,
        batches=QUICK_BATCHES if quick else GPU_BATCHES,
        precisions=("fp32",) if quick else ("bf16", "fp16", "fp32"),
        repeats=1 if quick else 3, warmup=0 if quick else 1, min_seconds=0.0 if quick else 0.3,
        romp_input=64 if quick else 512, people=8 if not quick else 4,
        clip_frames=3 if quick else 256, fit_frames=1 if quick else 24,
    )


def context(settings: cases.Settings, args: argparse.Namespace) -> dict[str, Any]:
    """What the run ran on, for the report's head."""
    dev = settings.device
    ctx: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(), "quick": settings.quick, "budget_s": settings.budget.seconds,
        "batches": list(settings.batches), "precisions": list(settings.precisions),
        "clip": str(args.clip) if args.clip else "none (synthetic frames)",
        "weights": "random (seeded) in the official key layouts; speed does not depend on the values except "
                   "through the number of people parsed, which the speed cases force",
        "tolerances": tolerances_table(),
    }
    if dev.type == "cuda":
        ctx["cudnn_tf32"] = torch.backends.cudnn.allow_tf32
        ctx["matmul_tf32"] = torch.backends.cuda.matmul.allow_tf32
        ctx["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    return ctx


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan; exit 0 when every case ran (whatever it measured), 1 when a case raised."""
    args = _arguments(argv)
    budget = Budget(args.budget_s)
    with tempfile.TemporaryDirectory(prefix="troupe-gpu-check-") as tmp:
        settings = settings_for(args, Path(tmp), budget)
        report = Report(args.out, context(settings, args))
        report.notes += [f"hot path: {n}" for n in HOT_PATH_NOTES]
        if settings.device.type != "cuda":
            report.notes.append("no CUDA device: the device runs are CPU runs, CUDA graphs are not tried and no "
                                "target is enforced")
        chosen = [p for p in PLAN if args.cases is None or p[0] in args.cases]
        for name, title, fn, gpu_s, quick_s in chosen:
            estimate = quick_s if settings.quick else gpu_s
            case = report.run(name, title, lambda c, fn=fn: fn(settings, c), budget, estimate)
            _print(case)
        report.finished = True
        report.save()
    print(f"report: {report.markdown_path} and {report.json_path} ({budget.seconds - budget.left():.0f} s)")
    return 1 if any(c.status == "error" for c in report.cases) else 0


def _print(case: Case) -> None:
    line = f"{case.name:18s} {case.status:8s} {case.seconds:6.1f} s"
    for t in case.targets:
        line += f"  {t['what'][:40]}: {t['measured']:.4g} {t['unit']} (target {t['target']:g})"
    if case.error:
        line += f"  {case.error[:160]}"
    print(line, flush=True)
