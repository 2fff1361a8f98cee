"""The batch manifest, ``troupe-batch.json`` beside the results: for every clip its input, the hash of the
options it was (or is being) reconstructed with, its status, error and timings.

It is what makes a batch resumable: a clip whose entry is ``done`` for the same options hash and the same input
(size and modification time) and whose result file is there is skipped by the next run; everything else is
redone. Only the batch's driver writes it, always atomically (``backend.runtime.atomic``), after every clip, so a killed
run leaves the manifest as it was after the last clip that finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from backend import __version__
from backend.errors import BatchError
from backend.runtime.atomic import atomic_path

MANIFEST_NAME = "troupe-batch.json"
FORMAT = "troupe-batch/1"
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


def options_hash(options: Mapping[str, Any]) -> str:
    """A short, stable hash of the reconstruction options (keys sorted, JSON): equal options, equal hash."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ClipEntry:
    """One clip's line in the manifest."""

    input: str
    result: str  # file name in the output folder
    options_hash: str
    fingerprint: dict[str, int] = field(default_factory=dict)  # backend.batch.inputs.input_fingerprint
    status: str = PENDING
    error_code: str | None = None
    error: str | None = None
    frames: int = 0
    people: int = 0
    chunks: int = 1
    started: float | None = None  # Unix time its first task was submitted
    finished: float | None = None  # Unix time its result was written (or its failure known)
    seconds: float | None = None  # time its tasks ran on workers, summed over its chunks
    worker: str | None = None  # host:pid of the (last) worker


@dataclass
class Manifest:
    folder: Path
    options: dict[str, Any] = field(default_factory=dict)
    clips: dict[str, ClipEntry] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        """The manifest in ``folder``; an empty one where there is none yet. A damaged manifest is an error
        (rather than silently redoing a whole batch)."""
        path = folder / MANIFEST_NAME
        if not path.exists():
            return cls(folder)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            clips = {name: ClipEntry(**entry) for name, entry in data["clips"].items()}
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise BatchError(f"the batch manifest {path} is unreadable ({exc}); move it away to start afresh") from None
        return cls(folder, data.get("options", {}), clips)

    def save(self) -> None:
        data = {"format": FORMAT, "troupe": __version__, "updated": time.time(), "options": self.options,
                "clips": {name: asdict(entry) for name, entry in self.clips.items()}}
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BatchError(f"cannot write the batch manifest {self.path}: {exc.strerror or exc}") from None

    def is_complete(self, name: str, options_hash: str, fingerprint: Mapping[str, int]) -> bool:
        """Whether ``name``'s result is done for these options and this input, and still there."""
        entry = self.clips.get(name)
        return (entry is not None and entry.status == DONE and entry.options_hash == options_hash
                and entry.fingerprint == dict(fingerprint) and (self.folder / entry.result).is_file())

    def counts(self) -> dict[str, int]:
        counts = {PENDING: 0, RUNNING: 0, DONE: 0, FAILED: 0}
        for entry in self.clips.values():
            counts[entry.status] = counts.get(entry.status, 0) + 1
        return counts


__all__ = ["DONE", "FAILED", "MANIFEST_NAME", "PENDING", "RUNNING", "ClipEntry", "Manifest", "options_hash"]
