"""The GPU check's cases (``python -m backend bench gpu``): each takes the run's :class:`Settings` and fills one
:class:`benchmarks.report.Case` with table rows, targets, notes and, where a target is missed, a profile.

Correctness decomposes each one-stage network so that a near-tie between two centre scores cannot pass for a
numerical error: (a) the raw maps, device against CPU fp32 and autocast against device fp32; (b) centre
parsing of the same maps on both devices (must be identical); (c) people decoded on each device from its own
maps at the reference's centres (sampling, 6D decoding, forward kinematics, the camera solve).
"""

from __future__ import annotations

import cProfile
import pstats
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from backend.geometry.camera import Camera
from benchmarks import fixtures
from benchmarks.compare import TOLERANCES, compare_people, compare_tensors, letterbox_comparison
from benchmarks.report import Budget, Case
from benchmarks.timing import (
    PEAK_SOURCE,
    GraphedForward,
    bf16_peak,
    forward_flops,
    frames_per_second,
    peak_memory,
    sync,
    top_kernels,
)

FORCED_THRESHOLD = float("-inf")  # every one of the top ``people`` centres passes: a fixed count per frame
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
TARGETS = {"romp-hrnet32": 2000.0, "bev": 1500.0, "clip-romp": 500.0, "fit-coherence-speedup": 10.0}


@dataclass
class Settings:
    """What one run measures, and where; ``state`` carries results between cases (the FLOPs case reads the
    ROMP speed case's best bf16 rate)."""

    device: torch.device
    quick: bool
    workdir: Path
    clip: Path | None
    budget: Budget
    batches: tuple[int, ...]
    precisions: tuple[str, ...]
    repeats: int
    warmup: int
    min_seconds: float
    romp_input: int  # 512; smaller in quick CPU runs (ROMP is fully convolutional; BEV is fixed at 512)
    people: int  # centres forced per frame in the speed cases
    clip_frames: int
    fit_frames: int
    state: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def finder_options(self) -> dict:
        """People-finder options of the crop-based estimators: the whole image only in quick runs (the tile
        pyramid multiplies the detector runs), the default pyramid otherwise."""
        return {"tile_scales": (0.0,)} if self.quick else {}

    def checkpoint(self, name: str) -> Path:
        """Random-weight checkpoint in the official layout, written once per run."""
        if name not in self._cache:
            makers: dict[str, Callable[[], Path]] = {
                "romp-hrnet32": lambda: fixtures.romp_checkpoint(self.workdir, "hrnet32"),
                "romp-resnet50": lambda: fixtures.romp_checkpoint(self.workdir, "resnet50"),
                "bev": lambda: fixtures.bev_checkpoint(self.workdir),
                "pare": lambda: fixtures.pare_checkpoint(self.workdir),
            }
            self._cache[name] = makers[name]()
        return self._cache[name]

    def body(self, device: torch.device) -> Any:
        key = f"body-{device}"
        if key not in self._cache:
            from backend.body import load_body_model

            self._cache[key] = load_body_model("open-body", device=device)
        return self._cache[key]

    def frames(self, count: int, start: int = 0) -> tuple[list[np.ndarray], str]:
        key = f"frames-{count}-{start}"
        if key not in self._cache:
            self._cache[key] = fixtures.clip_frames(self.clip, count, start)
        return self._cache[key]


# ---------------------------------------------------------------- estimators


def one_stage(settings: Settings, model: str, device: torch.device, precision: str, batch: int = 8,
              forced: bool = False) -> Any:
    """ROMP (``romp-hrnet32`` / ``romp-resnet50``) or BEV on ``device`` with a random checkpoint, built once per
    run and device (loading HRNet takes seconds on a small CPU) and set to ``precision`` and ``batch``;
    ``forced``: exactly ``settings.people`` centres per frame (threshold below any score), so parsing and the
    camera solve cost the same whatever the weights are. The instance is shared: callers use it in turn."""
    from backend.estimators.one_stage import resolve_precision

    key = f"{model}-{device}"
    if key not in settings._cache:
        options: dict[str, Any] = {"checkpoint": str(settings.checkpoint(model)), "max_people": settings.people}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the open body's zero-betas warning
            if model == "bev":
                from backend.estimators.bev import BevEstimator

                est = BevEstimator(settings.body(device), device, **options)
            else:
                from backend.estimators.romp import RompEstimator

                est = RompEstimator(settings.body(device), device, backbone=model.split("-")[1],
                                    input_size=settings.romp_input, **options)
        est.bench_threshold = est.center_thresh
        settings._cache[key] = est
    est = settings._cache[key]
    est.amp = resolve_precision(precision, est.device)
    est.batch_size = batch
    est.center_thresh = FORCED_THRESHOLD if forced else est.bench_threshold
    return est


# ---------------------------------------------------------------- correctness


def letterbox_case(settings: Settings, case: Case) -> None:
    """The device letterbox (torch pad + bicubic) against the official cv2 one, same frames."""
    from backend.estimators.one_stage import preprocess

    frames, source = settings.frames(2)
    crop = frames[0][37:700, 101:1101]
    for batch, label in (([frames[0], frames[1]], "two frames, one resize"), ([frames[0], crop], "mixed sizes")):
        host, host_pads = preprocess(batch, torch.device("cpu"), on_device=False)
        dev, dev_pads = preprocess(batch, settings.device, on_device=True)
        row = letterbox_comparison(host, dev) | {"what": f"letterbox {label}"}
        row["pads_equal"] = host_pads.tolist() == dev_pads.cpu().tolist()
        row["ok"] = row["ok"] and row["pads_equal"]
        case.rows.append(row)
    case.notes.append(f"frames: {source}; device {settings.device}")


class _Person:
    """The two fields the comparisons read, from tensors."""

    def __init__(self, joints2d: np.ndarray, transl: np.ndarray) -> None:
        self.joints2d, self.transl = joints2d, transl


def _per_frame(frame: torch.Tensor, joints2d: torch.Tensor, transl: torch.Tensor, frames: int) -> list[list]:
    f, j, t = (x.detach().float().cpu().numpy() for x in (frame, joints2d, transl))
    out: list[list] = [[] for _ in range(frames)]
    for i in range(len(f)):
        out[int(f[i])].append(_Person(j[i], t[i]))
    return out


@contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off for convolutions and matrix products (CUDA's fp32 defaults to TF32 convolutions)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _strict_rows(settings: Settings, est: Any, images: torch.Tensor, reference: dict[str, torch.Tensor]) -> list:
    """On CUDA: the device's maps with TF32 off against the CPU's (``reference``: name -> CPU map)."""
    if not settings.cuda:
        return []
    with strict_fp32():
        maps = _net_maps(est, images)
    if isinstance(maps, tuple):
        maps = dict(zip(reference, maps))
    return [compare_tensors(f"fp32 with TF32 off: {name} vs CPU fp32", ref, maps[name], TOLERANCES["fp32-strict"])
            for name, ref in reference.items()]


class AutocastModule(torch.nn.Module):
    """``net`` run under autocast ``dtype`` with float32 outputs, as the one-stage estimators scope autocast to
    their network (what follows the network stays fp32). Attributes fall through to ``net``."""

    def __init__(self, net: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.device_type, self.dtype = net, device.type, dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.net(*args, **kwargs)
        return _to_float(out)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.net, name)


def _to_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: _to_float(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float(v) for v in value)
    return value


@contextmanager
def finder_autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """The people finder's networks (``backend.detection.runtime.Network``) under autocast ``dtype`` with
    float32 outputs, for this block only; a no-op for fp32."""
    from backend.detection.runtime import Network

    if dtype is None:
        yield
        return
    original = Network.__call__

    def call(self: Any, x: torch.Tensor) -> Any:
        with torch.autocast(device.type, dtype=dtype):
            out = original(self, x)
        return _to_float(out)

    Network.__call__ = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        Network.__call__ = original  # type: ignore[method-assign]


def _net_maps(estimator: Any, images: torch.Tensor) -> Any:
    from backend.estimators.one_stage import autocast

    with torch.inference_mode(), autocast(estimator.device, estimator.amp):
        return estimator.net(images.to(estimator.device))


def romp_correctness_case(settings: Settings, case: Case, model: str = "romp-hrnet32") -> None:
    """ROMP on the device against the CPU (fp32) and against its own bf16/fp16 autocast (see module doc)."""
    from backend.estimators.centermaps import parse_centers_2d
    from backend.estimators.one_stage import preprocess

    frames, source = settings.frames(2)
    camera = Camera.from_fov(frames[0].shape[1], frames[0].shape[0])
    cpu = torch.device("cpu")
    reference = one_stage(settings, model, cpu, "fp32", forced=True)
    images, pads = preprocess(frames, cpu, on_device=False, size=settings.romp_input)
    ref_center, ref_params = _net_maps(reference, images)
    ref_frame, ref_flat, ref_score = parse_centers_2d(ref_center, reference.center_thresh, reference.max_people)

    def people_at_reference_centres(est: Any, params_map: torch.Tensor) -> list[list]:
        dev = est.device
        with torch.inference_mode():
            params = params_map.float().flatten(2).transpose(1, 2)[ref_frame.to(dev), ref_flat.to(dev)]
            people = est.people(ref_frame.to(dev), ref_score.to(dev), params, pads.to(dev)[ref_frame.to(dev)],
                                camera)
        return _per_frame(people.frame, people.joints2d, people.transl, len(frames))

    ref_people = people_at_reference_centres(reference, ref_params)
    device_fp32: tuple | None = None
    fp32_people: list | None = None  # set by the fp32 pass, which runs first
    for precision in _correctness_precisions(settings):
        est = _on_device(settings, reference, precision, lambda p: one_stage(settings, model, settings.device, p,
                                                                             forced=True))
        center, params = (ref_center, ref_params) if est is reference else _net_maps(est, images)
        against, label = ((ref_center, ref_params), "CPU fp32") if precision == "fp32" else (device_fp32, "device fp32")
        assert against is not None
        tol = TOLERANCES[precision]
        case.rows.append(compare_tensors(f"{precision} centre map vs {label}", against[0], center, tol))
        case.rows.append(compare_tensors(f"{precision} parameter maps vs {label}", against[1], params, tol))
        if precision == "fp32":
            device_fp32 = (center, params)
            case.rows += _strict_rows(settings, est, images, {"centre map": ref_center, "parameter maps": ref_params})
            case.rows.append(_parsing_row(parse_centers_2d, ref_center, est, (ref_frame, ref_flat, ref_score)))
        people = people_at_reference_centres(est, params)
        base = ref_people if precision == "fp32" else fp32_people
        case.rows.append(compare_people(f"{precision} people at the reference centres vs {label}", base, people,
                                        tol))
        if precision == "fp32":
            fp32_people = people
            found = est.estimate(frames, camera)
            case.rows.append({"what": "fp32 estimate() end to end (device letterbox)",
                              "people": sum(len(f) for f in found),
                              "reference people": sum(len(f) for f in ref_people)})
    case.notes.append(f"{model}, input {settings.romp_input}, frames: {source}; random weights in the official "
                      f"layout; the top {settings.people} centres of each frame are taken (threshold below every "
                      "score)")
    if not settings.cuda:
        case.notes.append("device is the CPU: its fp32 run is the reference itself; "
                          + ("autocast not compared (emulated on the CPU, slow)" if settings.quick else ""))


def _on_device(settings: Settings, reference: Any, precision: str, make: Callable[[str], Any]) -> Any:
    """The estimator for ``precision`` on the run's device; on the CPU the fp32 one IS the reference (the
    comparison then shows 0: there is no second device to compare with)."""
    if precision == "fp32" and not settings.cuda:
        return reference
    return make(precision)


def _correctness_precisions(settings: Settings, networks: bool = True) -> tuple[str, ...]:
    """fp32 first (the autocast runs compare against it). On the CPU, bf16 and fp16 convolutions are emulated
    (ten times slower than fp32): the quick run compares autocast only where no big network runs
    (``networks=False``: LASOR's regressor), and fp16 only on CUDA."""
    if settings.cuda:
        return ("fp32", "bf16", "fp16")
    return ("fp32",) if settings.quick and networks else ("fp32", "bf16")


def _parsing_row(parse: Callable, ref_maps: torch.Tensor, est: Any, reference: tuple) -> dict:
    """Parsing the CPU's maps on the device must give the CPU's centres exactly."""
    got = parse(ref_maps.to(est.device), est.center_thresh, est.max_people)
    same = all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(got[:2], reference[:2]))
    score = float((got[2].cpu() - reference[2]).abs().max()) if len(reference[2]) and same else 0.0
    return {"what": "centre parsing of the CPU maps on the device", "centres": int(len(reference[0])),
            "identical": same, "score_max_abs": score, "ok": bool(same and score == 0.0)}


def bev_correctness_case(settings: Settings, case: Case) -> None:
    """BEV on the device against the CPU (fp32) and its own autocast: 3D centre and camera maps, parsing, and
    people regressed at the reference's centres (MLP, camera, duplicate and outlier removal)."""
    from backend.estimators.centermaps import parse_centers_3d
    from backend.estimators.one_stage import preprocess

    frames, source = settings.frames(1)
    camera = Camera.from_fov(frames[0].shape[1], frames[0].shape[0])
    cpu = torch.device("cpu")
    reference = one_stage(settings, "bev", cpu, "fp32", forced=True)
    images, pads = preprocess(frames, cpu, on_device=False)
    ref_maps = _net_maps(reference, images)
    ref_frame, ref_zyx, ref_score = parse_centers_3d(ref_maps["center_3d"], reference.center_thresh,
                                                     reference.max_people)

    def people(est: Any, maps: dict) -> list[list]:
        from backend.estimators.one_stage import autocast

        dev = est.device
        frame, zyx = ref_frame.to(dev), ref_zyx.to(dev)
        with torch.inference_mode(), autocast(dev, est.amp):
            cams = maps["cam_3d"].float()[frame, :, zyx[:, 0], zyx[:, 1], zyx[:, 2]]
            params = est.net.regress(maps["features"], cams, frame).float()
        with torch.inference_mode():
            out = est.people(frame, ref_score.to(dev), params, pads.to(dev)[frame], camera, len(frames))
        return _per_frame(out.frame, out.joints2d, out.transl, len(frames))

    ref_people = people(reference, ref_maps)
    base_maps, base_people = ref_maps, ref_people
    precisions = _correctness_precisions(settings)
    for precision in precisions:
        est = _on_device(settings, reference, precision, lambda p: one_stage(settings, "bev", settings.device, p,
                                                                             forced=True))
        maps = ref_maps if est is reference else _net_maps(est, images)
        label = "CPU fp32" if precision == "fp32" else "device fp32"
        tol = TOLERANCES[precision]
        for key in ("center_3d", "cam_3d", "features"):
            case.rows.append(compare_tensors(f"{precision} {key} vs {label}", base_maps[key], maps[key], tol))
        if precision == "fp32":
            case.rows += _strict_rows(settings, est, images, {k: ref_maps[k] for k in ("center_3d", "cam_3d",
                                                                                        "features")})
            case.rows.append(_parsing_row(parse_centers_3d, ref_maps["center_3d"], est,
                                          (ref_frame, ref_zyx, ref_score)))
        found = people(est, maps)
        case.rows.append(compare_people(f"{precision} people at the reference centres vs {label}", base_people,
                                        found, tol))
        if precision == "fp32":
            base_maps, base_people = maps, found
    if len(precisions) == 1:
        case.notes.append("fp32 only: CPU autocast is emulated and slow (the CUDA run compares bf16 and fp16)")
    if not settings.cuda:
        case.notes.append("device is the CPU: its fp32 run is the reference itself")
    case.notes.append(f"frames: {source}; random weights in the official layout")


def pare_correctness_case(settings: Settings, case: Case) -> None:
    """PARE on the device against the CPU and its own autocast, on fixed person boxes (the same crops)."""
    from backend.estimators.pare import crop_people, square_boxes
    from backend.estimators.registry import create_estimator

    frames, source = settings.frames(1)
    frame = frames[0]
    h, w = frame.shape[:2]
    boxes = np.array([[0.30 * w, 0.20 * h, 0.45 * w, 0.95 * h], [0.55 * w, 0.25 * h, 0.68 * w, 0.90 * h]])
    boxes = boxes[:1] if settings.quick else boxes
    squares = square_boxes(boxes)
    crops = crop_people(frame, squares)
    camera = Camera.from_fov(w, h)

    def run(device: torch.device, precision: str) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = create_estimator("pare", settings.body(device), device, checkpoint=str(settings.checkpoint("pare")),
                                   precision=precision, detector=object())
        return est.run_crops(crops, squares, camera)

    def as_people(out: dict) -> list[list]:
        return [[_Person(j, t) for j, t in zip(out["joints2d"].float().cpu().numpy(),
                                               out["transl"].float().cpu().numpy())]]

    reference = run(torch.device("cpu"), "fp32")
    base = reference
    for precision in _correctness_precisions(settings):
        out = reference if precision == "fp32" and not settings.cuda else run(settings.device, precision)
        label = "CPU fp32" if precision == "fp32" else "device fp32"
        tol = TOLERANCES[precision]
        for key in ("pred_cam", "poses", "smpl_betas"):
            case.rows.append(compare_tensors(f"{precision} {key} vs {label}", base[key], out[key], tol))
        case.rows.append(compare_people(f"{precision} people vs {label}", as_people(base), as_people(out), tol))
        if precision == "fp32":
            base = out
    case.notes.append(f"{len(boxes)} fixed box(es) on {source}; random weights in the official Lightning layout"
                      + ("; fp32 only (CPU autocast is emulated and slow)" if settings.quick else ""))


def _finder_people(found: Any) -> list[list]:
    return [[_Person(np.asarray(k)[:, :2], np.zeros(3)) for k in det.keypoints] for det in found.per_frame]


def lasor_correctness_case(settings: Settings, case: Case) -> None:
    """The people finder on the device against the CPU, then LASOR on the device against the CPU on the same
    detections, and LASOR under bf16 autocast against its device fp32."""
    from backend.estimators.lasor import LasorEstimator

    frames, source = settings.frames(1 if settings.quick else 2)
    camera = Camera.from_fov(frames[0].shape[1], frames[0].shape[0])
    cpu = torch.device("cpu")
    reference = LasorEstimator(settings.body(cpu), cpu, **settings.finder_options)
    found = reference.find_people(frames, new_shot=True)
    on_device = (LasorEstimator(settings.body(settings.device), settings.device, **settings.finder_options)
                 if settings.cuda else reference)
    device_found = on_device.find_people(frames, new_shot=True) if settings.cuda else found
    case.rows.append(compare_people("people finder landmarks, device vs CPU", _finder_people(found),
                                    _finder_people(device_found), TOLERANCES["finder"]))
    ref = reference.estimate(frames, camera, found=found)
    fp32 = on_device.estimate(frames, camera, found=found)
    case.rows.append(compare_people("fp32 LASOR people vs CPU (same detections)", ref, fp32, TOLERANCES["fp32"]))
    regressor = on_device.regressor
    for precision in _correctness_precisions(settings, networks=False)[1:]:
        dtype = DTYPES[precision]
        try:
            with finder_autocast(settings.device, dtype):
                low_found = on_device.find_people(frames, new_shot=True)
            case.rows.append(compare_people(f"{precision} autocast people finder landmarks vs device fp32",
                                            _finder_people(device_found), _finder_people(low_found),
                                            TOLERANCES["finder"]))
            on_device.regressor = AutocastModule(regressor, settings.device, dtype)
            low = on_device.estimate(frames, camera, found=found)
            case.rows.append(compare_people(f"{precision} autocast LASOR people vs device fp32", fp32, low,
                                            TOLERANCES[precision]))
        except Exception as exc:  # noqa: BLE001 - a precision that cannot run is a finding, the others still run
            case.rows.append({"what": f"{precision} autocast", "error": f"{type(exc).__name__}: {exc}"[:300],
                              "ok": False})
        finally:
            on_device.regressor = regressor
    case.notes.append(f"frames: {source}; the finder runs ONNX Runtime on the CPU and torch on CUDA; autocast "
                      "covers the networks (finder, regressor), what follows them stays fp32")


def fit_correctness_case(settings: Settings, case: Case) -> None:
    """The default estimator (mediapipe-fit) on the device against the CPU, and with its people finder's networks
    under bf16 autocast against device fp32; coherence's refinement of the same people with the body model on
    the device against the CPU. The fit itself runs on the CPU in float32 by design (tiny tensors): on the
    device only the people finder runs there, so the fit differs only through it."""
    from backend.coherence import refine_people
    from backend.estimators.registry import create_estimator

    frames, source = settings.frames(1 if settings.quick else 2)
    camera = Camera.from_fov(frames[0].shape[1], frames[0].shape[0])
    cpu = torch.device("cpu")
    options = settings.finder_options
    reference = create_estimator("mediapipe-fit", settings.body(cpu), cpu, **options).estimate(frames, camera)
    found = reference
    for precision in ("fp32",) + (("bf16",) if settings.cuda else ()):
        label = "CPU" if precision == "fp32" else "device fp32"
        with finder_autocast(settings.device, DTYPES[precision]):
            people = (create_estimator("mediapipe-fit", settings.body(settings.device), settings.device, **options)
                      .estimate(frames, camera) if settings.cuda else reference)
        case.rows.append(compare_people(f"mediapipe-fit people, device {precision} vs {label}",
                                        reference if precision == "fp32" else found, people, TOLERANCES["fit"]))
        found = people if precision == "fp32" else found
    crowded = max(reference, key=len)
    if len(crowded) < 2:
        case.notes.append("coherence not compared: no frame with two people")
        return
    ref = refine_people(crowded, settings.body(cpu), camera)
    dev = refine_people(crowded, settings.body(settings.device), camera) if settings.cuda else ref
    case.rows.append(compare_people("coherence refinement, device vs CPU (same people)", [ref], [dev],
                                    TOLERANCES["coherence"]))
    case.notes.append(f"frames: {source}; {len(crowded)} people refined")


# ---------------------------------------------------------------- speed


def speed_case(settings: Settings, case: Case, model: str, cap_s: float = 60.0) -> None:
    """Frames/s of ``estimate()`` on square uint8 host frames at the network's input size (pinned upload,
    device letterbox, forward, forced parsing of ``people`` centres, camera solve, one host copy, per-frame
    lists) for every precision x batch, eager and with the forward in a CUDA graph; peak memory per cell.
    Cells stop after ``cap_s`` seconds (and when the run's budget is short) so later cases keep their time."""
    if settings.quick and model == "bev":
        case.notes.append("skipped in quick mode: BEV runs at 512 only (about 100 GFLOP a frame); its code path "
                          "is exercised by the BEV correctness case, and the speed loop by ROMP's")
        return
    size = 512 if model == "bev" else settings.romp_input
    batches = settings.batches
    precisions = ("fp32",) if settings.quick else settings.precisions  # CPU bf16/fp16 are emulated: slow
    frames, source = settings.frames(min(max(batches), 8))
    square = fixtures.square_frames(frames, size)
    camera = Camera.from_fov(size, size)
    modes = ("eager", "cuda-graph") if settings.cuda else ("eager",)
    best: dict[str, tuple[float, dict]] = {}
    last_cell, started, skipped = 2.0, time.perf_counter(), []
    for precision in precisions:
        est = one_stage(settings, model, settings.device, precision, forced=True)
        eager_net = est.net
        for mode in modes:
            for batch in batches:
                if not settings.budget.allows(3 * last_cell + 2) or time.perf_counter() - started > cap_s:
                    skipped.append(f"{precision}/{mode}/{batch}")
                    continue
                start = time.perf_counter()
                batch_frames = [square[i % len(square)] for i in range(batch)]
                row = {"precision": precision, "mode": mode, "batch": batch}
                try:
                    est.batch_size = batch
                    est.net = eager_net if mode == "eager" else GraphedForward(
                        eager_net, (batch, size, size, 3), settings.device, est.amp)
                    counts: list[int] = []
                    step = lambda: counts.append(sum(len(f) for f in est.estimate(batch_frames, camera)))  # noqa: E731
                    with peak_memory(settings.device, row):
                        fps, calls = frames_per_second(step, batch, settings.device, settings.repeats,
                                                       settings.warmup, settings.min_seconds)
                    row.update({"frames_per_s": fps, "ms_per_batch": 1000 * batch / fps,
                                "people_per_frame": counts[-1] / batch, "timed_calls": calls})
                    if fps > best.get(precision, (0.0, {}))[0]:
                        best[precision] = (fps, {"mode": mode, "batch": batch, "net": est.net})
                except Exception as exc:  # noqa: BLE001 - one cell's failure (a graph capture, memory) is a row
                    row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    row["ok"] = False  # shown, and the case marked, while the other cells still run
                    if settings.cuda:
                        torch.cuda.empty_cache()
                case.rows.append(row)
                last_cell = time.perf_counter() - start
        est.net = eager_net
    if skipped:
        case.notes.append(f"not measured (the case's {cap_s:.0f} s or the run's budget spent): {', '.join(skipped)}")
    case.notes.append(f"{model}, input {size}x{size} from {source} (centre crops); {settings.people} centres "
                      "forced per frame (threshold below every score), so parsing and the camera solve do the "
                      "same work as with trained weights on a frame with that many people; channels_last on CUDA")
    _speed_target(settings, case, model, best, camera, square)


def _speed_target(settings: Settings, case: Case, model: str, best: dict, camera: Camera,
                  square: list[np.ndarray]) -> None:
    """The target row for the best bf16 rate, and the top kernels of that configuration when it is missed."""
    target = TARGETS.get(model)
    if "bf16" in best:
        settings.state[f"{model}-bf16"] = best["bf16"][0]
    # The target is for bf16; the CPU smoke run times fp32 only (CPU bf16 is emulated, ten times slower) and
    # reports it in its place, so that the target and profile code runs in CI too.
    precision = "bf16" if "bf16" in best else next(iter(best), None) if settings.quick else None
    if target is None or precision is None:
        return
    fps, where = best[precision]
    met = fps >= target if settings.cuda and not settings.quick else None
    case.targets.append({"what": f"{model} {precision} incl. parsing (best: {where['mode']}, batch "
                                 f"{where['batch']})", "target": target, "measured": fps, "unit": "frames/s",
                         "met": met})
    if met is False or settings.quick:
        est = one_stage(settings, model, settings.device, precision, batch=where["batch"], forced=True)
        eager, est.net = est.net, where["net"]
        frames = [square[i % len(square)] for i in range(where["batch"])]
        try:
            case.profile = top_kernels(lambda: est.estimate(frames, camera), settings.device)
        finally:
            est.net = eager


def flops_case(settings: Settings, case: Case) -> None:
    """FLOPs of one ROMP HRNet-32 forward at 512 (counted here) and the share of the GPU's bf16 peak that the
    best measured bf16 rate reaches."""
    from backend.nets.romp import ROMPv1

    gflop = forward_flops(lambda: ROMPv1("hrnet32"), (1, 512, 512, 3)) / 1e9
    peak, name = bf16_peak(settings.device)
    fps = settings.state.get("romp-hrnet32-bf16")
    row: dict[str, Any] = {"gflop_per_frame_at_512": gflop, "device": name, "bf16_peak_tflops": peak,
                           "best_bf16_frames_per_s": fps}
    if fps is not None and settings.romp_input == 512:
        row["achieved_tflops"] = gflop * fps / 1e3
        row["share_of_peak"] = gflop * fps / 1e3 / peak if peak else None
    case.rows.append(row)
    case.notes.append("FLOPs: torch.utils.flop_counter.FlopCounterMode over one forward (2 per multiply-add of "
                      f"convolutions and matrix products); peak: {PEAK_SOURCE}; the rate includes parsing and "
                      "the camera solve, so the share is a lower bound for the forward alone")


def compile_case(settings: Settings, case: Case) -> None:
    """torch.compile (inductor) of ROMP HRNet-32 at one batch in bf16 against eager at the same batch; the
    compile time is reported (it is paid once per batch shape)."""
    if settings.quick:
        case.notes.append("skipped in quick mode: compiling HRNet takes minutes on a CPU")
        return
    batch = 64 if settings.cuda else settings.batches[-1]
    frames, _ = settings.frames(8)
    square = fixtures.square_frames(frames, settings.romp_input)
    batch_frames = [square[i % len(square)] for i in range(batch)]
    camera = Camera.from_fov(settings.romp_input, settings.romp_input)
    est = one_stage(settings, "romp-hrnet32", settings.device, "bf16", batch=batch, forced=True)
    eager = est.net
    run = lambda: est.estimate(batch_frames, camera)  # noqa: E731
    row: dict[str, Any] = {"batch": batch}
    row["eager_frames_per_s"], _ = frames_per_second(run, batch, settings.device, settings.repeats, 1,
                                                     settings.min_seconds)
    est.net = torch.compile(eager, dynamic=False)
    start = time.perf_counter()
    run()
    sync(settings.device)
    row["compile_s"] = time.perf_counter() - start
    row["compiled_frames_per_s"], _ = frames_per_second(run, batch, settings.device, settings.repeats, 1,
                                                        settings.min_seconds)
    row["speedup"] = row["compiled_frames_per_s"] / row["eager_frames_per_s"]
    case.rows.append(row)


def _write_synthetic_clip(settings: Settings, count: int) -> Path:
    import cv2

    path = settings.workdir / "synthetic.mp4"
    if not path.is_file():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (1280, 720))
        for frame in fixtures.synthetic_frames(count, 720, 1280, seed=1):
            writer.write(frame[..., ::-1].copy())
        writer.release()
    return path


def _reconstruct_fps(settings: Settings, clip: Path, frames: int, device: torch.device, estimator: str,
                     estimator_options: dict, chunk: int, coherence: bool) -> tuple[float, dict]:
    """frames/s of the whole pipeline (decode, estimate, track, smooth, write) over ``frames`` frames, from its
    first progress report (the models are loaded by then) to the result file written; ``setup_s``: loading."""
    from backend.pipeline import ReconstructOptions, reconstruct

    options = ReconstructOptions(estimator=estimator, device=str(device), frame_end=frames - 1, chunk_size=chunk,
                                 coherence=coherence, estimator_options=estimator_options)
    out = settings.workdir / f"clip-{estimator}-{device.type}.npz"
    info: dict[str, Any] = {}
    first: list[float] = []
    with warnings.catch_warnings(), peak_memory(device, info):
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        summary = reconstruct(clip, out, options, progress=lambda p: first or first.append(time.perf_counter()))
        sync(device)
        end = time.perf_counter()
    began = first[0] if first else start
    info.update({"frames": summary.frames, "tracks": summary.people, "setup_s": began - start,
                 "pipeline_s": end - began})
    return summary.frames / max(end - began, 1e-9), info


def clip_romp_case(settings: Settings, case: Case) -> None:
    """The whole clip pipeline with ROMP HRNet-32 (bf16 on CUDA): decode, estimate, track, smooth, write."""
    clip, source = _clip(settings, settings.clip_frames)
    chunk = 64 if settings.cuda else 2
    options = {"checkpoint": str(settings.checkpoint("romp-hrnet32")), "batch_size": chunk,
               "precision": "bf16" if settings.cuda else "fp32", "max_people": settings.people,
               "center_thresh": FORCED_THRESHOLD, "input_size": settings.romp_input}
    if settings.cuda:
        _reconstruct_fps(settings, clip, min(settings.clip_frames, 2 * chunk), settings.device, "romp", options,
                         chunk, False)  # warm-up: cudnn, allocator, pinned buffers
    fps, info = _reconstruct_fps(settings, clip, settings.clip_frames, settings.device, "romp", options, chunk,
                                 False)
    case.rows.append({"frames_per_s": fps, "chunk": chunk, **info})
    met = fps >= TARGETS["clip-romp"] if settings.cuda and not settings.quick else None
    case.targets.append({"what": "clip pipeline with ROMP (decode, estimate, track, smooth, write)",
                         "target": TARGETS["clip-romp"], "measured": fps, "unit": "frames/s", "met": met})
    case.notes.append(f"{source}; coherence off (it is measured with the default fit); {settings.people} centres "
                      "forced per frame")
    if met is False:
        short = min(settings.clip_frames, 2 * chunk)
        step = lambda: _reconstruct_fps(settings, clip, short, settings.device,  # noqa: E731
                                        "romp", options, chunk, False)
        case.profile = top_kernels(step, settings.device) + _host_profile(step)


def fit_speed_case(settings: Settings, case: Case) -> None:
    """The default estimator plus coherence over clip frames, on the device and on the CPU in the same run."""
    clip, source = _clip(settings, settings.fit_frames)
    rates = {}
    for device in (settings.device, torch.device("cpu")):
        fps, info = _reconstruct_fps(settings, clip, settings.fit_frames, device, "mediapipe-fit",
                                     settings.finder_options, 8, True)
        rates[device.type] = fps
        case.rows.append({"device": str(device), "frames_per_s": fps, **info})
        if not settings.cuda:
            case.notes.append("device is the CPU: the CPU run is not repeated")
            rates["cpu"] = fps
            break
    speedup = rates[settings.device.type] / rates["cpu"]
    met = speedup >= TARGETS["fit-coherence-speedup"] if settings.cuda and not settings.quick else None
    case.targets.append({"what": "default fit + coherence, device vs CPU", "target": TARGETS["fit-coherence-speedup"],
                         "measured": speedup, "unit": "x", "met": met})
    case.notes.append(f"{source}; the fit runs on the CPU by design (backend.fitting.body_points): on CUDA only "
                      "the people finder and coherence's body and rasterizer move to the GPU")
    if met is False:
        step = lambda: _reconstruct_fps(settings, clip, min(2, settings.fit_frames), settings.device,  # noqa: E731
                                        "mediapipe-fit", {}, 8, True)
        case.profile = top_kernels(step, settings.device) + _host_profile(step)


def _clip(settings: Settings, frames: int) -> tuple[Path, str]:
    if settings.clip is not None:
        return settings.clip, f"clip {settings.clip.name}, first {frames} frames"
    return _write_synthetic_clip(settings, frames), f"synthetic 1280x720 clip of {frames} frames (no --clip given)"


def _host_profile(step: Callable[[], Any], count: int = 15) -> list[dict]:
    """cProfile of one call: the ``count`` Python functions with the most own time (where a host-bound stage
    spends it)."""
    profiler = cProfile.Profile()
    profiler.enable()
    step()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:count]
    return [{"name": f"host: {Path(k[0]).name}:{k[1]} {k[2]}"[:90], "calls": int(v[1]), "ms_per_step": v[2] * 1000,
             "share": v[2] / total} for k, v in ranked]
