"""Stage 1, sources: frames from an image, an image folder or a video (``frames``), and shot cuts (``shots``)."""

from backend.sources.frames import Source, SourceError, SourceInfo, open_source, read_image

__all__ = ["Source", "SourceError", "SourceInfo", "open_source", "read_image"]
