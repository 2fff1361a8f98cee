"""Reading images, folders and videos from real footage, and the messages for bad input."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from backend.sources.frames import SourceError, open_source


def test_video_metadata_and_frame_range(shared_data):
    source = open_source(shared_data / "football_dribble.mp4", frame_start=250)
    assert (source.info.width, source.info.height, source.info.fps) == (1280, 720, 30.0)
    assert source.info.num_frames == 7
    indices = [index for index, _ in source.frames()]
    assert indices == list(range(250, 257))


def test_video_frames_are_rgb_and_chunked(shared_data):
    source = open_source(shared_data / "football_dribble.mp4", frame_end=9)
    chunks = list(source.chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    frame = chunks[0][0][1]
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
    # The pitch is green: in RGB order the green channel dominates the lower half of a broadcast frame.
    lower = frame[400:].reshape(-1, 3).mean(axis=0)
    assert lower[1] > lower[0] and lower[1] > lower[2]


def test_path_with_spaces_and_non_ascii(shared_data, tmp_path):
    folder = tmp_path / "Équipe été 2026"
    folder.mkdir()
    target = folder / "joueurs à l'entraînement.jpg"
    shutil.copy(shared_data / "football_player_a.jpg", target)
    source = open_source(target)
    assert (source.info.kind, source.info.width, source.info.height) == ("image", 1280, 720)
    assert next(source.frames())[1].shape == (720, 1280, 3)


def test_folder_with_mixed_files_reads_images_in_name_order(shared_data, tmp_path):
    shutil.copy(shared_data / "football_player_b.jpg", tmp_path / "b.jpg")
    shutil.copy(shared_data / "football_player_a.jpg", tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path)
    assert source.info.kind == "folder" and source.info.num_frames == 2
    frames = [frame for _, frame in source.frames()]
    assert len(frames) == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jpg", b"", "empty file"),
        ("broken.jpg", b"\xff\xd8 this is no jpeg", "corrupt or not an image"),
        ("broken.mp4", b"\x00\x00\x00\x18ftypmp42 garbage" * 10, "corrupt"),
        ("clip.xyz", b"data", "unsupported input type"),
    ],
)
def test_bad_files_get_a_message_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        open_source(path)
    assert name in str(info.value)


def test_missing_input_and_empty_folder(tmp_path):
    with pytest.raises(SourceError, match="input not found"):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(SourceError, match="no images"):
        open_source(tmp_path)


def test_truncated_mp4_without_index_fails_at_open(shared_data, tmp_path):
    data = (shared_data / "football_dribble.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # this file keeps its index (moov) at the end: it is lost
    with pytest.raises(SourceError, match="corrupt"):
        open_source(truncated)


def test_truncated_stream_reports_the_frame_that_failed(shared_data, tmp_path):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (480, 270))
    for _, frame in open_source(shared_data / "dancer_1080p.mp4", frame_end=29).frames():
        writer.write(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (480, 270)))
    writer.release()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * 0.6)])
    source = open_source(truncated)
    assert source.info.num_frames == 30  # the header still promises the whole clip
    seen = []
    with pytest.raises(SourceError, match=r"frame \d+ .* cannot be decoded") as info:
        for index, _ in source.frames():
            seen.append(index)
    assert 0 < len(seen) < 30
    assert f"frame {len(seen)} of" in str(info.value)


def test_frame_range_beyond_the_clip(shared_data):
    with pytest.raises(SourceError, match="has only 257 frames"):
        open_source(shared_data / "football_dribble.mp4", frame_start=300)
