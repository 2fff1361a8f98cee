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

from backend.camera import Camera
from backend.evaluation.poses import sample_pose
from backend.render import rasterize

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
    cut_at: int | None = None  # a hard cut to another background at this frame (the camera path restarts)


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
    camera = Camera.from_fov(config.width, config.height, config.fov_degrees)
    pitch = math.radians(config.pitch_deg)
    world_from_reference = _LEVEL_TO_WORLD @ Rotation.from_euler("x", -pitch).as_matrix()
    centre = np.array([0.0, 0.0, config.camera_height])
    walkers = _walkers(rng, body, config, world_from_reference, centre, camera)
    frames, people = [], []
    for index in range(config.frames):
        after_cut = config.cut_at is not None and index >= config.cut_at
        photo = second_background if after_cut and second_background is not None else background
        focal = camera.fx * zoom[index]
        frame_camera = Camera(camera.width, camera.height, focal, focal, camera.cx, camera.cy)
        image = _background_view(photo, camera, frame_camera, rotations[index])
        truth = [w.at(index / config.fps, rotations[index] @ world_from_reference.T, centre, frame_camera)
                 for w in walkers]
        frames.append(_draw_people(image, truth, body, frame_camera))
        people.append(truth)
    if config.cut_at is not None:  # each segment's path is relative to its first frame
        cut = config.cut_at
        rotations[cut:] = rotations[cut:] @ rotations[cut].T
        zoom[cut:] = zoom[cut:] / zoom[cut]
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


def load_photo(path: str | Path) -> np.ndarray:
    """An RGB photo for the background."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read the background photo {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


__all__ = ["CameraClip", "ClipConfig", "camera_path", "load_photo", "make_camera_clip"]
