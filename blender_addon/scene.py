"""Building the Blender scene from a result file; usable from scripts as ``build_scene(path)``.

One collection per reconstruction holds the camera (intrinsics from the file, the footage as background) and
per person an armature (SMPL bone names, rest pose from that person's rest joints, quaternion keys for all 24
bones plus the root location, written in bulk) with a skinned body mesh. See ``rig.py`` for the frames.
Result frame ``f`` lands on scene frame ``f + FRAME_OFFSET``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import bpy
import numpy as np

from . import anny_rig, keyframes, result_data, rig
from .result_data import Track

FRAME_OFFSET = 1
SENSOR_WIDTH_MM = 36.0
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr", ".webp"}
PALETTE = [
    (0.90, 0.40, 0.30), (0.30, 0.60, 0.90), (0.40, 0.80, 0.40), (0.95, 0.75, 0.25), (0.70, 0.45, 0.85),
    (0.30, 0.80, 0.80), (0.90, 0.50, 0.70), (0.60, 0.60, 0.60), (0.55, 0.75, 0.30), (0.85, 0.60, 0.40),
]  # fmt: skip

# Custom properties the exporters and tools read back from a built armature.
PROP_RESULT = "troupe_result"
PROP_TRACK = "troupe_track_id"
PROP_BETAS = "troupe_betas"
PROP_BODY = "troupe_body_model"
PROP_RIG = "troupe_rig"  # "anny" on an armature of Anny's own bones (absent: the 24-joint SMPL armature)
PROP_FPS = "troupe_fps"


class _Created:
    """Data-blocks made so far, removed again if the build fails so the scene is left as it was."""

    def __init__(self) -> None:
        self.ids: list[bpy.types.ID] = []

    def add(self, block: bpy.types.ID) -> bpy.types.ID:
        self.ids.append(block)
        return block

    def remove_all(self) -> None:
        for block in reversed(self.ids):
            try:
                pool = getattr(bpy.data, _DATA_COLLECTIONS.get(type(block).__name__, ""), None)
                if pool is not None and pool.get(block.name) == block:
                    pool.remove(block)
            except ReferenceError:  # already removed along with its owner
                pass


_DATA_COLLECTIONS = {
    "Object": "objects", "Armature": "armatures", "Mesh": "meshes", "Camera": "cameras", "Material": "materials",
    "Collection": "collections", "Action": "actions", "Image": "images", "MovieClip": "movieclips",
}  # fmt: skip


def build_scene(
    result_path: str | Path,
    *,
    with_mesh: bool = True,
    with_background: bool = True,
    with_footage_plane: bool = False,
    warnings: list[str] | None = None,
    anny_rig: bool = False,
) -> bpy.types.Collection:
    """Import ``result_path`` into the current scene and return the new collection.

    ``with_background`` shows the footage behind the camera view (viewport only); ``with_footage_plane`` also puts
    it on a render-only plane filling the camera's view behind everybody, so renders show people over footage.
    ``anny_rig``: people of an Anny result get Anny's own rig (``anny_rig``) instead of the 24-joint armature.
    Raises :class:`result_data.ResultError` for an unusable file; on any failure nothing is left behind.
    """
    path = Path(result_path)
    data = result_data.load_result(path)
    result_data.check_skeleton(data)
    warnings = warnings if warnings is not None else []
    scene = bpy.context.scene
    created = _Created()
    try:
        with _ObjectMode():
            collection = _new_collection(scene, path, created)
            camera = _camera(data, collection, created)
            _animate_camera(camera, data, created)
            if with_background:
                _background(camera, data, created, warnings)
            if with_footage_plane:
                _footage_plane(camera, data, collection, created, warnings)
            for number, track in enumerate(result_data.tracks(data)):
                build_person(track, data, collection, created, color=PALETTE[number % len(PALETTE)],
                             with_mesh=with_mesh, anny_rig=anny_rig)
    except BaseException:
        created.remove_all()
        raise
    _scene_settings(scene, data, camera)
    collection[PROP_RESULT] = str(path)
    return collection


def _new_collection(scene: bpy.types.Scene, path: Path, created: _Created) -> bpy.types.Collection:
    collection = created.add(bpy.data.collections.new(f"Troupe {path.stem}"))
    scene.collection.children.link(collection)
    return collection


class _ObjectMode:
    """Edit bones need edit mode; make sure we start from and return to object mode with the old active object."""

    def __enter__(self) -> None:
        self.view_layer = bpy.context.view_layer
        self.active = self.view_layer.objects.active
        if bpy.context.mode != "OBJECT" and self.active is not None:
            bpy.ops.object.mode_set(mode="OBJECT")

    def __exit__(self, *exc: object) -> None:
        if self.active is not None and self.active.name in self.view_layer.objects:
            self.view_layer.objects.active = self.active


# --- camera -------------------------------------------------------------------------------------------------


def camera_parameters(data: dict[str, np.ndarray]) -> dict[str, float]:
    """Blender camera settings reproducing the pinhole (fx, fy, cx, cy) for an image of W x H pixels.

    Horizontal sensor fit: the lens follows from fx; shifts are in units of the image width; fx != fy becomes a
    pixel aspect ratio (Blender scales the vertical extent by ``aspect_y / aspect_x``).
    """
    width, height = (float(v) for v in data["image_size"])
    fx, fy = (float(v) for v in data["focal_length"])
    cx, cy = (float(v) for v in data["principal_point"])
    ycor = fx / fy
    return {
        "lens": fx * SENSOR_WIDTH_MM / width,
        "shift_x": (width / 2.0 - cx) / width,
        "shift_y": (cy - height / 2.0) * ycor / width,
        "pixel_aspect_x": max(1.0, 1.0 / ycor),
        "pixel_aspect_y": max(1.0, ycor),
    }


def _camera(data: dict[str, np.ndarray], collection: bpy.types.Collection, created: _Created) -> bpy.types.Object:
    params = camera_parameters(data)
    cam_data = created.add(bpy.data.cameras.new("Troupe Camera"))
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.sensor_width = SENSOR_WIDTH_MM
    cam_data.lens = params["lens"]
    cam_data.shift_x = params["shift_x"]
    cam_data.shift_y = params["shift_y"]
    cam_data.clip_start = 0.05
    cam_data.clip_end = 1000.0
    camera = created.add(bpy.data.objects.new("Troupe Camera", cam_data))
    camera.rotation_euler = (math.pi / 2.0, 0.0, 0.0)  # looks along +Y with Z up: the camera frame mapping
    collection.objects.link(camera)
    return camera


def _animate_camera(camera: bpy.types.Object, data: dict[str, np.ndarray], created: _Created) -> None:
    """A result with the camera's motion: the camera keyed on every frame (rotation and centre in the world, and
    the lens when the shot zooms), so the footage stays behind the people it shows."""
    if not result_data.has_world(data):
        return
    to_camera = np.asarray(data["camera_rotation"], dtype=np.float64)  # world -> OpenCV camera
    blender_axes = np.swapaxes(to_camera, 1, 2) @ np.diag([1.0, -1.0, -1.0])  # Blender cameras look along -Z
    quat = rig.continuous_quaternions(rig.matrix_to_quaternion(blender_axes))
    frames = np.arange(len(quat)) + FRAME_OFFSET
    camera.rotation_mode = "QUATERNION"
    keyframes.set_keys(camera, "rotation_quaternion", frames, quat, group="Camera")
    keyframes.set_keys(camera, "location", frames, np.asarray(data["camera_position"], dtype=np.float64),
                       group="Camera")
    created.add(camera.animation_data.action)
    focal = np.asarray(data["camera_focal"], dtype=np.float64)[:, 0]
    if np.ptp(focal) > 1e-6 * focal[0]:
        width = float(data["image_size"][0])
        keyframes.set_keys(camera.data, "lens", frames, focal * SENSOR_WIDTH_MM / width, group="Lens")
        created.add(camera.data.animation_data.action)


def _scene_settings(scene: bpy.types.Scene, data: dict[str, np.ndarray], camera: bpy.types.Object) -> None:
    params = camera_parameters(data)
    render = scene.render
    render.resolution_x, render.resolution_y = (int(v) for v in data["image_size"])
    render.resolution_percentage = 100
    render.pixel_aspect_x = params["pixel_aspect_x"]
    render.pixel_aspect_y = params["pixel_aspect_y"]
    fps = float(result_data.scalar(data, "fps", 0.0))
    if fps > 0:
        render.fps = max(1, round(fps))
        render.fps_base = render.fps / fps
    scene.frame_start = FRAME_OFFSET
    scene.frame_end = FRAME_OFFSET + max(1, int(result_data.scalar(data, "num_frames", 1))) - 1
    scene.camera = camera
    scene.frame_set(scene.frame_start)


# --- footage: camera background (viewport) and an optional plane (renders) ----------------------------------


class _Footage:
    """The result's source as Blender data: a movie, a numbered image sequence, or a still image."""

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        self.path = Path(str(result_data.scalar(data, "source_path", "")))
        indices = data.get("frame_indices")
        self.first = int(indices[0]) if indices is not None and len(indices) else 0
        self.num_frames = max(1, int(result_data.scalar(data, "num_frames", 1)))
        self.is_video = self.path.suffix.lower() in VIDEO_SUFFIXES

    def check(self) -> None:
        if not str(self.path) or str(self.path) == ".":
            raise OSError("the result names no source")
        if not self.path.exists():
            raise OSError(f"source not found: {self.path}")

    def image(self, created: _Created) -> tuple[bpy.types.Image, int | None]:
        """A new image data-block and, for movies and sequences, the image-user frame offset to apply."""
        if self.is_video:
            return created.add(bpy.data.images.load(str(self.path))), self.first
        files = _image_files(self.path)
        if not files:
            raise OSError(f"no images in {self.path}")
        number = re.findall(r"\d+", files[0].stem)
        if self.path.is_dir() and len(files) > 1 and number:
            image = created.add(bpy.data.images.load(str(files[0])))
            image.source = "SEQUENCE"
            return image, int(number[-1]) - 1 + self.first
        return created.add(bpy.data.images.load(str(files[min(self.first, len(files) - 1)]))), None

    def set_user(self, user: bpy.types.ImageUser, offset: int | None) -> None:
        """Source frame ``first + k`` shows on scene frame ``FRAME_OFFSET + k``."""
        if offset is None:
            return
        user.frame_duration = self.num_frames
        user.frame_start = FRAME_OFFSET
        user.frame_offset = offset
        user.use_auto_refresh = True


def _background(camera: bpy.types.Object, data: dict[str, np.ndarray], created: _Created,
                warnings: list[str]) -> None:
    footage = _Footage(data)
    if not result_data.scalar(data, "source_path", ""):
        return
    try:
        footage.check()
        cam_data = camera.data
        background = cam_data.background_images.new()
        cam_data.show_background_images = True
        background.alpha = 1.0
        background.frame_method = "STRETCH"
        if footage.is_video:
            clip = created.add(bpy.data.movieclips.load(str(footage.path)))
            clip.frame_start = FRAME_OFFSET - footage.first
            background.source = "MOVIE_CLIP"
            background.use_camera_clip = False
            background.clip = clip
        else:
            background.source = "IMAGE"
            background.image, offset = footage.image(created)
            footage.set_user(background.image_user, offset)
    except (RuntimeError, OSError) as exc:
        warnings.append(f"footage not shown behind the camera view: {exc}")


def _footage_plane(camera: bpy.types.Object, data: dict[str, np.ndarray], collection: bpy.types.Collection,
                   created: _Created, warnings: list[str]) -> bpy.types.Object | None:
    """A render-only plane, parented to the camera, exactly filling its view behind everybody, showing the footage.

    Emission for Cycles/EEVEE; the image node is the active one, which Workbench shows in Texture colour mode.
    """
    footage = _Footage(data)
    try:
        footage.check()
        image, offset = footage.image(created)
    except (RuntimeError, OSError) as exc:
        warnings.append(f"no footage plane: {exc}")
        return None
    mesh = created.add(bpy.data.meshes.new("Troupe Footage"))
    mesh.from_pydata(_frustum_corners(data, _backdrop_depth(data)).tolist(), [], [(0, 1, 2, 3)])
    mesh.uv_layers.new(name="UVMap").data.foreach_set("uv", [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    mesh.materials.append(_footage_material(image, footage, offset, created))
    plane = created.add(bpy.data.objects.new("Troupe Footage", mesh))
    collection.objects.link(plane)
    plane.parent = camera
    _key_zoom(plane, data, created)
    plane.hide_viewport = True  # the camera background already shows the footage in the viewport
    plane.hide_select = True
    if hasattr(plane, "visible_shadow"):
        plane.visible_shadow = False
    return plane


def _key_zoom(plane: bpy.types.Object, data: dict[str, np.ndarray], created: _Created) -> None:
    """Under a zoom the plane shrinks with the view (its corners are cut for the first frame's lens)."""
    if not result_data.has_world(data):
        return
    focal = np.asarray(data["camera_focal"], dtype=np.float64)[:, 0]
    if np.ptp(focal) <= 1e-6 * focal[0]:
        return
    ratio = float(np.asarray(data["focal_length"], dtype=np.float64)[0]) / focal
    frames = np.arange(len(focal)) + FRAME_OFFSET
    keyframes.set_keys(plane, "scale", frames, np.column_stack([ratio, ratio, np.ones_like(ratio)]))
    created.add(plane.animation_data.action)


def _backdrop_depth(data: dict[str, np.ndarray]) -> float:
    transl = np.asarray(data["transl"])
    return float(1.5 * transl[:, 2].max() + 2.0) if len(transl) else 20.0


def _frustum_corners(data: dict[str, np.ndarray], depth: float) -> np.ndarray:
    """Camera-local corners of the image rectangle at ``depth`` (Blender camera: -Z forward, +Y up)."""
    width, height = (float(v) for v in data["image_size"])
    (fx, fy), (cx, cy) = np.asarray(data["focal_length"], float), np.asarray(data["principal_point"], float)
    pixels = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])
    x = (pixels[:, 0] - cx) * depth / fx
    y = -(pixels[:, 1] - cy) * depth / fy
    return np.stack([x, y, np.full(4, -depth)], axis=-1)


def _footage_material(image: bpy.types.Image, footage: _Footage, offset: int | None,
                      created: _Created) -> bpy.types.Material:
    material = created.add(bpy.data.materials.new("Troupe Footage"))
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.extension = "CLIP"
    footage.set_user(texture.image_user, offset)
    emission = nodes.new("ShaderNodeEmission")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(texture.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    nodes.active = texture
    return material


def _image_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [path]


# --- people -------------------------------------------------------------------------------------------------


def build_person(
    track: Track,
    data: dict[str, np.ndarray],
    collection: bpy.types.Collection,
    created: _Created | None = None,
    *,
    color: tuple[float, float, float] = PALETTE[0],
    with_mesh: bool = True,
    anny_rig: bool = False,
) -> bpy.types.Object:
    """One person's armature (+ body mesh) with its animation; returns the armature object. ``anny_rig``: Anny's
    own bones and skin weights where the result has them (an Anny body), else the 24-joint armature."""
    created = created or _Created()
    name = f"Person {track.track_id}"
    anny = anny_rig and "rig_bone_names" in data
    if anny:
        armature = build_anny_armature(name, track, data, collection, created)
    else:
        armature = build_armature(name, track.rest_joints, collection, created)
    _store_metadata(armature, track, data)
    if anny:
        key_anny_track(armature, track, data)
    else:
        key_track(armature, track)
    created.add(armature.animation_data.action)
    if with_mesh:
        mesh = _body_mesh(name, track, data, armature, collection, created, color, anny)
        if mesh is not None:
            _key_visibility(mesh, track, data, created)
    _key_visibility(armature, track, data, created)
    return armature


def build_armature(
    name: str, rest_joints: np.ndarray, collection: bpy.types.Collection, created: _Created | None = None
) -> bpy.types.Object:
    """An armature with the 24 SMPL bones at ``rest_joints`` (model frame), zero roll, tails toward children."""
    created = created or _Created()
    arm_data = created.add(bpy.data.armatures.new(name))
    arm_data.display_type = "OCTAHEDRAL"
    obj = created.add(bpy.data.objects.new(name, arm_data))
    collection.objects.link(obj)
    heads, tails = rig.bone_layout(rest_joints)
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = arm_data.edit_bones
        for j, bone_name in enumerate(rig.JOINT_NAMES):
            bone = bones.new(bone_name)
            bone.head, bone.tail, bone.roll = heads[j], tails[j], 0.0
        for j, parent in enumerate(rig.PARENTS):
            if parent >= 0:
                bone = bones[rig.JOINT_NAMES[j]]
                bone.parent = bones[rig.JOINT_NAMES[parent]]
                bone.use_connect = rig.PRIMARY_CHILD.get(parent) == j
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    return obj


def build_anny_armature(name: str, track: Track, data: dict[str, np.ndarray],
                        collection: bpy.types.Collection, created: _Created | None = None) -> bpy.types.Object:
    """An armature with Anny's own bones (names, parents, rest heads and tails of this track's body), zero roll,
    unconnected (toes and metacarpals carry a location key: see ``anny_rig``)."""
    created = created or _Created()
    names = [str(n) for n in data["rig_bone_names"]]
    parents = np.asarray(data["rig_bone_parents"], dtype=np.int64)
    anny_rig.check_rig(np.array(names), parents, np.asarray(data["rig_bone_joints"], dtype=np.int64))
    ends = np.asarray(data["rig_bone_ends"][track.index], dtype=np.float64) @ rig.MODEL_TO_ARMATURE.T
    arm_data = created.add(bpy.data.armatures.new(name))
    arm_data.display_type = "OCTAHEDRAL"
    obj = created.add(bpy.data.objects.new(name, arm_data))
    collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = arm_data.edit_bones
        for b, bone_name in enumerate(names):
            bone = bones.new(bone_name)
            bone.head, bone.tail, bone.roll = ends[b, 0], ends[b, 1], 0.0
            if parents[b] >= 0:
                bone.parent = bones[names[parents[b]]]
                bone.use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    obj[PROP_RIG] = "anny"
    return obj


def key_anny_track(armature: bpy.types.Object, track: Track, data: dict[str, np.ndarray]) -> None:
    """Key every Anny bone's rotation and location from the fitted 24-joint motion (``anny_rig.bone_keys``)."""
    names = [str(n) for n in data["rig_bone_names"]]
    rest = np.array([np.array(armature.data.bones[n].matrix_local) for n in names])
    quat, location = anny_rig.bone_keys(track.poses, track.transl, track.rest_joints, rest,
                                        np.asarray(data["rig_bone_parents"], dtype=np.int64),
                                        np.asarray(data["rig_bone_joints"], dtype=np.int64))
    frames = track.frames + FRAME_OFFSET
    for b, bone_name in enumerate(names):
        keyframes.set_keys(armature, f'pose.bones["{bone_name}"].rotation_quaternion', frames, quat[:, b],
                           group=bone_name)
        keyframes.set_keys(armature, f'pose.bones["{bone_name}"].location', frames, location[:, b],
                           group=bone_name)


def bone_rest_rotations(armature: bpy.types.Object) -> np.ndarray:
    """The rotation part (24, 3, 3) of each bone's rest matrix in armature space, in SMPL joint order."""
    bones = armature.data.bones
    return np.array([[list(row)[:3] for row in bones[name].matrix_local][:3] for name in rig.JOINT_NAMES])


def key_track(armature: bpy.types.Object, track: Track) -> None:
    """Key all 24 bone rotations and the root location on the frames where the person was observed."""
    quat, location = rig.pose_to_bone_keys(track.poses, track.transl, track.rest_joints, bone_rest_rotations(armature))
    frames = track.frames + FRAME_OFFSET
    for j, bone_name in enumerate(rig.JOINT_NAMES):
        keyframes.set_keys(armature, f'pose.bones["{bone_name}"].rotation_quaternion', frames, quat[:, j],
                           group=bone_name)
    root = rig.JOINT_NAMES[0]
    keyframes.set_keys(armature, f'pose.bones["{root}"].location', frames, location, group=root)


def _key_visibility(obj: bpy.types.Object, track: Track, data: dict[str, np.ndarray], created: _Created) -> None:
    """Show the person only on frames the result has rows for (constant keys on viewport and render): hidden
    before they enter, after they leave, and through every gap the backend did not bridge (longer than 0.15 s),
    where keys would otherwise interpolate a body drifting off its person."""
    num_frames = int(result_data.scalar(data, "num_frames", 1))
    keys: dict[int, float] = {}
    for first, last in track.visible_runs():
        if first > 0:
            keys.setdefault(first - 1, 1.0)
        keys[first] = 0.0
        if last < num_frames - 1:
            keys[last + 1] = 1.0
    if not keys:
        return
    frames = np.array(sorted(keys)) + FRAME_OFFSET
    values = np.array([keys[k] for k in sorted(keys)])
    for prop in ("hide_viewport", "hide_render"):
        keyframes.set_keys(obj, prop, frames, values, interpolation="CONSTANT")
    created.add(obj.animation_data.action)


def _store_metadata(armature: bpy.types.Object, track: Track, data: dict[str, np.ndarray]) -> None:
    armature[PROP_TRACK] = track.track_id
    armature[PROP_BETAS] = [float(b) for b in track.betas]
    armature[PROP_BODY] = str(result_data.scalar(data, "body_model", ""))
    armature[PROP_FPS] = float(result_data.scalar(data, "fps", 0.0))


def _body_mesh(
    name: str,
    track: Track,
    data: dict[str, np.ndarray],
    armature: bpy.types.Object,
    collection: bpy.types.Collection,
    created: _Created,
    color: tuple[float, float, float],
    anny: bool = False,
) -> bpy.types.Object | None:
    if track.rest_vertices is None or "faces" not in data or "skin_weights" not in data:
        return None
    mesh = created.add(bpy.data.meshes.new(f"{name} Body"))
    _fill_triangles(mesh, track.rest_vertices @ rig.MODEL_TO_ARMATURE.T, np.asarray(data["faces"]))
    _smooth(mesh)
    mesh.materials.append(_material(f"{name} Material", color, created))
    obj = created.add(bpy.data.objects.new(f"{name} Body", mesh))
    obj.color = (*color, 1.0)
    collection.objects.link(obj)
    obj.parent = armature
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    if anny:
        names = [str(n) for n in data["rig_bone_names"]]
        weights = anny_rig.dense_weights(np.asarray(data["rig_weight_bones"]), np.asarray(data["rig_weight_values"],
                                         dtype=np.float64), len(names))
        _vertex_groups(obj, weights, names)
    else:
        _vertex_groups(obj, np.asarray(data["skin_weights"], dtype=np.float64))
    return obj


def _fill_triangles(mesh: bpy.types.Mesh, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Vertices and triangles in a few bulk writes (an Anny body has 14k vertices: no Python list per vertex)."""
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    mesh.validate()


def _smooth(mesh: bpy.types.Mesh) -> None:
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:  # Blender < 4.1
        mesh.polygons.foreach_set("use_smooth", [True] * len(mesh.polygons))


def _material(name: str, color: tuple[float, float, float], created: _Created) -> bpy.types.Material:
    material = created.add(bpy.data.materials.new(name))
    material.diffuse_color = (*color, 1.0)
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True  # always on (and deprecated) from 5.0
    principled = material.node_tree.nodes.get("Principled BSDF")
    if principled is not None:
        principled.inputs["Base Color"].default_value = (*color, 1.0)
    return material


def _vertex_groups(obj: bpy.types.Object, weights: np.ndarray, names: Sequence[str] = rig.JOINT_NAMES) -> None:
    """One group per bone (column of ``weights``); vertices sharing a weight value go in with one call."""
    for j, bone_name in enumerate(names):
        group = obj.vertex_groups.new(name=bone_name)
        column = weights[:, j]
        nonzero = np.nonzero(column > 1e-6)[0]
        if nonzero.size == 0:
            continue  # a bone that moves no skin (Anny's rig has a few): an empty group
        values, inverse, counts = np.unique(column[nonzero], return_inverse=True, return_counts=True)
        members = np.split(nonzero[np.argsort(inverse, kind="stable")], np.cumsum(counts)[:-1])
        for value, indices in zip(values.tolist(), members, strict=True):
            group.add(indices.tolist(), value, "REPLACE")


def iter_people(collection: bpy.types.Collection) -> list[bpy.types.Object]:
    """The armatures a reconstruction collection holds, ordered by track id."""
    people = [obj for obj in collection.all_objects if obj.type == "ARMATURE" and PROP_TRACK in obj]
    return sorted(people, key=lambda obj: int(obj[PROP_TRACK]))


def remove_collection(collection: bpy.types.Collection) -> None:
    """Delete a reconstruction and the data only it used (tests and re-imports)."""
    for obj in list(collection.all_objects):
        data = obj.data
        action = obj.animation_data.action if obj.animation_data else None
        bpy.data.objects.remove(obj)
        for block, pool in ((data, None), (action, bpy.data.actions)):
            if block is not None and block.users == 0:
                (pool or getattr(bpy.data, _DATA_COLLECTIONS[type(block).__name__])).remove(block)
    bpy.data.collections.remove(collection)

