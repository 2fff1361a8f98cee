"""SMPL files: the official pkl layout without chumpy, npz, refusal of hostile or broken files, installation,
and agreement of BodyModel with smplx.SMPL on a random SMPL-layout model (FK, LBS and pose blend shapes)."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from backend.body import BodyModelError, available_body_models, load_body_model
from backend.body.landmarks import SMPL_VERTEX_LANDMARKS
from backend.body.model import BodyModel
from backend.body.rotations import axis_angle_to_matrix
from backend.body.skeleton import LANDMARK_NAMES, PARENTS
from backend.body.smpl_file import detect_gender, install_smpl, load_smpl_file

NUM_VERTICES = 6890  # smplx's vertex joint selector indexes SMPL's real topology


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installed (random) SMPL models must not leak into other tests' shared cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TROUPE_CACHE_DIR", str(root))
    return root


def random_smpl(seed: int = 0, num_betas: int = 10) -> dict[str, np.ndarray]:
    """Random arrays in the official layout (dense J_regressor; the pkl writer makes it sparse)."""
    rng = np.random.default_rng(seed)
    v = NUM_VERTICES
    regressor = np.zeros((24, v))
    for j in range(24):
        ids = rng.choice(v, 12, replace=False)
        regressor[j, ids] = rng.dirichlet(np.ones(12))
    weights = np.zeros((v, 24))
    ids = np.argsort(rng.random((v, 24)), axis=1)[:, :4]  # four random joints per vertex
    np.put_along_axis(weights, ids, rng.dirichlet(np.ones(4), size=v), axis=1)
    kintree = np.stack([np.array(PARENTS), np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the official files (uint32 -1)
    return {
        "v_template": rng.normal(scale=0.4, size=(v, 3)),
        "shapedirs": rng.normal(scale=0.03, size=(v, 3, num_betas)),
        "posedirs": rng.normal(scale=0.02, size=(v, 3, 207)),
        "J_regressor": regressor,
        "weights": weights,
        "f": rng.integers(0, v, size=(13776, 3)).astype(np.uint32),
        "kintree_table": kintree.astype(np.uint32),
    }


def _fake_chumpy(monkeypatch: pytest.MonkeyPatch) -> type:
    """A class that pickles as ``chumpy.ch.Ch`` with state {'x': array}, like the real chumpy objects."""
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x

        def __reduce__(self) -> tuple:
            return (Ch, (), {"x": self.x})

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    package.ch = module
    monkeypatch.setitem(sys.modules, "chumpy", package)
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return Ch


def write_official_pkl(path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the layout of basicModel_*_lbs_10_207_0_v1.0.0.pkl, then make chumpy unimportable."""
    ch = _fake_chumpy(monkeypatch)
    content = {
        "v_template": ch(arrays["v_template"]),
        "shapedirs": ch(arrays["shapedirs"]),
        "posedirs": arrays["posedirs"],
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]),
        "J_regressor_prior": scipy.sparse.csc_matrix(arrays["J_regressor"]),
        "weights": arrays["weights"],
        "weights_prior": arrays["weights"],
        "f": arrays["f"],
        "kintree_table": arrays["kintree_table"],
        "J": arrays["J_regressor"] @ arrays["v_template"],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "vert_sym_idxs": np.arange(NUM_VERTICES),
        "pose_training_info": {"rot_rep": "lrotmin", "num_poses": 1786},
    }
    path.write_bytes(pickle.dumps(content, protocol=2))
    monkeypatch.setitem(sys.modules, "chumpy", None)  # `import chumpy` now fails
    monkeypatch.setitem(sys.modules, "chumpy.ch", None)


def _assert_same_model(loaded: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        np.testing.assert_array_equal(loaded[key], arrays[key])
    np.testing.assert_array_equal(loaded["f"], arrays["f"].astype(np.int64))
    assert loaded["kintree_table"][0].tolist() == list(PARENTS)


def test_official_pkl_loads_without_chumpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = random_smpl()
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    write_official_pkl(path, arrays, monkeypatch)
    with pytest.raises(ImportError):
        __import__("chumpy")
    loaded = load_smpl_file(path)
    _assert_same_model(loaded, arrays)
    assert loaded["J_regressor"].shape == (24, NUM_VERTICES)  # dense


def test_npz_loads(tmp_path: Path) -> None:
    arrays = random_smpl(seed=1)
    path = tmp_path / "SMPL_MALE.npz"
    np.savez(path, **arrays)
    _assert_same_model(load_smpl_file(path), arrays)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickle_that_runs_code_is_refused(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros(3), "evil": [_RunsCode(marker)]}, protocol=protocol))
    with pytest.raises(BodyModelError) as info:
        load_smpl_file(path)
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message and "system" in message and "\n" not in message


def test_eval_and_unknown_classes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")  # builtins.eval('1+1') in protocol 0
    with pytest.raises(BodyModelError, match=r"refused global builtins\.eval"):
        load_smpl_file(path)


@pytest.mark.parametrize(
    "content,reason",
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"this is not a pickle at all", "not a readable SMPL file"),
        ("truncated", "truncated"),
        ("truncated-npz", "not a readable npz"),
        ("list", "not an SMPL file"),
        ("missing-keys", "missing"),
        ("wrong-shape", "weights has shape"),
        ("wrong-tree", "kinematic tree"),
    ],
)
def test_broken_files_give_one_line_errors(tmp_path: Path, content: object, reason: str) -> None:
    arrays = random_smpl(seed=2)
    path = tmp_path / ("model.npz" if content == "truncated-npz" else "model.pkl")
    if content == "truncated":
        path.write_bytes(pickle.dumps(arrays, protocol=2)[:5000])
    elif content == "truncated-npz":
        np.savez(path, **arrays)
        path.write_bytes(path.read_bytes()[:4000])
    elif content == "list":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif content == "missing-keys":
        path.write_bytes(pickle.dumps({"v_template": arrays["v_template"]}))
    elif content == "wrong-shape":
        path.write_bytes(pickle.dumps({**arrays, "weights": arrays["weights"][:, :23]}))
    elif content == "wrong-tree":
        tree = arrays["kintree_table"].copy()
        tree[0, 5] = 3
        path.write_bytes(pickle.dumps({**arrays, "kintree_table": tree}))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(BodyModelError) as info:
        load_smpl_file(path)
    message = str(info.value)
    assert reason in message and str(path) in message and "\n" not in message


@pytest.mark.parametrize(
    "name,gender",
    [
        ("basicModel_neutral_lbs_10_207_0_v1.0.0.pkl", "neutral"),
        ("basicModel_f_lbs_10_207_0_v1.0.0.pkl", "female"),
        ("basicmodel_m_lbs_10_207_0_v1.1.0.pkl", "male"),
        ("SMPL_FEMALE.pkl", "female"),
        ("SMPL_MALE.npz", "male"),
        ("smpl_model.pkl", None),
    ],
)
def test_gender_from_file_name(name: str, gender: str | None) -> None:
    assert detect_gender(name) == gender


def test_install_then_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_cache: Path) -> None:
    assert available_body_models()["smpl-neutral"].startswith("not installed")
    with pytest.raises(BodyModelError, match="not installed"):
        load_body_model("smpl-neutral")
    arrays = random_smpl(seed=3)
    source = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    write_official_pkl(source, arrays, monkeypatch)
    installed = install_smpl(source)
    assert installed == private_cache / "body" / "smpl-neutral.npz"
    assert available_body_models()["smpl-neutral"] == str(installed)
    _assert_same_model(load_smpl_file(installed), arrays)
    unnamed = tmp_path / "model.pkl"
    unnamed.write_bytes(source.read_bytes())
    with pytest.raises(BodyModelError, match="pass the gender"):
        install_smpl(unnamed)
    assert install_smpl(unnamed, gender="female") == private_cache / "body" / "smpl-female.npz"
    model = load_body_model("smpl-neutral")
    assert model.name == "smpl-neutral" and model.num_betas == 10 and model.posedirs is not None
    assert set(model.landmark_vertices) == set(LANDMARK_NAMES)
    assert all(model.landmark_vertices[k] == v for k, v in SMPL_VERTEX_LANDMARKS.items())
    out = model(torch.zeros(2, 24, 3), torch.randn(2, 4))
    torch.testing.assert_close(out.joints, out.rest_joints)  # zero pose reproduces J(beta)
    with pytest.raises(BodyModelError, match="unknown body model"):
        load_body_model("smpl-kid")


def test_matches_smplx(tmp_path: Path) -> None:
    smplx = pytest.importorskip("smplx")
    arrays = random_smpl(seed=4)
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, **arrays)
    data = load_smpl_file(path)
    reference = smplx.SMPL(str(path), data_struct=smplx.utils.Struct(**data), num_betas=10, dtype=torch.float64)
    ours = BodyModel.from_arrays("smpl-neutral", data, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    poses = 0.6 * torch.randn(3, 24, 3, generator=gen, dtype=torch.float64)
    betas = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    transl = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    expected = reference(betas=betas, global_orient=poses[:, 0], body_pose=poses[:, 1:].reshape(3, 69),
                         transl=transl)
    for out in (ours(poses, betas, transl), ours(axis_angle_to_matrix(poses), betas, transl)):
        torch.testing.assert_close(out.vertices, expected.vertices, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.joints, expected.joints[:, :24], atol=1e-5, rtol=0)
    ours32 = BodyModel.from_arrays("smpl-neutral", data)
    out32 = ours32(poses.float(), betas.float(), transl.float())
    torch.testing.assert_close(out32.vertices, expected.vertices.float(), atol=1e-5, rtol=0)
    # Root rotation with pose blend shapes present is still rigid about the pelvis.
    root_only = torch.zeros(1, 24, 3, dtype=torch.float64)
    root_only[0, 0] = torch.tensor([0.4, 1.0, -0.3])
    rotated = ours(root_only).vertices[0]
    pelvis = ours.rest_joints(torch.zeros(1, 10, dtype=torch.float64))[0, 0]
    rmat = axis_angle_to_matrix(root_only[0, 0])
    torch.testing.assert_close(rotated, (ours.v_template - pelvis) @ rmat.T + pelvis)
