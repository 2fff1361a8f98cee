"""The pinhole camera (projection, intrinsics, translation solves) and the silhouette/depth renderer built on it.

One camera module for every stage, so points are projected one way with one depth clamp everywhere."""
