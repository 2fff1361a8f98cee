"""``python -m backend batch INPUTS... -o OUT_DIR`` and ``batch --status OUT_DIR``: the command line's side of
a batch. The reconstruction flags are ``reconstruct``'s own (``backend.app.reconstruct_args``); everything is
checked, and the inputs expanded, before Ray is started."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from backend.app.reconstruct_args import add_reconstruct_options, checked_option_values, estimator_options_text
from backend.batch.chunks import check_chunking
from backend.errors import BatchError, OptionError


def add_parser(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "batch", help="many inputs -> one result each, on Ray (this machine, or a cluster with --address)",
        description="Reconstruct every input (image, video, image folder; a folder of them; a .txt file listing "
                    "paths) into OUT_DIR/<name>.npz with reconstruct's options. Rerunning skips results complete "
                    "for the same options. Needs Ray: pip install 'troupe[batch]'.",
        epilog=estimator_options_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("inputs", nargs="*", type=Path, help="files, folders, or .txt files listing paths")
    cmd.add_argument("-o", "--output", type=Path, help="folder for the results and the batch manifest")
    cmd.add_argument("--status", type=Path, metavar="OUT_DIR", help="print the batch manifest in OUT_DIR and exit")
    add_reconstruct_options(cmd)
    ray = cmd.add_argument_group("Ray")
    ray.add_argument("--address", help="an existing Ray cluster (host:port or auto); default: a local cluster "
                                       "started here")
    ray.add_argument("--num-cpus", type=int, help="local cluster: CPUs to use (default: all)")
    ray.add_argument("--num-gpus", type=int, help="local cluster: GPUs to use (default: all)")
    ray.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs each clip's task asks for (default: 1)")
    ray.add_argument("--gpu-fraction", type=float, default=0.25,
                     help="share of a GPU each task asks for where there are GPUs (default: 0.25: four clips a GPU)")
    ray.add_argument("--max-retries", type=int, default=3, help="reruns of a task whose worker died (default: 3)")
    ray.add_argument("--chunk-frames", type=int, default=900,
                     help="split videos longer than this into chunks on several workers (0: never; default: 900)")
    ray.add_argument("--chunk-overlap", type=int, default=16,
                     help="frames neighbouring chunks share, where people are matched (default: 16)")
    cmd.add_argument("--redo", action="store_true", help="redo every clip, even those already complete")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 when every clip has its result, 1 when some failed (each named in the table)."""
    if args.status is not None:
        return _print_status(args.status)
    settings, values = _checked(args)
    from backend.batch.cluster import check_ray_installed
    from backend.batch.inputs import expand_inputs
    from backend.batch.manifest import Manifest
    from backend.batch.progress import summary_table
    from backend.batch.runner import run_batch

    clips = expand_inputs(args.inputs)
    check_ray_installed()
    if args.address is None and importlib.util.find_spec("torch") is None:
        from backend.app.doctor import INSTALL_HINT
        from backend.errors import EstimatorError

        raise EstimatorError(f"torch is not installed in this environment: {INSTALL_HINT}")
    report = run_batch(clips, args.output, values, settings)
    print(summary_table(Manifest.load(args.output), report.names), file=sys.stderr)
    rate = f", {report.frames / report.seconds:.2f} frames/s" if report.seconds > 0 and report.frames else ""
    print(f"batch: {report.done} done, {report.skipped} already complete, {report.failed} failed in "
          f"{report.seconds:.1f} s{rate}; manifest {args.output / 'troupe-batch.json'}", file=sys.stderr)
    return 1 if report.failed else 0


def _checked(args: argparse.Namespace):
    from backend.batch.runner import BatchSettings

    if not args.inputs or args.output is None:
        raise OptionError("batch needs INPUTS and -o OUT_DIR (or --status OUT_DIR)")
    values = checked_option_values(args)
    if args.output.exists() and not args.output.is_dir():
        raise OptionError(f"-o must be a folder (results go in it), got the file {args.output}")
    if not 0 < args.gpu_fraction <= 1:
        raise OptionError(f"--gpu-fraction must be in (0, 1], got {args.gpu_fraction}")
    if args.cpus_per_task <= 0 or args.max_retries < 0:
        raise OptionError("--cpus-per-task must be positive and --max-retries at least 0")
    check_chunking(args.chunk_frames, args.chunk_overlap)
    settings = BatchSettings(args.address, args.num_cpus, args.num_gpus, args.cpus_per_task, args.gpu_fraction,
                             args.max_retries, args.chunk_frames, args.chunk_overlap, args.redo, args.quiet)
    return settings, values


def _print_status(folder: Path) -> int:
    from backend.batch.manifest import MANIFEST_NAME, Manifest
    from backend.batch.progress import print_status

    if not (folder / MANIFEST_NAME).is_file():
        raise BatchError(f"no batch in {folder} (no {MANIFEST_NAME} there)")
    print_status(Manifest.load(folder), sys.stdout)
    return 0


__all__ = ["add_parser", "run"]
