"""A synthetic clip with a known camera path: pan, tilt and zoom over a textured background, people walking.

The camera turns and zooms about a fixed centre at ``camera_height`` metres above the floor of a gravity-up world
(z up, floor z = 0); its reference orientation looks along +y, pitched down by ``pitch_deg``. The background is
a photograph pinned to the reference camera's image plane: a camera turning about its centre sees it through
the homography K_t R_t K_ref^-1, exactly as it would see a distant scene. People (the built-in body, rendered by
``backend.render``) stand or walk on the floor in front of it, so their pixels move against the background and
must be kept out of the camera's measurement. Everything is known: the per-frame rotation and focal length, and
each person's world and camera-frame parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from backend.evaluation.poses import sample_pose
from backend.geometry.camera import Camera
from backend.geometry.render import rasterize
from backend.runtime.torch_threads import single_thread

_LEVEL_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # level OpenCV camera -> z-up


@dataclass(frozen=True)
class ClipConfig:
    frames: int = 300
    width: int = 640
    height: int = 360
    fov_degrees: float = 50.0  # of the first frame, across the width
    pan_deg: float = 30.0  # total yaw swept (a smooth back-and-forth, half of it each way)
    tilt_deg: float = 6.0
    zoom: float = 1.4  # largest focal length / the first frame's
    pitch_deg: float = 12.0  # the reference camera looks down by this much
    camera_height: float = 2.5
    people: int = 3
    walk_speed: float = 1.2  # m/s of the walkers (the first person stands still)
    fps: float = 30.0
    static: bool = False  # a tripod shot: no pan, tilt or zoom
    cut_at: int | None = None  # a hard cut to another background at this frame (the camera path starts again)


@dataclass
class CameraClip:
    frames: list[np.ndarray]  # RGB uint8
    camera: Camera  # the first frame's intrinsics
    rotations: np.ndarray  # (F, 3, 3): reference camera -> frame camera (per segment: identity at its start)
    zoom: np.ndarray  # (F,) focal / the segment's first frame's
    world_from_reference: np.ndarray  # (3, 3)
    camera_position: np.ndarray  # (3,) in the world
    people: list[dict] = field(default_factory=list)  # per frame: list of dicts (camera-frame and world truth)

    def boxes(self, frame: int) -> list[np.ndarray]:
        return [p["box"] for p in self.people[frame]]


def camera_path(config: ClipConfig) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (F, 3, 3) reference -> frame and zoom (F,): smooth pan and tilt sweeps and a zoom in and out."""
    t = np.linspace(0.0, 1.0, config.frames)
    if config.static:
        return np.tile(np.eye(3), (config.frames, 1, 1)), np.ones(config.frames)
    yaw = 0.5 * config.pan_deg * np.sin(2 * math.pi * t)
    pitch = 0.5 * config.tilt_deg * (1 - np.cos(2 * math.pi * t))
    zoom = 1.0 + (config.zoom - 1.0) * 0.5 * (1 - np.cos(2 * math.pi * t))
    # camera turning right by yaw (about its y axis, down in OpenCV axes), then down by pitch (about x)
    turn = Rotation.from_euler("yx", np.column_stack([yaw, -pitch]), degrees=True).as_matrix()
    return np.swapaxes(turn, 1, 2), zoom  # points seen from a turned camera: R^T


def make_camera_clip(background: np.ndarray, body: torch.nn.Module, config: ClipConfig | None = None,
                     seed: int = 0, second_background: np.ndarray | None = None) -> CameraClip:
    """Render the clip (``background``: RGB photo; ``second_background`` after ``config.cut_at``)."""
    config = config or ClipConfig()
    rng = np.random.default_rng(seed)
    rotations, zoom = camera_path(config)
    if config.cut_at is not None:  # the second shot starts the same path again, from the first frame's lens
        rotations[config.cut_at:] = rotations[:config.frames - config.cut_at].copy()
        zoom[config.cut_at:] = zoom[:config.frames - config.cut_at].copy()
    camera = Camera.from_fov(config.width, config.height, config.fov_degrees)
    pitch = math.radians(config.pitch_deg)
    world_from_reference = _LEVEL_TO_WORLD @ Rotation.from_euler("x", -pitch).as_matrix()
    centre = np.array([0.0, 0.0, config.camera_height])
    walkers = _walkers(rng, body, config, world_from_reference, centre, camera)
    frames, people = [], []
    with single_thread():  # small rasterizations: threads only contend (10x slower on 2 loaded cores)
        for index in range(config.frames):
            after_cut = config.cut_at is not None and index >= config.cut_at
            photo = second_background if after_cut and second_background is not None else background
            focal = camera.fx * zoom[index]
            frame_camera = Camera(camera.width, camera.height, focal, focal, camera.cx, camera.cy)
            truth = [w.at(index / config.fps, rotations[index] @ world_from_reference.T, centre, frame_camera)
                     for w in walkers]
            image = _background_view(photo, camera, frame_camera, rotations[index])
            frames.append(_draw_people(image, truth, body, frame_camera))
            people.append(truth)
    return CameraClip(frames, camera, rotations, zoom, world_from_reference, centre, people)


def _background_view(photo: np.ndarray, reference: Camera, frame: Camera, turn: np.ndarray) -> np.ndarray:
    """The photo pinned to the reference image plane (scaled to cover twice its width), seen by the frame camera."""
    scale = 2.0 * reference.width / photo.shape[1]
    photo_k = np.array([[scale, 0, reference.cx - scale * photo.shape[1] / 2],
                        [0, scale, reference.cy - scale * photo.shape[0] / 2], [0, 0, 1.0]])
    homography = frame.matrix @ turn @ np.linalg.inv(reference.matrix) @ photo_k
    return cv2.warpPerspective(photo, homography, (frame.width, frame.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)


@dataclass
class _Walker:
    pose: np.ndarray  # (24, 3), joint 0 in the world
    betas: np.ndarray
    start: np.ndarray  # world translation at t = 0 (FK + transl stands on the floor)
    velocity: np.ndarray  # m/s on the floor
    rest_pelvis: np.ndarray
    colour: np.ndarray

    def at(self, seconds: float, world_to_camera: np.ndarray, centre: np.ndarray, camera: Camera) -> dict:
        world_transl = self.start + self.velocity * seconds
        orient = world_to_camera @ Rotation.from_rotvec(self.pose[0]).as_matrix()
        pose = self.pose.copy()
        pose[0] = Rotation.from_matrix(orient).as_rotvec()
        transl = world_to_camera @ (world_transl + self.rest_pelvis - centre) - self.rest_pelvis
        return {"pose": pose, "betas": self.betas, "transl": transl, "world_transl": world_transl,
                "world_orient": self.pose[0].copy(), "colour": self.colour, "camera": camera}


def _walkers(rng, body, config, world_from_reference, centre, camera) -> list[_Walker]:
    walkers = []
    for index in range(config.people):
        pose = sample_pose(rng, yaw=rng.uniform(-math.pi, math.pi))
        pose[0] = Rotation.from_matrix(_LEVEL_TO_WORLD @ Rotation.from_rotvec(pose[0]).as_matrix()).as_rotvec()
        betas = rng.normal(0.0, 0.5, body.num_betas)
        with torch.no_grad():
            out = body(torch.tensor(pose[None], dtype=torch.float32), torch.tensor(betas[None], dtype=torch.float32))
        lowest = float(out.vertices[0, :, 2].min())
        depth = 6.0 + 2.5 * index
        across = (index - (config.people - 1) / 2) * 2.0
        start = np.array([across, depth, -lowest])
        heading = rng.uniform(-math.pi, math.pi)
        speed = 0.0 if index == 0 else config.walk_speed
        velocity = speed * np.array([math.cos(heading), math.sin(heading), 0.0])
        colour = np.array([200, 120 + 40 * index, 90], np.uint8)
        walkers.append(_Walker(pose, betas, start, velocity, out.joints[0, 0].numpy().astype(np.float64), colour))
    return walkers


@torch.no_grad()
def _draw_people(image: np.ndarray, people: list[dict], body, camera: Camera) -> np.ndarray:
    """People shaded by depth over the background; each person's true 2D joints and box go into its dict."""
    poses = torch.tensor(np.stack([p["pose"] for p in people]), dtype=torch.float32)
    betas = torch.tensor(np.stack([p["betas"] for p in people]), dtype=torch.float32)
    transl = torch.tensor(np.stack([p["transl"] for p in people]), dtype=torch.float32)
    out = body(poses, betas, transl)
    fragments = rasterize(out.vertices, body.faces, camera)
    depth = fragments.depth  # (P, H, W), inf where empty
    nearest = depth.min(0)
    image = image.copy()
    for index, person in enumerate(people):
        joints2d = camera.project(out.joints[index].numpy().astype(np.float64))
        person["joints2d"] = joints2d
        person["box"] = np.concatenate([joints2d.min(0) - 15, joints2d.max(0) + 15])
        person["joints"] = out.joints[index].numpy().astype(np.float64)
        mine = (nearest.indices == index) & torch.isfinite(nearest.values)
        shade = (1.2 - 0.04 * nearest.values[mine]).clamp(0.4, 1.0).numpy()[:, None]
        image[mine.numpy()] = (person["colour"][None] * shade).astype(np.uint8)
    return image


@torch.no_grad()
def clip_result(clip: CameraClip, body, path, depth_noise: float = 0.0, seed: int = 0,
                fitted: bool = False) -> dict[str, np.ndarray]:
    """The result arrays an estimator with the first frame's fixed lens would give for the clip's true people
    (each row's translation solved through that lens onto the true 2D joints, its distance then scaled by one
    factor 1 + N(0, ``depth_noise``) per person: monocular depth is off by a bias per person), with the world
    keys ``backend.world`` derives under ``path`` (a CameraPath). Without ``fitted`` the estimator is a regressor
    that gets the pose right whatever the lens (its ``joints2d``, the first lens's projection, then misses the
    picture under a zoom); with it, a fit that also bends the pose to meet the picture's joints through that lens
    (``backend.world.refit``), as the default estimator does."""
    from backend.geometry.camera import solve_translation
    from backend.world import add_world_frame
    from backend.world.refit import refit_through_lens

    rng = np.random.default_rng(seed)
    rows = [(frame, person, truth) for frame, people in enumerate(clip.people) for person, truth in enumerate(people)]
    poses = np.stack([truth["pose"] for _, _, truth in rows])
    betas_track = np.stack([truth["betas"] for truth in clip.people[0]])
    track = np.array([person for _, person, _ in rows])
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    relative = body(as_t(poses), as_t(betas_track[track])).joints.double()
    pixels = torch.as_tensor(np.stack([truth["joints2d"] for _, _, truth in rows]))
    transl = solve_translation(relative, pixels, clip.camera.intrinsics_tensor(dtype=torch.float64)).numpy()
    rest = body.rest_joints(as_t(betas_track))
    if fitted:
        lens = np.tile(np.array(clip.camera.intrinsics), (len(rows), 1))
        poses, transl = refit_through_lens(poses, rest.numpy()[track], body.parents.numpy(), pixels.numpy(), lens)
        relative = body(as_t(poses), as_t(betas_track[track])).joints.double()
    bias = 1.0 + rng.normal(0.0, depth_noise, (len(betas_track), 1))
    transl = (transl + relative[:, 0].numpy()) * bias[track] - relative[:, 0].numpy()
    arrays = {
        "format": np.str_("troupe-result/1"), "fps": np.float64(30.0),
        "image_size": np.array([clip.camera.width, clip.camera.height]),
        "focal_length": np.array([clip.camera.fx, clip.camera.fy]),
        "principal_point": np.array([clip.camera.cx, clip.camera.cy]),
        "num_frames": np.int64(len(clip.frames)), "body_model": np.str_(body.name), "estimator": np.str_("truth"),
        "track_id": np.arange(len(betas_track)), "betas": betas_track.astype(np.float32),
        "rest_joints": rest.numpy().astype(np.float32),
        "rest_vertices": body.shaped_vertices(as_t(betas_track)).numpy().astype(np.float32),
        "faces": body.faces.numpy().astype(np.int64), "joint_names": np.array(body.joint_names),
        "parents": body.parents.numpy().astype(np.int64),
        "skin_weights": body.skin_weights.numpy().astype(np.float32),
        "frame_indices": np.arange(len(clip.frames)),
        "row_track": track, "row_frame": np.array([frame for frame, _, _ in rows]),
        "poses": poses.astype(np.float32), "transl": transl.astype(np.float32),
        "joints2d": clip.camera.project(relative.numpy() + transl[:, None]).astype(np.float32),
        "confidence": np.ones(len(rows), np.float32), "observed": np.ones(len(rows), bool),
    }
    arrays.update(add_world_frame(arrays, path, body, refit=fitted))
    return arrays


def true_world_pelvis(clip: CameraClip, body) -> np.ndarray:
    """(rows, 3): each row's true pelvis in the world, rows in :func:`clip_result`'s order."""
    betas = np.stack([truth["betas"] for truth in clip.people[0]])
    with torch.no_grad():
        pelvis = body.rest_joints(torch.as_tensor(betas, dtype=torch.float32))[:, 0].numpy()
    return np.array([truth["world_transl"] + pelvis[person] for people in clip.people
                     for person, truth in enumerate(people)])


def load_photo(path: str | Path) -> np.ndarray:
    """An RGB photo for the background."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read the background photo {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


__all__ = ["CameraClip", "ClipConfig", "camera_path", "clip_result", "load_photo", "make_camera_clip",
           "true_world_pelvis"]
