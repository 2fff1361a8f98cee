"""The people finder's networks: MediaPipe's TFLite files and MoveNet's TensorFlow.js graph run in torch (and
ONNX Runtime) must compute what their reference runtimes compute. References: OpenCV's own TFLite importer,
MediaPipe's own face detector and pose solution, the same graph in the other runtime."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.detection import blaze, rois
from backend.detection.models import model_path
from backend.detection.tflite import TfliteModel


def _image(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_tflite_network_equals_opencvs_tflite_importer(shared_data: Path) -> None:
    """pose_landmark_full through our flatbuffer reader and torch ops vs OpenCV's independent TFLite importer
    (dense weights: OpenCV reads this file, not the sparse detectors)."""
    import cv2

    path = model_path("pose_landmarks_full")
    crop = rois.crops(_image(shared_data / "football_player_b.jpg"), np.array([[640.0, 360.0, 720.0, 0.0]]), 256)
    x = crop.astype(np.float32) / 255.0
    ours = TfliteModel(path)(torch.from_numpy(x))
    net = cv2.dnn.readNetFromTFLite(str(path))
    net.setInput(x.transpose(0, 3, 1, 2).copy())
    names = net.getUnconnectedOutLayersNames()
    reference = dict(zip(names, net.forward(names)))
    for name in ("Identity", "Identity_1", "Identity_4"):  # landmarks (px), presence, world landmarks (m)
        np.testing.assert_allclose(ours[name].numpy().reshape(reference[name].shape), reference[name],
                                   atol=2e-3 * max(1.0, float(np.abs(reference[name]).max())))
    heatmap = ours["Identity_3"].numpy()[0].transpose(2, 0, 1)  # NHWC -> NCHW as OpenCV gives it
    np.testing.assert_allclose(heatmap, reference["Identity_3"][0], atol=1e-2)


def test_anchor_layouts_match_the_models_outputs() -> None:
    for name, spec in (("pose_detector", blaze.POSE_DETECTOR), ("face_detector_full_range",
                                                                 blaze.FACE_DETECTOR_FULL_RANGE)):
        outputs = TfliteModel(model_path(name))(torch.zeros(1, spec.input_size, spec.input_size, 3))
        boxes = next(iter(outputs.values()))
        assert blaze.anchor_centres(spec).shape == (boxes.shape[1], 2)


def test_face_detector_agrees_with_mediapipes_own(shared_data: Path) -> None:
    """BlazeFace full range (sparse weights, densified here) through our decoding vs MediaPipe's face detection
    solution on the same crop of group7_walk.jpg: the same faces, boxes within a few pixels."""
    import mediapipe as mp

    from backend.detection.detectors import TiledDetector

    crop = np.ascontiguousarray(_image(shared_data / "group7_walk.jpg")[0:250, 100:500])
    ours = TiledDetector(model_path("face_detector_full_range"), blaze.FACE_DETECTOR_FULL_RANGE,
                         min_score=0.5)(crop, [(0, 0, 0)])
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as solution:
        found = solution.process(crop).detections
    assert found, "MediaPipe finds a face in this crop"
    h, w = crop.shape[:2]
    for detection in found:
        box = detection.location_data.relative_bounding_box
        theirs = np.array([box.xmin * w, box.ymin * h, (box.xmin + box.width) * w, (box.ymin + box.height) * h])
        distance = np.abs(ours.boxes - theirs).max(axis=1)
        assert distance.min() < 6.0, (ours.boxes, theirs)


def test_landmarks_agree_with_mediapipes_pose_solution(shared_data: Path) -> None:
    """The whole chain (person detector with densified weights, region, crop, landmark model, heatmap refinement,
    projection back) on one dancer: the same 33 landmarks as MediaPipe's own single-person pose solution."""
    import cv2
    import mediapipe as mp

    from backend.detection.people import FinderSettings, PeopleFinder

    capture = cv2.VideoCapture(str(shared_data / "dancer_1080p.mp4"))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    frame = cv2.cvtColor(cv2.resize(bgr, (960, 540)), cv2.COLOR_BGR2RGB)
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        theirs = pose.process(frame).pose_landmarks
    assert theirs is not None
    reference = np.array([[p.x * 960, p.y * 540] for p in theirs.landmark])
    people = PeopleFinder(settings=FinderSettings(body_tiles=())).find(frame)
    assert len(people) == 1
    error = np.linalg.norm(people.keypoints[0] - reference, axis=-1)
    height = np.ptp(reference[:, 1])
    assert np.median(error) < 0.02 * height and np.percentile(error, 90) < 0.06 * height, error


def test_onnx_runtime_computes_what_torch_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.detection.runtime import Network, use_onnx

    if not use_onnx():
        pytest.fail("onnx and onnxruntime are in the backend's requirements: install them")
    module = TfliteModel(model_path("pose_detector"))
    x = torch.rand(2, 224, 224, 3) * 2 - 1
    fast = Network(module, module.output_names, model_path("pose_detector"), "cpu", module.input_shape)
    monkeypatch.setenv("TROUPE_RUNTIME", "torch")
    plain = Network(module, module.output_names, model_path("pose_detector"), "cpu", module.input_shape)
    assert (fast.runtime, plain.runtime) == ("onnxruntime", "torch")
    for name in module.output_names:
        np.testing.assert_allclose(fast(x)[name].numpy(), plain(x)[name].numpy(), atol=1e-3, rtol=1e-3)


def test_movenet_graph_finds_the_players_the_face_detectors_miss(shared_data: Path) -> None:
    """MoveNet (TensorFlow.js graph, run up to its heads and decoded here without its six-person limit) finds
    bodies by their centre: the football players of soccer_crowd.jpg, several seen side-on or from behind."""
    from backend.detection.movenet import MultiPoseDetector

    labels = json.loads((Path(__file__).parent / "data" / "people_heads.json").read_text())["soccer_crowd.jpg"]
    found = MultiPoseDetector(model_path("movenet_multipose"), input_size=512)(
        _image(shared_data / "soccer_crowd.jpg"), [(0, 0, 0)])
    heads = np.asarray(labels["heads"])
    inside = [(b[0] <= heads[:, 0]) & (heads[:, 0] <= b[2]) & (b[1] - 20 <= heads[:, 1]) & (heads[:, 1] <= b[3])
              for b in found.boxes]
    players = np.any(inside, axis=0) if inside else np.zeros(len(heads), bool)
    assert players.sum() >= 4, found.boxes
    assert (found.keypoint_scores >= 0).all() and found.keypoints.shape[1:] == (17, 2)


def test_nanodet_finds_the_jumping_players_no_pose_or_face_detector_reads(shared_data: Path) -> None:
    """NanoDet (an ONNX-converted TensorFlow.js graph: explicit NCHW/NHWC transposes, pads, concatenations)
    decoded here for COCO's person class: a box around each of the two players jumping for the ball in
    soccer_crowd.jpg (backs to the camera), which MoveNet and the face/pose detectors miss."""
    from backend.detection.nanodet import PersonDetector

    labels = json.loads((Path(__file__).parent / "data" / "people_heads.json").read_text())["soccer_crowd.jpg"]
    found = PersonDetector(model_path("nanodet"), min_score=0.3)(_image(shared_data / "soccer_crowd.jpg"),
                                                                 [(0, 0, 0)])
    heads = np.asarray(labels["heads"], np.float64)
    for jumper in (heads[1], heads[2]):  # white #9 and dark #3 in the air
        holds = [(b[0] <= jumper[0] <= b[2]) and (b[1] - 20 <= jumper[1] <= b[1] + 0.3 * (b[3] - b[1]))
                 for b in found.boxes]
        assert any(holds), (jumper, found.boxes)
    tall = (found.boxes[:, 3] - found.boxes[:, 1]) > 150
    assert tall.sum() >= 6 and (found.scores >= 0.3).all(), found.boxes  # the players, not spectators' heads


def test_tfjs_layout_operators_act_on_the_graphs_axes(tmp_path: Path) -> None:
    """Transpose, Pad and ConcatV2 of a graph converted from ONNX (NCHW tensors transposed to NHWC and back),
    against numpy on the graph's own layout."""
    from backend.detection.tfjs import TfjsGraph

    nodes = [
        {"name": "x", "op": "Placeholder"},
        *({"name": name, "op": "Const"} for name in ("perm", "paddings", "axis")),
        {"name": "nhwc", "op": "Transpose", "input": ["x", "perm"]},
        {"name": "padded", "op": "Pad", "input": ["nhwc", "paddings"]},
        {"name": "joined", "op": "ConcatV2", "input": ["padded", "padded", "axis"]},
    ]
    arrays = {"perm": np.array([0, 2, 3, 1], np.int32), "paddings": np.array([[0, 0], [1, 2], [0, 1], [0, 0]],
                                                                           np.int32),
              "axis": np.array(3, np.int32)}
    manifest = [{"paths": ["w.bin"], "weights": [{"name": k, "shape": list(v.shape), "dtype": "int32"}
                                                  for k, v in arrays.items()]}]
    (tmp_path / "w.bin").write_bytes(b"".join(v.tobytes() for v in arrays.values()))
    (tmp_path / "model.json").write_text(json.dumps({"modelTopology": {"node": nodes},
                                                     "weightsManifest": manifest}))
    graph = TfjsGraph(tmp_path / "model.json", ["joined"])
    x = np.random.default_rng(0).random((1, 3, 4, 5)).astype(np.float32)  # the graph's NCHW input
    out = graph(torch.from_numpy(x))["joined"].numpy()
    nhwc = np.pad(x.transpose(0, 2, 3, 1), [[0, 0], [1, 2], [0, 1], [0, 0]])
    np.testing.assert_array_equal(out, np.concatenate([nhwc, nhwc], axis=3))


def test_regions_map_crop_and_image_coordinates_both_ways() -> None:
    regions = np.array([[320.0, 200.0, 150.0, 0.7], [10.0, -5.0, 64.0, -2.5]])
    points = np.random.default_rng(0).uniform(0, 1, (2, 9, 2))
    np.testing.assert_allclose(rois.to_crop(regions, rois.to_image(regions, points)), points, atol=1e-9)
    # a crop samples the image where to_image says: a gradient image read back at the crop's pixel centres
    yy, xx = np.mgrid[0:400, 0:640]
    image = np.round(np.stack([xx * 0.39, yy * 0.6, np.zeros_like(xx)], -1)).astype(np.uint8)  # no wrap-around
    crop = rois.crops(image, regions[:1], 32)[0].astype(float)
    centres = (np.stack(np.meshgrid(np.arange(32), np.arange(32)), -1).reshape(-1, 2) + 0.5) / 32
    where = rois.to_image(regions[:1], centres[None])[0] - 0.5  # pixel coordinates -> indices
    np.testing.assert_allclose(crop.reshape(-1, 3)[:, :2], where * [0.39, 0.6], atol=1.0)


def test_alignment_points_give_an_upright_region_for_an_upright_person() -> None:
    hips, above = np.array([[300.0, 400.0]]), np.array([[300.0, 250.0]])
    region = rois.from_alignment(hips, above, 1.25)[0]
    assert region[3] == pytest.approx(0.0) and region[2] == pytest.approx(2 * 150 * 1.25)
    leaning = rois.from_alignment(hips, np.array([[450.0, 400.0]]), 1.25)[0]  # 'up' points right: 90 degrees
    assert leaning[3] == pytest.approx(np.pi / 2)


def test_a_deferred_output_is_left_out_of_a_call_and_read_later_for_the_rows_kept(monkeypatch: pytest.MonkeyPatch
                                                                                  ) -> None:
    """The landmark model's mask (about half its work) is left out of the crops tried and read for those kept: in
    ONNX Runtime from the graph cut where the mask's own layers begin, in torch from the outputs computed at once.
    Either way the same outputs as one whole call."""
    import onnx

    from backend.detection.pose_landmarks import MASK_OUTPUT
    from backend.detection.runtime import Network

    module = TfliteModel(model_path("pose_landmarks_full"))
    x = torch.rand(3, 256, 256, 3)
    split = Network(module, module.output_names, model_path("pose_landmarks_full"), "cpu", module.input_shape,
                    deferred=[MASK_OUTPUT])
    monkeypatch.setenv("TROUPE_RUNTIME", "torch")
    plain = Network(module, module.output_names, model_path("pose_landmarks_full"), "cpu", module.input_shape,
                    deferred=[MASK_OUTPUT])
    assert (split.runtime, plain.runtime) == ("onnxruntime", "torch")
    for network in (split, plain):  # each against its own whole call (the runtimes agree to ~1e-3 on real crops)
        whole = network(x)
        now, later = network.partial(x)
        assert set(now) == set(module.output_names) - {MASK_OUTPUT} and later.ready == (network is plain)
        for name, value in now.items():  # ONNX Runtime may pick other kernels for the cut graph: 1e-3 px of 256
            np.testing.assert_allclose(value.numpy(), whole[name].numpy(), atol=1e-3, rtol=1e-5)
        mask = network.finish(later.select([2, 0]))[MASK_OUTPUT]
        np.testing.assert_allclose(mask.numpy(), whole[MASK_OUTPUT][[2, 0]].numpy(), atol=1e-4, rtol=1e-5)
    main, whole_graph = (onnx.load(session._model_path).graph for session in (split._main, split._session))
    assert len(main.node) < len(whole_graph.node) - 20  # the main part really leaves the mask's layers out


def test_masks_read_later_are_the_masks_read_at_once(shared_data: Path) -> None:
    from backend.detection.pose_landmarks import PoseLandmarker

    image = _image(shared_data / "group7_walk.jpg")
    landmarker = PoseLandmarker(model_path("pose_landmarks_full"))
    regions = np.array([[200.0, 260.0, 300.0, 0.0], [600.0, 250.0, 320.0, 0.1], [900.0, 240.0, 280.0, 0.0]])
    at_once = landmarker(image, regions)
    tried = landmarker(image, regions, masks=False)
    assert tried.masks is None
    kept = landmarker.with_masks(tried.select([2, 0]))
    # the cut graph and the whole one are two graphs to ONNX Runtime, whose fused kernels may round differently
    np.testing.assert_allclose(kept.keypoints, at_once.keypoints[[2, 0]], atol=1e-3)
    np.testing.assert_allclose(kept.masks, at_once.masks[[2, 0]], atol=1e-5)
    assert kept.masks.shape == (2, 256, 256) and (kept.masks > 0.5).any()


def test_a_graph_that_cannot_be_cut_runs_whole_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cut is only for speed: where it fails (another onnx's extractor), the outputs are the same, computed at
    once, and the user is told why it is slower."""
    from backend.detection import runtime
    from backend.detection.pose_landmarks import MASK_OUTPUT

    def cannot_cut(path, deferred):
        raise ValueError("names not found in value_infos")

    monkeypatch.setattr(runtime, "_split", cannot_cut)
    module = TfliteModel(model_path("pose_landmarks_full"))
    with pytest.warns(RuntimeWarning, match="not cut for the deferred outputs.*value_infos"):
        network = runtime.Network(module, module.output_names, model_path("pose_landmarks_full"), "cpu",
                                  module.input_shape, deferred=[MASK_OUTPUT])
    x = torch.rand(2, 256, 256, 3)
    whole = network(x)
    now, later = network.partial(x)
    assert network.runtime == "onnxruntime" and later.ready and MASK_OUTPUT not in now
    np.testing.assert_array_equal(network.finish(later.select([1]))[MASK_OUTPUT].numpy(), whole[MASK_OUTPUT][[1]])


@pytest.mark.parametrize("key", ["face_detector_full_range", "pose_landmarks_full"])
def test_zero_padding_before_a_valid_convolution_is_done_by_the_convolution(key: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A PAD whose only reader is a VALID convolution is left out and the convolution pads instead (in ONNX Runtime
    each such Pad cost a layout conversion out of and back into the convolutions' blocked layout): fewer
    operators, the same outputs."""
    folded = TfliteModel(model_path(key))
    monkeypatch.setattr(TfliteModel, "_pad_into_conv", lambda self, name, op, readers: False)
    plain = TfliteModel(model_path(key))
    assert len(folded._ops) < len(plain._ops)
    x = torch.rand(2, *folded.input_shape[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = plain(x)
        for name, value in folded(x).items():
            torch.testing.assert_close(value, expected[name], atol=1e-5, rtol=1e-5)


def test_an_export_of_a_newer_format_removes_the_older_ones_of_that_model(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports are cached per format version; making one removes the same model's older exports and their cut
    parts (tens of megabytes, never read again), not other models' or other sizes', nor a newer version's."""
    from backend.detection import runtime

    monkeypatch.setattr(runtime, "cache_subdir", lambda name: tmp_path)
    source = model_path("pose_landmarks_full")
    module = TfliteModel(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    stem = f"{source.stem}-{digest}-256x256x3"
    older = [f"{stem}.onnx", f"{stem}.main.onnx", f"{stem}.deferred.onnx"]
    kept = [f"{stem}-v{runtime.EXPORT_VERSION + 1}.onnx", f"{source.stem}-{digest}-128x128x3.onnx",
            f"other-{digest}-256x256x3.onnx"]
    for name in older + kept:
        (tmp_path / name).write_bytes(b"old")
    path = runtime._exported(module, module.output_names, source, module.input_shape)
    assert path.name == f"{stem}-v{runtime.EXPORT_VERSION}.onnx" and path.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + [path.name])
