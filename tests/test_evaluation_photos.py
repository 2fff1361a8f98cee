"""``eval-people --variants``: labels of a mirrored or rescaled copy of a photo must land where the copy puts the
labelled pixels, or the variants would score a finder against wrong points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.evaluation.photos import VARIANTS, Label, Run, Score, Variant, format_table, write_variant


@pytest.mark.parametrize("key", sorted(VARIANTS))
def test_a_point_moved_into_a_variant_maps_back(key: str) -> None:
    variant, points = VARIANTS[key], np.array([[0.0, 0.0], [12.5, 40.0], [799.0, 450.0]])
    moved = variant.points(points, 800)
    np.testing.assert_allclose(variant.unpoints(moved, 800), points, atol=1e-9)
    assert not np.allclose(moved, points)


def test_a_mirrored_ignore_box_stays_a_box_on_the_other_side() -> None:
    box = np.array([[10.0, 20.0, 110.0, 80.0]])
    mirrored = Variant(mirror=True).boxes(box, 800)
    np.testing.assert_allclose(mirrored, [[690.0, 20.0, 790.0, 80.0]])
    x0, y0, x1, y1 = Variant(mirror=True, scale=0.6).boxes(box, 800)[0]
    assert x0 < x1 and y0 < y1


@pytest.mark.parametrize("key", sorted(VARIANTS))
def test_a_labelled_pixel_lands_where_the_variant_label_says(key: str, tmp_path: Path) -> None:
    import cv2

    image = np.zeros((90, 160, 3), np.uint8)
    image[30:36, 20:26] = 255  # a bright square centred on (22.5, 32.5)
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    variant = VARIANTS[key]
    copy = cv2.imread(str(write_variant(tmp_path / "photo.png", variant, tmp_path)), cv2.IMREAD_GRAYSCALE)
    assert copy.shape[::-1] == variant.size(160, 90)
    weights = np.clip(copy.astype(np.float64) - 40, 0, None)  # the bright square, without JPEG ringing
    ys, xs = np.indices(copy.shape)
    centre = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
    label = variant.label(Label(np.array([[22.5, 32.5]]), 10.0, np.zeros((0, 4))), 160)
    np.testing.assert_allclose(label.heads[0], centre, atol=0.3)
    assert label.face_width == pytest.approx(10.0 * variant.scale)


def test_variants_have_their_own_total_and_leave_all_as_it_was() -> None:
    runs = {"a.jpg": Run(Score(4, 4, 4, 4), 1.0), "a.jpg~mirror": Run(Score(4, 1, 1, 1), 1.0)}
    lines = format_table(runs).splitlines()
    assert lines[-2].split()[:3] == ["all", "4", "100%"]
    assert lines[-1].split()[:3] == ["variants", "4", "25%"]


def test_a_clip_is_scored_from_each_of_its_first_frames_and_the_mean_is_printed(monkeypatch) -> None:
    """``--clip-starts N``: the clip's observed share moves by 1-2 points with its start frame, so each start is
    reconstructed (``--start`` passed through) and every share and their mean are printed."""
    from backend.evaluation import photos

    asked = []

    def fake(source, code=photos.REPO_ROOT, extra=None):
        asked.append(list(extra or []))
        start = int(extra[1]) if extra else 0
        return photos.ClipRun(257 - start, 100.0, [0.95, 0.93, 0.91][start], 1000 + start, 4.0)

    monkeypatch.setattr(photos, "evaluate_clip", fake)
    runs = photos.evaluate_clip_starts(Path("clip.mp4"), 3)
    assert asked == [[], ["--start", "1"], ["--start", "2"]]
    text = photos.format_clip("clip.mp4", runs, runs)
    assert "95.0 / 93.0 / 91.0% (mean 93.0%)" in text and "1000 / 1001 / 1002 body-frames" in text
    assert "2.56 frames/s" in text and "1.00x" in text  # (257 + 256 + 255) frames in 300 s


def test_a_clip_against_a_baseline_interleaves_the_two_sides(monkeypatch) -> None:
    """The machines' speed drifts over minutes: the two codes' runs alternate, start by start, and which goes
    first alternates too, so a drift does not read as one code being faster."""
    from backend.evaluation import photos

    order = []

    def fake(source, code=photos.REPO_ROOT, extra=None):
        order.append(("this" if code == photos.REPO_ROOT else "base", int(extra[1]) if extra else 0))
        return photos.ClipRun(257, 100.0, 0.9, 1000, 4.0)

    monkeypatch.setattr(photos, "evaluate_clip", fake)
    current, base = photos.evaluate_clip_pairs(Path("clip.mp4"), 3, Path("baseline"))
    assert order == [("base", 0), ("this", 0), ("this", 1), ("base", 1), ("base", 2), ("this", 2)]
    assert len(current) == len(base) == 3
