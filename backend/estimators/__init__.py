"""Stage 3, estimation: every estimator (``mediapipe_fit``, ``romp``, ``bev``, ``pare``, ``lasor``) behind one
interface (``base``), created by name (``registry``) from what the ``catalog`` declares (standard library only,
so ``doctor``, ``--help`` and the add-on read it without torch); ``weights`` installs official checkpoints.

This file imports nothing, so reading the catalog never loads torch.
"""
