"""Writes a result file with the camera's motion for the add-on tests (run in a torch-capable subprocess):
a synthetic pan, tilt and zoom clip, its camera path measured by ``backend.world``, its people through a fixed lens
(with ``--fitted`` as the default estimator gives them: fitted onto the picture's joints through that lens).

    python -m tests.camera_result_fixture OUT.npz [--frames 24] [--zoom 1.4] [--fitted]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.body import load_body_model
from backend.evaluation.camera_clip import ClipConfig, clip_result, load_photo, make_camera_clip
from backend.result import write_result
from backend.world import path_of_frames

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--zoom", type=float, default=1.4, help="largest focal length / the first frame's")
    parser.add_argument("--fitted", action="store_true", help="people fitted onto the picture, not regressed")
    args = parser.parse_args(argv)
    body = load_body_model("open-body")
    # the whole sweep in few frames: a 20 deg pan, 6 deg tilt and 1.4x zoom at its peak
    config = ClipConfig(frames=args.frames, width=480, height=270, pan_deg=20.0, zoom=args.zoom)
    clip = make_camera_clip(load_photo(DATA / "soccer_crowd.jpg"), body, config)
    path = path_of_frames(clip.frames, clip.camera.fx, [clip.boxes(i) for i in range(args.frames)])
    arrays = clip_result(clip, body, path, depth_noise=0.03, fitted=args.fitted)
    write_result(args.output, {k: v for k, v in arrays.items() if k != "format"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
