"""Stage 5, tracking: identities across frames (``tracker``, with ``appearance`` as a soft cue), then each
track's motion smoothed (``smoothing``)."""

from backend.tracking.tracker import Track, Tracker, TrackerSettings

__all__ = ["Track", "Tracker", "TrackerSettings"]
