"""Speed of the people-finding networks: torch against ONNX Runtime on the CPU, in the same run (ratios), the
landmark model without its mask (as the crops tried run) against whole calls, and the
people finder per frame of a clip. ``python benchmarks/bench_people.py [--frames 60]``.

``--exports-against REV`` instead times each network's ONNX export as this checkout makes it against the export
``REV``'s code makes (a temporary git worktree exports in its own process), alternating, on the same inputs, and
says how far their outputs are apart.

Coverage figures are ``python -m backend eval-people`` (hand-labelled photos, against a baseline revision).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def networks() -> list[tuple[str, object, tuple[int, ...]]]:
    from backend.detection.models import is_available, model_path
    from backend.detection.movenet import HEADS
    from backend.detection.tfjs import TfjsGraph
    from backend.detection.tflite import TfliteModel

    out = []
    for name in ("pose_detector", "face_detector_full_range", "pose_landmarks_full"):
        module = TfliteModel(model_path(name))
        out.append((name, module, module.input_shape))
    if is_available("movenet_multipose"):
        out.append(("movenet_multipose", TfjsGraph(model_path("movenet_multipose"), list(HEADS.values())),
                    (1, 256, 256, 3)))
    return out


def runtimes(repeats: int) -> None:
    import torch

    from backend.detection.models import model_path
    from backend.detection.runtime import Network

    for name, module, shape in networks():
        source = model_path(name)
        source = source.with_suffix(".bin") if source.suffix == ".json" else source
        outputs = getattr(module, "output_names", None) or module.outputs
        fast = Network(module, outputs, source, "cpu", shape)
        os.environ["TROUPE_RUNTIME"] = "torch"
        plain = Network(module, outputs, source, "cpu", shape)
        del os.environ["TROUPE_RUNTIME"]
        for batch in (1, 4):
            x = torch.rand(batch, *shape[1:])
            times = {}
            for label, network in (("torch", plain), (fast.runtime, fast)):
                network(x)
                start = time.perf_counter()
                for _ in range(repeats):
                    network(x)
                times[label] = (time.perf_counter() - start) / repeats / batch * 1000
            ratio = times["torch"] / times[fast.runtime]
            print(f"{name:26s} batch {batch}: torch {times['torch']:6.1f} ms/image, {fast.runtime} "
                  f"{times[fast.runtime]:6.1f} ms/image ({ratio:.2f}x)")


def landmark_mask(repeats: int, batch: int = 8) -> None:
    """The landmark model on crops tried without their mask (read later only for the crops kept, see
    ``Network.partial``) against whole calls, alternating, in ONNX Runtime."""
    import torch

    from backend.detection.models import model_path
    from backend.detection.pose_landmarks import MASK_OUTPUT
    from backend.detection.runtime import Network
    from backend.detection.tflite import TfliteModel

    module = TfliteModel(model_path("pose_landmarks_full"))
    network = Network(module, module.output_names, model_path("pose_landmarks_full"), "cpu", module.input_shape,
                      deferred=[MASK_OUTPUT])
    x = torch.rand(batch, *module.input_shape[1:])
    later = network.partial(x)[1]
    calls = {"whole": lambda: network(x), "without mask": lambda: network.partial(x),
             "mask alone": lambda: network.finish(later)}
    times = dict.fromkeys(calls, 0.0)
    for repeat in range(repeats):
        for label in calls if repeat % 2 else reversed(calls):
            start = time.perf_counter()
            calls[label]()
            times[label] += time.perf_counter() - start
    ms = {label: 1000 * value / repeats / batch for label, value in times.items()}
    print(f"pose_landmarks_full batch {batch} ({network.runtime}): whole {ms['whole']:.1f} ms/crop, without the mask "
          f"{ms['without mask']:.1f} ({ms['whole'] / ms['without mask']:.2f}x), the mask alone {ms['mask alone']:.1f}")


def clip(frames: int) -> None:
    import cv2

    from backend.detection.clip import ClipPeopleFinder
    from backend.detection.people import PeopleFinder

    capture = cv2.VideoCapture(str(DATA / "football_dribble.mp4"))
    images = []
    while len(images) < frames:
        ok, bgr = capture.read()
        if not ok:
            break
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if len(images) < 2:
        raise SystemExit(f"football_dribble.mp4 gave {len(images)} frame(s); the clip timing needs two")
    finder = ClipPeopleFinder(PeopleFinder())
    finder.find(images[0])  # the first frame searches every tile: timed apart
    start = time.perf_counter()
    counts = [len(np.unique(finder.find(image).group)) for image in images[1:]]
    seconds = time.perf_counter() - start
    print(f"people finder on football_dribble.mp4 frames 1-{len(images) - 1}: {1000 * seconds / len(counts):.0f} "
          f"ms/frame, {np.mean(counts):.1f} people per frame")


def exports_against(revision: str, repeats: int, batch: int = 4) -> None:
    """Each network's ONNX export by this checkout against the one by ``revision``'s code: ms per image, alternating."""
    import json
    import subprocess
    import tempfile

    from backend.detection.runtime import _onnx_session
    from backend.evaluation.photos import worktree

    def export(code: Path, folder: Path) -> dict[str, str]:
        command = [sys.executable, str(Path(__file__).resolve()), "--export-into", str(folder), "--code", str(code)]
        done = subprocess.run(command, cwd=code, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"exporting with the code in {code} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory(prefix="troupe-exports-") as tmp:
        with worktree(revision) as base_root:
            base = export(base_root, Path(tmp) / "baseline")
        now = export(ROOT, Path(tmp) / "current")
        for name, shape in ((name, shape) for name, _, shape in networks()):
            sessions = {"baseline": _onnx_session(Path(base[name])), "this code": _onnx_session(Path(now[name]))}
            x = np.random.default_rng(0).random((batch, *shape[1:]), np.float32)
            outputs = {label: session.run(None, {"input": x}) for label, session in sessions.items()}
            apart = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-9))
                        for a, b in zip(outputs["baseline"], outputs["this code"]))
            times = dict.fromkeys(sessions, 0.0)
            for repeat in range(repeats):
                for label in sessions if repeat % 2 else reversed(sessions):
                    start = time.perf_counter()
                    sessions[label].run(None, {"input": x})
                    times[label] += time.perf_counter() - start
            ms = {label: 1000 * value / repeats / batch for label, value in times.items()}
            print(f"{name:26s} batch {batch}: {revision} {ms['baseline']:6.1f} ms/image, this code "
                  f"{ms['this code']:6.1f} ({ms['baseline'] / ms['this code']:.2f}x); outputs apart by at most "
                  f"{apart:.1e} of their largest value")


def export_into(folder: Path) -> None:
    """(In the process of the code being measured.) Every network's ONNX export, written into ``folder``; prints
    their paths by name as JSON."""
    import json

    from backend.detection import runtime
    from backend.detection.models import model_path

    folder.mkdir(parents=True, exist_ok=True)
    runtime.cache_subdir = lambda name: folder  # this process only: the user's cache is not touched
    paths = {}
    for name, module, shape in networks():
        source = model_path(name)
        source = source.with_suffix(".bin") if source.suffix == ".json" else source
        outputs = getattr(module, "output_names", None) or module.outputs
        paths[name] = str(runtime._exported(module, outputs, source, shape))
    print(json.dumps(paths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="clip frames to time the finder on (0: skip the clip)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--exports-against", metavar="REV", help="time the ONNX exports against REV's instead")
    parser.add_argument("--export-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_into is not None:
        sys.path.insert(0, str(args.code))  # that checkout's backend, not this file's
        export_into(args.export_into)
        return
    if args.exports_against:
        exports_against(args.exports_against, args.repeats)
        return
    runtimes(args.repeats)
    landmark_mask(args.repeats)
    if args.frames >= 2:  # the first frame is timed apart, so the clip needs two
        clip(args.frames)


if __name__ == "__main__":
    main()
