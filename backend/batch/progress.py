"""What a batch shows while it runs and when it ends: one progress bar for the whole batch (clips done, frames,
people found, failures) and a summary table; ``batch --status`` prints the same table from the manifest."""

from __future__ import annotations

import sys
from typing import IO, Callable

from backend.batch.manifest import FAILED, Manifest


class ProgressBoard:
    """Frames done by the tasks under way, as they report them (a Ray actor in a batch: its workers call
    :meth:`report`, the driver reads :meth:`frames`). A retried task starts again from 0."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, int], int] = {}

    def report(self, name: str, chunk: int, frames: int, people: int) -> None:
        self._done[(name, chunk)] = frames

    def frames(self) -> dict[tuple[str, int], int]:
        return dict(self._done)


class BatchProgress:
    """A tqdm bar over the batch's clips on stderr, its counts in the postfix (disabled: no bar). ``listener``
    is told of every change (the service's progress events)."""

    def __init__(self, total: int, skipped: int, disabled: bool,
                 listener: Callable[["BatchProgress"], None] | None = None) -> None:
        self.total, self.finished = total, skipped  # clips: all, and those finished (done, failed or skipped)
        self.frames = self.people = self.failed = 0
        self.running_frames = 0  # frames done so far by the clips still under way
        self._listener = listener
        self._bar = None
        if not disabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=skipped, unit="clip", file=sys.stderr, dynamic_ncols=True)
            self._show()
        self._tell()

    @property
    def shown(self) -> bool:
        """Someone follows the counts (a bar or a listener): worth asking the tasks for their frames."""
        return self._bar is not None or self._listener is not None

    def clip_finished(self, frames: int, people: int, failed: bool) -> None:
        self.frames += frames
        self.people += people
        self.failed += int(failed)
        self.finished += 1
        if self._bar is not None:
            self._bar.update(1)
            self._show()
        self._tell()

    def frames_under_way(self, frames: int) -> None:
        """Frames done by the tasks under way; shown when they grow (when they shrink, a clip has just
        finished, and :meth:`clip_finished` shows its frames with the rest)."""
        grew = frames > self.running_frames
        self.running_frames = frames
        if grew and self._bar is not None:
            self._show()
        if grew:
            self._tell()

    def _tell(self) -> None:
        if self._listener is not None:
            self._listener(self)

    def _show(self) -> None:
        self._bar.set_postfix(frames=self.frames + self.running_frames, people=self.people, failed=self.failed,
                              refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def summary_table(manifest: Manifest, names: list[str] | None = None) -> str:
    """The clips (all, or ``names``) as an aligned table: status, frames, people, chunks, seconds, error."""
    names = list(manifest.clips) if names is None else names
    rows = [("clip", "status", "frames", "people", "chunks", "seconds", "error")]
    for name in names:
        entry = manifest.clips[name]
        error = f"{entry.error_code}: {entry.error}" if entry.status == FAILED else ""
        seconds = "" if entry.seconds is None else f"{entry.seconds:.1f}"
        rows.append((name, entry.status, str(entry.frames), str(entry.people), str(entry.chunks), seconds, error))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    counts = manifest.counts()
    lines.append(", ".join(f"{count} {status}" for status, count in counts.items() if count) or "no clips")
    return "\n".join(line.rstrip() for line in lines)


def print_status(manifest: Manifest, stream: IO[str]) -> None:
    print(f"batch in {manifest.folder} ({manifest.path.name})", file=stream)
    print(summary_table(manifest), file=stream)


__all__ = ["BatchProgress", "ProgressBoard", "print_status", "summary_table"]
