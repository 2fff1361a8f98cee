"""Speed of the people-finding networks: torch against ONNX Runtime on the CPU, in the same run (ratios), the
landmark model without its mask (as the crops tried run) against whole calls, and the
people finder per frame of a clip. ``python benchmarks/bench_people.py [--frames 60]``.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="clip frames to time the finder on (0: skip the clip)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    runtimes(args.repeats)
    landmark_mask(args.repeats)
    if args.frames >= 2:  # the first frame is timed apart, so the clip needs two
        clip(args.frames)


if __name__ == "__main__":
    main()
