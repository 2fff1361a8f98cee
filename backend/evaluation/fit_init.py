"""``python -m backend eval --fit-init``: LASOR alone, the default fit from its neutral start, and the fit from
LASOR's start, on the synthetic scenes (MPJPE, PA-MPJPE, root depth error, seconds per person).

No images: each scene's people are turned into what MediaPipe would report, in its 33-landmark layout
(``observations``), and fed to the estimator's own code (``mediapipe_fit._fit_input`` / ``learned_starts`` /
``fit_people``) and to ``LasorInitialiser``.

* **2D landmarks.** The 25 points the fit models (``fitting.mapping``: limb joints, virtual hips, face and foot
  landmark vertices) of the true bodies, projected, then the scenes' keypoint model (``scenes._keypoints``: 2 px
  noise, outliers, dropout, hidden where another person or a box is in front or outside the image). Each point
  fills the MediaPipe landmarks it is read from (index and pinky both get the hand joint; eye corners get the eye,
  thumbs the hand). A hidden landmark is still reported, as MediaPipe does, at a worse guess (``HIDDEN_NOISE_PX``)
  with visibility 0.1; landmarks outside the image get presence 0.
* **World landmarks.** MediaPipe's 3D landmarks are derived from the truth (the fit's cold start needs them):
  the true points, hip-centred, in the person's crop-camera axes, turned by a random rotation of
  ``WORLD_ROTATION_DEG`` (per axis, std) and with ``WORLD_NOISE_M`` noise per landmark (``--world-rotation-deg``,
  ``--world-noise-m``). The defaults are likely better than MediaPipe's on hard poses, which flatters every start
  that reads them (all fits do, through their energy); LASOR alone does not use them.
* **People** are those a detector could find: at least ``MIN_VISIBLE`` visible points and a visible mask. The
  instance masks are the scenes' (LASOR's silhouette input).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from backend.body.rotations import axis_angle_to_matrix
from backend.detection import PoseDetections
from backend.evaluation import metrics
from backend.evaluation.scenes import SceneConfig, SyntheticScene, _keypoints, make_scene
from backend.fitting.init import ray_rotations, torso_centre
from backend.fitting.mapping import POINTS

HIDDEN_NOISE_PX = 8.0
HIDDEN_VISIBILITY = 0.1
WORLD_NOISE_M = 0.03
WORLD_ROTATION_DEG = 8.0
MIN_VISIBLE = 6
# Landmarks no fitted point reads (eye corners, thumbs): filled from the point they sit next to.
_EXTRA = {1: "left_eye", 3: "left_eye", 4: "right_eye", 6: "right_eye", 21: "left_hand", 22: "right_hand"}
# row name -> mediapipe-fit initialiser (None: LASOR alone; "warm": LASOR's start with the short warm schedule)
STARTS = {"lasor": None, "fit (neutral start)": "neutral", "fit (lasor start)": "lasor",
          "fit (lasor root start)": "lasor-root", "fit (neutral + lasor root, lower energy)": "neutral+lasor-root",
          "fit (lasor start, warm schedule)": "warm"}
ROWS = tuple(STARTS)


def observations(scene: SyntheticScene, points_model, rng: np.random.Generator, config: SceneConfig | None = None,
                 world_noise: tuple[float, float] = (WORLD_ROTATION_DEG, WORLD_NOISE_M),
                 ) -> tuple[PoseDetections, np.ndarray]:
    """MediaPipe-like detections of the scene's findable people and, per detection, its true person index.
    ``world_noise``: (rotation std in degrees per axis, noise std in metres) of the 3D world landmarks."""
    config = config or SceneConfig()
    camera = scene.camera
    with torch.no_grad():
        rot = axis_angle_to_matrix(torch.as_tensor(scene.poses, dtype=torch.float32))
        _, pts = points_model(rot, torch.as_tensor(scene.betas, dtype=torch.float32))
    pts = pts.double().numpy() + scene.transl[:, None]  # (P, 25, 3) camera frame
    true2d = camera.project(pts)
    noisy = _keypoints(rng, torch.as_tensor(pts, dtype=torch.float32), camera, scene.index_map, config)
    seen = np.isfinite(noisy[..., 0])
    inside = (true2d[..., 0] >= 0) & (true2d[..., 0] < camera.width) & (true2d[..., 1] >= 0) & \
        (true2d[..., 1] < camera.height)
    guess = true2d + rng.normal(0.0, HIDDEN_NOISE_PX, true2d.shape)
    kp25 = np.where(seen[..., None], noisy, guess)
    vis25 = np.where(seen, 0.95, np.where(inside, HIDDEN_VISIBILITY, 0.0))
    pres25 = inside.astype(np.float64)
    intrinsics = np.array(camera.intrinsics)
    rays = ray_rotations(torso_centre(true2d, np.ones(true2d.shape[:2])), intrinsics)
    hips = pts[:, [10, 11]].mean(axis=1, keepdims=True)  # MediaPipe's world origin: between the hips
    world25 = np.einsum("bji,bpj->bpi", rays, pts - hips)
    rotation_deg, noise_m = world_noise
    turn = axis_angle_to_matrix(torch.as_tensor(rng.normal(0.0, np.radians(rotation_deg), (len(pts), 3))))
    world25 = np.einsum("bij,bpj->bpi", turn.numpy(), world25) + rng.normal(0.0, noise_m, world25.shape)

    keep = [i for i in range(scene.num_people) if seen[i].sum() >= MIN_VISIBLE and scene.mask(i).any()]
    keep = np.array(keep, dtype=np.int64)
    kp, vis, pres, world = (_to_mediapipe(a[keep]) for a in (kp25, vis25[..., None], pres25[..., None], world25))
    boxes = np.zeros((len(keep), 4))
    for row, i in enumerate(keep):
        visible = kp25[i][seen[i]]
        boxes[row] = [*visible.min(0), *visible.max(0)]
    masks = np.stack([scene.mask(i) for i in keep]) if len(keep) else np.zeros((0, *scene.index_map.shape), bool)
    det = PoseDetections(kp, vis[..., 0], pres[..., 0], world, np.ones(len(keep)), boxes, masks,
                         np.arange(len(keep)))
    return det, keep


def _to_mediapipe(values: np.ndarray) -> np.ndarray:
    """(P, 25, C) per fitted point -> (P, 33, C) MediaPipe landmarks (see the module docstring)."""
    out = np.zeros((values.shape[0], 33, values.shape[2]))
    index = {p.name: k for k, p in enumerate(POINTS)}
    for k, spec in enumerate(POINTS):
        for source in spec.sources:
            out[:, source] = values[:, k]
    for landmark, name in _EXTRA.items():
        out[:, landmark] = values[:, index[name]]
    return out


@dataclass
class _Totals:
    joint: list[float] = field(default_factory=list)
    pa: list[float] = field(default_factory=list)
    depth: list[float] = field(default_factory=list)
    height: list[float] = field(default_factory=list)  # |fitted - true| standing height
    seconds: float = 0.0
    people: int = 0

    def row(self) -> dict[str, float]:
        mean = lambda xs: 1000.0 * float(np.mean(xs)) if xs else float("nan")  # noqa: E731
        return {"MPJPE": mean(self.joint), "PA-MPJPE": mean(self.pa), "root depth err": mean(self.depth),
                "height err": mean(self.height), "people": float(self.people),
                "s/person": self.seconds / max(self.people, 1)}


def evaluate_fit_init(num_scenes: int = 20, people: tuple[int, int] = (2, 20), seed: int = 0,
                      body_model: str = "open-body", config: SceneConfig | None = None, fit_options=None,
                      lasor_weights=None, world_noise: tuple[float, float] = (WORLD_ROTATION_DEG, WORLD_NOISE_M),
                      scene_body_model: str | None = None) -> dict[str, dict[str, float]]:
    """Metrics per row of ``ROWS`` over ``num_scenes`` synthetic scenes (``world_noise``: see ``observations``).

    ``scene_body_model``: the body the scenes' people are made of, when not ``body_model`` (the fitted one);
    both share SMPL's joints, so the joint errors compare directly."""
    from backend.body import load_body_model
    from backend.estimators.mediapipe_fit import _fit_input, fit_hypotheses, learned_starts
    from backend.fitting import BodyPoints, FitOptions, fit_people
    from backend.lasor.inference import LasorInitialiser

    body = load_body_model(body_model)
    points = BodyPoints(body)
    scene_body = load_body_model(scene_body_model) if scene_body_model else body
    scene_points = BodyPoints(scene_body) if scene_body_model else points
    lasor = LasorInitialiser(body, lasor_weights)
    options = fit_options or FitOptions()
    rng = np.random.default_rng(seed)
    totals = {name: _Totals() for name in ROWS}
    warmed_up = False
    for _ in range(num_scenes):
        scene = make_scene(rng, scene_body, int(rng.integers(people[0], people[1] + 1)), config)
        det, gt = observations(scene, scene_points, rng, config, world_noise)
        if len(det) == 0:
            continue
        camera = scene.camera
        intrinsics = camera.intrinsics
        if not warmed_up:  # first-call costs (allocations, lazy imports) out of the timings
            neutral, _ = _fit_input([det.select([0])], [None], points.num_betas)
            lasor(det.select([0]), camera)
            fit_people(points, neutral, intrinsics, replace(options, orient_steps=2, full_steps=2))
            warmed_up = True
        neutral, frame_of = _fit_input([det], [None], points.num_betas)
        for name, mode in STARTS.items():
            start = time.perf_counter()
            if mode is None:
                params, rows = lasor(det, camera), gt
            elif mode == "warm":  # LASOR's start, but the short schedule of a temporal warm start
                result = fit_people(points, replace(learned_starts(lasor, [det], neutral, camera), init_full=None),
                                    intrinsics, options)
                params, rows = (result.poses, result.betas, result.transl), gt
            else:
                kept, _, result, _ = fit_hypotheses(points, [det], neutral, frame_of, camera, options,
                                                    None if mode == "neutral" else lasor, mode)
                params, rows = (result.poses, result.betas, result.transl), gt[kept[0].group]
            _score(body, scene_body, scene, rows, params, time.perf_counter() - start, totals[name])
    return {name: t.row() for name, t in totals.items()}


def _score(body, scene_body, scene: SyntheticScene, gt: np.ndarray, params: tuple[np.ndarray, ...],
           seconds: float, t: _Totals) -> None:
    poses, betas, transl = params
    k = body.num_betas
    full_betas = np.zeros((len(betas), k))
    full_betas[:, : min(k, betas.shape[1])] = betas[:, :k]
    with torch.no_grad():
        joints = body(*(torch.as_tensor(a, dtype=torch.float32) for a in (poses, full_betas, transl))).joints.numpy()
        heights = standing_heights(body, full_betas)
        true_heights = standing_heights(scene_body, scene.betas[np.asarray(gt, dtype=np.int64)])
    t.height.extend(np.abs(heights - true_heights).tolist())
    for row, i in enumerate(gt):
        t.joint.append(metrics.mpjpe(joints[row], scene.joints[i]))
        t.pa.append(metrics.pa_mpjpe(joints[row], scene.joints[i]))
        t.depth.append(abs(float(joints[row, 0, 2] - scene.joints[i, 0, 2])))
    t.seconds += seconds
    t.people += len(gt)


def standing_heights(body, betas: np.ndarray) -> np.ndarray:
    """(B,) metres from the soles to the top of the head of rest-pose bodies of shape ``betas`` (B, K)."""
    if len(betas) == 0:
        return np.zeros(0)
    k = body.num_betas
    padded = np.zeros((len(betas), k))
    padded[:, : min(k, betas.shape[1])] = betas[:, :k]
    with torch.no_grad():
        y = body.shaped_vertices(torch.as_tensor(padded, dtype=torch.float32))[..., 1]
    return (y.amax(-1) - y.amin(-1)).numpy()


def format_fit_init(results: dict[str, dict[str, float]]) -> str:
    """Plain-text table, one row per start; lengths in mm."""
    columns = list(next(iter(results.values())))
    header = ["estimator", *columns]
    rows = [[name, *(_cell(c, v) for c, v in row.items())] for name, row in results.items()]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(w) for cell, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def _cell(column: str, value: float) -> str:
    if value != value:
        return "-"
    if column == "people":
        return f"{value:.0f}"
    return f"{value:.3f}" if column == "s/person" else f"{value:.1f}"


NOTE_FIT_INIT = ("LASOR alone and the mediapipe-fit optimisation from its neutral start, from LASOR's start, from\n"
                 "the neutral start turned and moved to LASOR's orientation and depth (root start), and from both\n"
                 "neutral and root starts keeping each person's lower-energy fit, on MediaPipe-like landmarks\n"
                 "synthesised from the scenes (2D: the scenes' noise/occlusion model; 3D world landmarks: truth +\n"
                 "rotation and noise). MPJPE is pelvis-aligned; the fit rows' s/person include LASOR's inference\n"
                 "where it starts them.")
