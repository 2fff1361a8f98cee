"""The one exception type of the body-model layer (defined with the other expected failures in backend.errors)."""

from __future__ import annotations

from backend.errors import BodyModelError

__all__ = ["BodyModelError"]
