"""People-finding on real photos, scored against hand-checked head points (``python -m backend eval-photos``).

Each labelled picture (a photo, or frame N of a clip as ``CLIP.mp4#N``) is reconstructed with the default
pipeline through the command line, exactly as a user runs it, and its result file is scored:

* **covered**: people whose head point has a body's projected head centre within one face width (one body per
  person at most: an optimal one-to-one matching). The head centre is the middle of the body's head (the box
  of the vertices that move with the Head joint, carried by that joint), not the Head joint itself: the joint
  sits at jaw height, about half a face width below the face centre the labels mark, so a body whose head lies
  on the face could be scored as missing it, the more so the closer the person;
* **on a person**: bodies whose head centre lies within one face width of some labelled head; **on nobody**: the
  others, except those whose head falls in an ``ignore_boxes`` region (an unlabelled crowd, a person whose head
  is outside the picture): they count as neither.

``--baseline REF`` reconstructs the same pictures with the code of a git revision (a temporary worktree, run with
the same Python) and prints both in one table, so the figures compare on the same machine and load. A collage
of the labelled group photos (``collage``, 34 people in a 2 x 3 grid) times a large group. ``--variants`` also
scores each labelled still as transformed copies (``NAME~mirror``, ``~x0.6``, ``~x1.6``, ``~mirror-q40``: mirrored,
rescaled, mirrored and saved as a quality-40 JPEG), labels moved exactly, so a finder tuned to these very pixels
shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy.optimize import linear_sum_assignment

HEAD_JOINT = 15
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LABELS = REPO_ROOT / "tests" / "data" / "people_heads.json"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
COLLAGE = "collage"
COLLAGE_GRID = (("group7_walk.jpg", "group7_walk.jpg", "trio_stage.jpg"),
                ("group7_walk.jpg", "group7_walk.jpg", "trio_stage.jpg"))
VARIANT_MARK = "~"


@dataclass(frozen=True)
class Label:
    heads: np.ndarray  # (P, 2) pixels
    face_width: float
    ignore: np.ndarray  # (K, 4) x0, y0, x1, y1

    @classmethod
    def from_json(cls, entry: dict) -> "Label":
        return cls(np.asarray(entry["heads"], np.float64).reshape(-1, 2), float(entry["face_width_px"]),
                   np.asarray(entry.get("ignore_boxes", []), np.float64).reshape(-1, 4))


@dataclass(frozen=True)
class Score:
    people: int
    covered: int
    bodies: int  # bodies outside the ignore regions
    on_person: int

    @property
    def on_nobody(self) -> int:
        return self.bodies - self.on_person

    def __add__(self, other: "Score") -> "Score":
        return Score(self.people + other.people, self.covered + other.covered, self.bodies + other.bodies,
                     self.on_person + other.on_person)


def score(label: Label, heads: np.ndarray) -> Score:
    """Score bodies' projected Head joints ``heads`` (B, 2) against ``label``."""
    heads = np.asarray(heads, np.float64).reshape(-1, 2)
    ignored = np.zeros(len(heads), bool)
    for x0, y0, x1, y1 in label.ignore:
        ignored |= (heads[:, 0] >= x0) & (heads[:, 0] < x1) & (heads[:, 1] >= y0) & (heads[:, 1] < y1)
    if len(heads) == 0 or len(label.heads) == 0:
        return Score(len(label.heads), 0, int((~ignored).sum()), 0)
    distance = np.linalg.norm(label.heads[:, None] - heads[None], axis=-1)
    cost = np.where(distance <= label.face_width, distance, 1e9)
    rows, cols = linear_sum_assignment(cost)
    covered = int((cost[rows, cols] < 1e9).sum())
    near = distance.min(axis=0) <= label.face_width  # on a labelled person, inside an ignore box or not
    return Score(len(label.heads), covered, int((near | ~ignored).sum()), int(near.sum()))


def head_centres(result) -> np.ndarray:
    """(B, 2) pixels: each body's head centre in a result file (an open ``np.load``), projected. The rest head's
    centre (box of the vertices skinned mostly to the Head joint) moves rigidly with that joint."""
    import torch

    from backend.body.kinematics import forward_kinematics
    from backend.body.rotations import axis_angle_to_matrix

    track = np.searchsorted(result["track_id"], result["row_track"])
    rest_vertices, rest_joints = result["rest_vertices"][track], result["rest_joints"][track]
    head = result["skin_weights"].argmax(1) == HEAD_JOINT
    centre = 0.5 * (rest_vertices[:, head].max(1) + rest_vertices[:, head].min(1))  # (B, 3)
    rotmats = axis_angle_to_matrix(torch.as_tensor(result["poses"], dtype=torch.float64))
    _, transforms = forward_kinematics(rotmats, torch.as_tensor(rest_joints, dtype=torch.float64),
                                       result["parents"].tolist())
    t = transforms[:, HEAD_JOINT].numpy()
    points = np.einsum("bij,bj->bi", t[:, :3, :3], centre) + t[:, :3, 3] + result["transl"]
    (fx, fy), (cx, cy) = result["focal_length"], result["principal_point"]
    return np.stack([fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy], -1)


def load_labels(path: Path = DEFAULT_LABELS) -> dict[str, Label]:
    entries = json.loads(Path(path).read_text())
    return {name: Label.from_json(entry) for name, entry in entries.items() if not name.startswith("_")}


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Run:
    score: Score
    seconds: float


def evaluate(labels: dict[str, Label], data: Path, code: Path = REPO_ROOT, extra: list[str] | None = None
             ) -> dict[str, Run]:
    """Reconstruct every labelled picture with the code at ``code`` and score it."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="troupe-eval-photos-") as tmp:
        for name, label in labels.items():
            source, frame = picture(name, data, Path(tmp))
            result = Path(tmp) / "result.npz"
            seconds = reconstruct(source, result, frame, code, extra or [])
            with np.load(result, allow_pickle=False) as npz:
                heads = head_centres(npz)
            out[name] = Run(score(label, heads), seconds)
    return out


def picture(name: str, data: Path, tmp: Path) -> tuple[Path, int | None]:
    """The input file and frame (None: a still) of a label's name; the collage is built in ``tmp``."""
    if name == COLLAGE:
        return write_collage(data, tmp / "collage.png"), None
    if VARIANT_MARK in name:
        file, _, variant = name.partition(VARIANT_MARK)
        return write_variant(data / file, VARIANTS[variant], tmp), None
    file, _, frame = name.partition("#")
    return data / file, (int(frame) if frame else None)


def reconstruct(source: Path, result: Path, frame: int | None, code: Path, extra: list[str]) -> float:
    """Seconds the command line takes to reconstruct ``source`` (one frame of it) with the code at ``code``;
    the process start-up (imports, model loading) is measured too: it is part of what a user waits for."""
    source, result = Path(source).resolve(), Path(result).resolve()  # the command runs in another folder
    command = [sys.executable, "-m", "backend", "reconstruct", str(source), "-o", str(result), "--quiet", *extra]
    if frame is not None:
        command += ["--start", str(frame), "--end", str(frame)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=code, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"reconstructing {source} with the code at {code} failed: {done.stderr.strip()[-500:]}")
    return seconds


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A temporary checkout of ``revision`` of this repository (git worktree), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="troupe-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], cwd=REPO_ROOT, check=True,
                   capture_output=True, text=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO_ROOT, capture_output=True)


# ---------------------------------------------------------------------------------------------- the collage


def collage_label(labels: dict[str, Label], data: Path) -> Label:
    """Labels of the collage: each tile's heads moved to where the tile lands."""
    heads, widths = [], []
    for (x0, y0, scale), name in _tiles(data):
        heads.append(labels[name].heads * scale + [x0, y0])
        widths.append(labels[name].face_width * scale)
    return Label(np.concatenate(heads), float(np.mean(widths)), np.zeros((0, 4)))


def write_collage(data: Path, target: Path) -> Path:
    import cv2

    tiles = _tiles(data)
    width = max(x0 + int(round(cv2.imread(str(data / n)).shape[1] * s)) for (x0, _, s), n in tiles)
    height = max(y0 + int(round(cv2.imread(str(data / n)).shape[0] * s)) for (_, y0, s), n in tiles)
    canvas = np.zeros((height, width, 3), np.uint8)
    for (x0, y0, scale), name in tiles:
        image = cv2.imread(str(data / name))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas[y0 : y0 + image.shape[0], x0 : x0 + image.shape[1]] = image
    cv2.imwrite(str(target), canvas)
    return target


def _tiles(data: Path) -> list[tuple[tuple[int, int, float], str]]:
    """((x0, y0, scale), name) of each collage tile: a 2 x 3 grid of cells 800 x 533 px."""
    import cv2

    cell_w, cell_h = 800, 533
    out = []
    for r, row in enumerate(COLLAGE_GRID):
        for c, name in enumerate(row):
            h, w = cv2.imread(str(data / name)).shape[:2]
            scale = min(cell_w / w, cell_h / h)
            out.append(((c * cell_w, r * cell_h, scale), name))
    return out


# ---------------------------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A copy of a photo, mirrored left-right and/or rescaled, optionally re-encoded as a lossy JPEG."""

    mirror: bool = False
    scale: float = 1.0
    jpeg_quality: int | None = None

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the copy of a ``width`` x ``height`` picture (as ``cv2.resize`` rounds it)."""
        return int(round(width * self.scale)), int(round(height * self.scale))

    def edges(self, x: np.ndarray, y: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-edge coordinates (pixel i spans [i, i + 1)) moved into the copy of a ``width``-wide picture."""
        x = width - x if self.mirror else x
        return x * self.scale, y * self.scale

    def points(self, points: np.ndarray, width: int) -> np.ndarray:
        """(N, 2) pixel-centre points (pixel i's centre is i) moved into the copy."""
        points = np.asarray(points, np.float64).reshape(-1, 2) + 0.5
        return np.stack(self.edges(points[:, 0], points[:, 1], width), -1) - 0.5

    def unpoints(self, points: np.ndarray, width: int) -> np.ndarray:
        """The inverse of ``points``: points of the copy back on the original picture."""
        points = (np.asarray(points, np.float64).reshape(-1, 2) + 0.5) / self.scale
        x = width - points[:, 0] if self.mirror else points[:, 0]
        return np.stack([x, points[:, 1]], -1) - 0.5

    def boxes(self, boxes: np.ndarray, width: int) -> np.ndarray:
        """(K, 4) half-open boxes x0, y0, x1, y1 moved into the copy (still x0 <= x1: a mirror swaps the sides)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        x, y = self.edges(boxes[:, [0, 2]], boxes[:, [1, 3]], width)
        return np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], -1)

    def label(self, label: Label, width: int) -> Label:
        return Label(self.points(label.heads, width), label.face_width * self.scale,
                     self.boxes(label.ignore, width))


VARIANTS = {"mirror": Variant(mirror=True), "x0.6": Variant(scale=0.6), "x1.6": Variant(scale=1.6),
            "mirror-q40": Variant(mirror=True, jpeg_quality=40)}


def variant_labels(labels: dict[str, Label], data: Path) -> dict[str, Label]:
    """``labels`` with each still photo followed by its variants (``NAME~VARIANT``); clip frames are left as
    they are (a frame is read from its clip, not from a picture the variant could be written to)."""
    import cv2

    out = {}
    for name, label in labels.items():
        out[name] = label
        if "#" in name or name == COLLAGE or VARIANT_MARK in name:
            continue
        width = cv2.imread(str(data / name)).shape[1]
        for key, variant in VARIANTS.items():
            out[f"{name}{VARIANT_MARK}{key}"] = variant.label(label, width)
    return out


def write_variant(source: Path, variant: Variant, tmp: Path) -> Path:
    """Write ``variant`` of the photo ``source`` into ``tmp`` (lossless PNG unless the variant is a JPEG)."""
    import cv2

    image = cv2.imread(str(source))
    if image is None:
        raise FileNotFoundError(f"cannot read the picture {source}")
    if variant.mirror:
        image = cv2.flip(image, 1)
    if variant.scale != 1.0:
        size = variant.size(image.shape[1], image.shape[0])
        interpolation = cv2.INTER_AREA if variant.scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(image, size, interpolation=interpolation)
    if variant.jpeg_quality is not None:
        target = tmp / "variant.jpg"
        cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, variant.jpeg_quality])
    else:
        target = tmp / "variant.png"
        cv2.imwrite(str(target), image)
    return target


# ---------------------------------------------------------------------------------------------- report


def format_table(current: dict[str, Run], baseline: dict[str, Run] | None = None, label: str = "baseline") -> str:
    """One row per picture: people, covered, bodies on a person and on nobody, seconds (baseline first)."""
    w = max([26, *map(len, current)])  # the names of the variants are longer
    lines = [f"{'picture':{w}s} {'people':>6s}  " + ("  ".join(f"{h:^37s}" for h in ([label] if baseline else [])
                                                        + ["this code"]))]
    sub = f"{'covered':>9s} {'on person':>10s} {'on nobody':>9s} {'s':>6s}"
    lines.append(" " * (w + 9) + "  ".join([sub] * (2 if baseline else 1)))
    for name, run in current.items():
        cells = ([_cells(baseline[name])] if baseline else []) + [_cells(run)]
        lines.append(f"{name:{w}s} {run.score.people:6d}  " + "  ".join(cells))
    originals = [name for name in current if VARIANT_MARK not in name]
    variants = [name for name in current if VARIANT_MARK in name]
    for total, names in (("all", originals), ("variants", variants)):
        if not names:
            continue
        now = sum((current[n].score for n in names), Score(0, 0, 0, 0))
        base = sum((baseline[n].score for n in names), Score(0, 0, 0, 0)) if baseline else None
        totals = ([_totals(base)] if baseline else []) + [_totals(now)]
        lines.append(f"{total:{w}s} {now.people:6d}  " + "  ".join(totals))
    return "\n".join(lines)


def _cells(run: Run) -> str:
    s = run.score
    return f"{s.covered:4d}/{s.people:<4d} {s.on_person:5d}/{s.bodies:<4d} {s.on_nobody:9d} {run.seconds:6.1f}"


def _totals(s: Score) -> str:
    covered = 100.0 * s.covered / max(s.people, 1)
    on_person = 100.0 * s.on_person / max(s.bodies, 1)
    return f"{covered:8.0f}% {on_person:9.0f}% {s.on_nobody:9d} {'':6s}"


# ---------------------------------------------------------------------------------------------- a whole clip


@dataclass
class ClipRun:
    frames: int
    seconds: float
    observed: float  # share of the body-frames Blender shows that were seen, not bridged
    body_frames: int
    people_per_frame: float


def evaluate_clip_starts(source: Path, starts: int, code: Path = REPO_ROOT) -> list[ClipRun]:
    """The clip reconstructed from each of its first ``starts`` frames to its end. Each tracked person's next crop
    comes from their landmarks, so differences of 1e-5 (another start, other float rounding) grow frame by frame
    into other readings of people who overlap: on the dribble clip the observed share moves by 1-2 points from one
    start to the next, and one run cannot tell a change of that size from chance."""
    return [evaluate_clip(source, code, ["--start", str(start)] if start else []) for start in range(starts)]


def evaluate_clip_pairs(source: Path, starts: int, baseline: Path) -> tuple[list[ClipRun], list[ClipRun]]:
    """(this code's runs, ``baseline``'s runs) of :func:`evaluate_clip_starts`, interleaved start by start with
    the side that goes first alternating: these machines' speed drifts by 10-30 % over minutes, and a whole side
    run after the other took the drift for a difference between the codes."""
    current: list[ClipRun] = []
    base: list[ClipRun] = []
    for start in range(starts):
        extra = ["--start", str(start)] if start else []
        sides = [(current, REPO_ROOT), (base, baseline)]
        for runs, code in sides if start % 2 else sides[::-1]:
            runs.append(evaluate_clip(source, code, extra))
    return current, base


def evaluate_clip(source: Path, code: Path = REPO_ROOT, extra: list[str] | None = None) -> ClipRun:
    """Reconstruct a whole clip; frames per second and how much of what Blender shows was observed. Result
    files without ``observed`` (older code) show every row observed, but interpolate across every gap: their
    body-frames count the frames Blender interpolates through, unobserved."""
    with tempfile.TemporaryDirectory(prefix="troupe-eval-clip-") as tmp:
        result = Path(tmp) / "result.npz"
        seconds = reconstruct(source, result, None, code, extra or [])
        with np.load(result, allow_pickle=False) as npz:
            frames, tracks = npz["row_frame"], npz["row_track"]
            observed = npz["observed"] if "observed" in npz.files else None
            num_frames = int(npz["num_frames"])
    if observed is None:  # old files: Blender showed each track from its first to its last row
        shown = sum(int(frames[tracks == t].max() - frames[tracks == t].min() + 1) for t in np.unique(tracks))
        seen = len(frames)
    else:
        shown, seen = len(frames), int(observed.sum())
    return ClipRun(num_frames, seconds, seen / max(shown, 1), shown, shown / max(num_frames, 1))


def format_clip(name: str, current: list[ClipRun], baseline: list[ClipRun] | None = None) -> str:
    """One line per side; with several starts, each start's observed share and their mean."""
    rows = ([("baseline", baseline)] if baseline else []) + [("this code", current)]
    starts = f", from each of its first {len(current)} frames" if len(current) > 1 else ""
    lines = [f"{name}: {current[0].frames} frames{starts}"]
    for label, runs in rows:
        frames, seconds = sum(r.frames for r in runs), sum(r.seconds for r in runs)
        shares = " / ".join(f"{100 * r.observed:.1f}" for r in runs)
        mean = f" (mean {100 * np.mean([r.observed for r in runs]):.1f}%)" if len(runs) > 1 else ""
        lines.append(f"  {label:10s} {frames / seconds:5.2f} frames/s ({seconds:.0f} s), "
                     f"{np.mean([r.people_per_frame for r in runs]):.1f} bodies shown per frame, {shares}%{mean} of "
                     f"the {' / '.join(str(r.body_frames) for r in runs)} body-frames shown observed")
    if baseline:
        ratio = sum(r.seconds for r in baseline) / sum(r.seconds for r in current)
        lines.append(f"  speed ratio this code / baseline: {ratio:.2f}x")
    return "\n".join(lines)
