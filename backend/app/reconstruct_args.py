"""The reconstruction options on the command line, declared once for every command that reconstructs
(``reconstruct`` one input, ``batch`` many): the flags, their check through the option schema
(``backend.options``) and the :class:`~backend.pipeline.ReconstructOptions` they make.

Standard library only at import time: the command line checks options before it imports torch.
"""

from __future__ import annotations

import argparse
from typing import Any

from backend.catalog import DEFAULT_ESTIMATOR, available_estimators
from backend.options import DEVICE_CHOICES, check_options

FIT_INITIALISERS = ("neutral", "lasor", "lasor-root", "neutral+lasor-root")


def add_reconstruct_options(cmd: argparse.ArgumentParser) -> None:
    """The flags every reconstructing command takes (the input and output are each command's own)."""
    cmd.add_argument("--estimator", help=f"one of {', '.join(available_estimators())} (default: {DEFAULT_ESTIMATOR}; "
                                         "`doctor` says which can run here)")
    cmd.add_argument("--body-model", help="open-body (built in, the default) or smpl-neutral/-male/-female")
    cmd.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                     help="auto: CUDA when available, else the CPU (default: auto)")
    lens = cmd.add_mutually_exclusive_group()
    lens.add_argument("--fov", type=float, help="camera field of view in degrees across the longer side "
                                                "(default: 55)")
    lens.add_argument("--focal", type=float, help="camera focal length in pixels")
    cmd.add_argument("--start", type=int, help="first frame (0-based, inclusive)")
    cmd.add_argument("--end", type=int, help="last frame (inclusive)")
    cmd.add_argument("--keep-partial", action="store_true", help="on cancel or a broken video, keep what was done")
    cmd.add_argument(
        "--smoothing", type=float, default=None,
        help="temporal smoothing 0..1 (0 = off; default 0.5): zero-phase per track, stronger on depth",
    )  # fmt: skip
    cmd.add_argument(
        "--fit-init", choices=FIT_INITIALISERS, default=None,
        help="mediapipe-fit only: start each new person's fit from MediaPipe's 3D landmarks (neutral), from "
             "LASOR's prediction (lasor), from the landmarks turned and moved to LASOR's orientation and depth "
             "(lasor-root), or from both neutral and lasor-root, keeping the fit of lower energy (the default)",
    )  # fmt: skip
    cmd.add_argument(
        "--no-coherence", dest="coherence", action="store_false",
        help="skip the refinement that separates interpenetrating people and fixes their depth order",
    )  # fmt: skip


def checked_option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The flags' values through the schema the service uses; only the options that were set."""
    return check_options({
        "estimator": args.estimator, "body_model": args.body_model, "device": args.device, "fov": args.fov,
        "focal": args.focal, "frame_start": args.start, "frame_end": args.end, "keep_partial": args.keep_partial,
        "smoothing": args.smoothing, "coherence": args.coherence,
    }, cli=True)  # fmt: skip


def estimator_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options passed to the estimator itself (``ReconstructOptions.estimator_options``)."""
    return {} if args.fit_init is None else {"initialiser": args.fit_init}


__all__ = ["FIT_INITIALISERS", "add_reconstruct_options", "checked_option_values", "estimator_options"]
