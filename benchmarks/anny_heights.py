"""How tall Anny's people come out, before and after the adult prior and the floor sizing (issue 19), in one run.

    python benchmarks/anny_heights.py [--frames 40] [--scenes 8] [--max-people 6]

"before" is the fit as it was: the prior mean and start at the shape space's own mean (every age) and no
floor sizing (``fitting.floor_height``); "after" is the current fit. Per variant it prints the standing heights
(rest mesh, soles to crown) of every track of ``group7_walk.jpg`` and of the first ``--frames`` frames of
``dancer_1080p.mp4`` (from ../shared/data, reconstructed with ``--body-model anny``), and the eval's synthetic
scenes of Anny people of every age (``python -m backend eval --fit-init --body-model anny``'s default row).
Needs ``anny==0.6.2``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
ROW = "fit (neutral + lasor root, lower energy)"


@contextlib.contextmanager
def _variant(before: bool):
    """Every body the pipeline and the eval load, as the old fit saw Anny (``before``) or as it is."""
    import backend.body as body_package
    import backend.pipeline as pipeline

    original = body_package.load_body_model

    def load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        model = original(*args, **kwargs)
        if before:
            model.shape_prior_mean = None
            model.fit_floor_heights = False
        return model

    body_package.load_body_model = pipeline.load_body_model = load
    try:
        yield
    finally:
        body_package.load_body_model = pipeline.load_body_model = original


def _track_heights(path: Path) -> list[float]:
    from backend.body import load_body_model
    from backend.evaluation.fit_init import standing_heights

    with np.load(path, allow_pickle=False) as result:
        betas = result["betas"]
    return sorted(standing_heights(load_body_model("anny"), betas).tolist())


def _reconstructed(source: Path, frames: int | None, scratch: Path) -> list[float]:
    from backend.pipeline import ReconstructOptions, reconstruct

    out = scratch / f"{source.stem}.npz"
    options = ReconstructOptions(body_model="anny", frame_end=frames)
    reconstruct(source, out, options)
    return _track_heights(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames of the dancer clip")
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--max-people", type=int, default=6)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from backend.evaluation.fit_init import evaluate_fit_init

    for name, before in (("before", True), ("after", False)):
        with _variant(before), tempfile.TemporaryDirectory() as scratch:
            group = _reconstructed(DATA / "group7_walk.jpg", None, Path(scratch))
            dancer = _reconstructed(DATA / "dancer_1080p.mp4", args.frames, Path(scratch))
            scenes = evaluate_fit_init(args.scenes, (2, args.max_people), body_model="anny")[ROW]
        print(f"{name}: group7_walk.jpg heights (m): {', '.join(f'{h:.2f}' for h in group)}")
        print(f"{name}: dancer_1080p.mp4 (first {args.frames} frames) heights (m): "
              f"{', '.join(f'{h:.2f}' for h in dancer)}")
        print(f"{name}: synthetic Anny scenes ({args.scenes}, 2-{args.max_people} people): "
              + ", ".join(f"{k} {v:.1f}" if k not in ("people", "s/person") else f"{k} {v:.3g}"
                          for k, v in scenes.items()), flush=True)


if __name__ == "__main__":
    main()
