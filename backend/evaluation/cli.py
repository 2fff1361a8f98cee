"""``python -m backend eval``: synthetic multi-person scenes, metrics per estimator with and without coherence;
``--fit-init``: LASOR alone vs the default fit from each of its starts (``fit_init``).

Wiring: in ``backend/app/cli.py``, ``from backend.evaluation.cli import add_parser`` and ``add_parser(commands)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``eval`` subcommand; its handler is set as ``args.handler``."""
    from backend.evaluation.perturbed import PERTURBATIONS

    cmd = subparsers.add_parser("eval", help="synthetic multi-person evaluation, with and without coherence")
    cmd.add_argument("--estimator", action="append", choices=sorted(PERTURBATIONS),
                     help="estimator to evaluate (repeatable; default: perturbed-gt)")
    cmd.add_argument("--scenes", type=int, default=20, help="number of synthetic scenes")
    cmd.add_argument("--min-people", type=int, default=2)
    cmd.add_argument("--max-people", type=int, default=20)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--body-model", default="open-body",
                     help="open-body (default), anny or smpl-neutral/-male/-female")
    cmd.add_argument("--scene-body-model", help="--fit-init: the body the synthetic people are made of (default: "
                                                "--body-model), to fit one body to people of another")
    cmd.add_argument("--ground-weight", type=float, default=0.0,
                     help="coherence's optional floor prior (0 = off; 20-100 on these scenes)")
    cmd.add_argument("--contact-order-weight", type=float, default=None,
                     help="coherence's contact-order term (feet lower in the image are nearer; 0 = off, default "
                          "as in the pipeline)")
    cmd.add_argument("--fit-init", action="store_true",
                     help="instead: LASOR alone vs mediapipe-fit from each of its starts (neutral, LASOR, LASOR "
                          "root, both; MPJPE, PA-MPJPE, root depth, seconds per person)")
    cmd.add_argument("--world-rotation-deg", type=float, default=None,
                     help="--fit-init: rotation error (std per axis, degrees) of the synthetic 3D world landmarks")
    cmd.add_argument("--world-noise-m", type=float, default=None,
                     help="--fit-init: noise (std, metres) of the synthetic 3D world landmarks")
    cmd.add_argument("--threads", type=int, default=1, help="torch CPU threads (small tensors: 1 is fastest)")
    cmd.set_defaults(handler=run)
    return cmd


def add_people_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``eval-people``: people-finding on labelled real photos (and a clip), against a baseline."""
    from backend.evaluation.photos import DEFAULT_DATA, DEFAULT_LABELS

    cmd = subparsers.add_parser("eval-people", help="people found on hand-labelled photos and clip frames "
                                                    "(covered, bodies on a person / on nobody, seconds)")
    cmd.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help=f"head labels (default: {DEFAULT_LABELS})")
    cmd.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the pictures (default: %(default)s)")
    cmd.add_argument("--only", action="append", metavar="NAME", help="only this picture (repeatable)")
    cmd.add_argument("--collage", action="store_true",
                     help="also a 34-person collage of the group photos (times a large group)")
    cmd.add_argument("--variants", action="store_true",
                     help="also each labelled photo mirrored, at 0.6x and 1.6x, and mirrored as a quality-40 JPEG "
                          "(labels moved exactly; a separate 'variants' total)")
    cmd.add_argument("--clip", type=Path, metavar="VIDEO",
                     help="also reconstruct this whole clip: frames/s and the share of shown body-frames observed")
    cmd.add_argument("--clip-starts", type=int, default=1, metavar="N",
                     help="reconstruct the clip from each of its first N frames (default 1): its observed share "
                          "moves by 1-2 points with the start, so compare means")
    cmd.add_argument("--baseline", metavar="GIT_REF",
                     help="also run the code of this git revision (a temporary worktree), in the same run")
    cmd.set_defaults(handler=run_people)
    return cmd


def run_people(args: argparse.Namespace) -> int:
    from backend.errors import OptionError
    from backend.evaluation import photos

    if args.clip_starts < 1:
        raise OptionError(f"--clip-starts must be 1 or more, got {args.clip_starts}")
    labels = photos.load_labels(args.labels)
    if args.only:
        unknown = sorted(set(args.only) - set(labels) - {photos.COLLAGE})
        if unknown:
            raise OptionError(f"no labels for {', '.join(unknown)}; labelled: {', '.join(labels)}")
        labels = {name: labels[name] for name in args.only if name in labels}
    if args.variants:
        labels = photos.variant_labels(labels, args.data)
    if args.collage:
        labels[photos.COLLAGE] = photos.collage_label(photos.load_labels(args.labels), args.data)
    if args.baseline:
        with photos.worktree(args.baseline) as code:
            baseline = photos.evaluate(labels, args.data, code)
            current = photos.evaluate(labels, args.data)
            print(photos.format_table(current, baseline, args.baseline), flush=True)
            if args.clip:
                print(photos.format_clip(args.clip.name, *photos.evaluate_clip_pairs(args.clip, args.clip_starts,
                                                                                    code)))
        return 0
    current = photos.evaluate(labels, args.data)
    print(photos.format_table(current), flush=True)
    if args.clip:
        print(photos.format_clip(args.clip.name, photos.evaluate_clip_starts(args.clip, args.clip_starts)))
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the metrics table (lengths in mm) and what the estimators are."""
    import torch

    from backend.coherence import CoherenceOptions
    from backend.evaluation.runner import NOTE, evaluate, format_table

    if args.min_people < 1 or args.max_people < args.min_people or args.scenes < 1:
        raise ValueError("need --scenes >= 1 and 1 <= --min-people <= --max-people")
    torch.set_num_threads(max(1, args.threads))
    if getattr(args, "fit_init", False):
        from backend.evaluation.fit_init import NOTE_FIT_INIT, evaluate_fit_init, format_fit_init

        world = _world_noise(args)
        results = evaluate_fit_init(args.scenes, (args.min_people, args.max_people), args.seed,
                                    body_model=args.body_model, world_noise=world,
                                    scene_body_model=args.scene_body_model)
        print(format_fit_init(results))
        print(NOTE_FIT_INIT)
        print(f"{args.scenes} scenes, {args.min_people}-{args.max_people} people each, seed {args.seed}, "
              f"world landmarks: {world[0]:g} deg, {world[1]:g} m", file=sys.stderr)
        return 0
    options = CoherenceOptions(ground_weight=args.ground_weight)
    if args.contact_order_weight is not None:
        options = dataclasses.replace(options, contact_order_weight=args.contact_order_weight)
    results = evaluate(tuple(args.estimator or ["perturbed-gt"]), args.scenes, (args.min_people, args.max_people),
                       args.seed, options=options, body_model=args.body_model)
    print(format_table(results))
    print(NOTE)
    print(f"{args.scenes} scenes, {args.min_people}-{args.max_people} people each, seed {args.seed}", file=sys.stderr)
    return 0


def _world_noise(args: argparse.Namespace) -> tuple[float, float]:
    from backend.evaluation.fit_init import WORLD_NOISE_M, WORLD_ROTATION_DEG

    rotation = WORLD_ROTATION_DEG if args.world_rotation_deg is None else args.world_rotation_deg
    noise = WORLD_NOISE_M if args.world_noise_m is None else args.world_noise_m
    if rotation < 0 or noise < 0:
        raise ValueError("--world-rotation-deg and --world-noise-m must be >= 0")
    return rotation, noise
