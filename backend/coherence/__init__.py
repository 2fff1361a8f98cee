"""Coherence: test-time refinement so people neither interpenetrate nor contradict the observed depth order."""

from backend.coherence.refine import CoherenceOptions, refine_clip, refine_people

__all__ = ["CoherenceOptions", "refine_clip", "refine_people"]
