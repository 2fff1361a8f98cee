"""The one exception type of the body-model layer."""

from __future__ import annotations


class BodyModelError(Exception):
    """A body model cannot be loaded or installed; the message is one line that names the file or model."""
