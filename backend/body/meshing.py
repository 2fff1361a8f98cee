"""Turning a signed distance field into a clean closed triangle mesh, and small mesh utilities.

Uses scikit-image's marching cubes (Lewiner), whose output is a closed 2-manifold when the surface stays
inside the grid, then Taubin smoothing, which removes the grid's terraces without shrinking the body.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _components


def extract_surface(
    sdf: Callable[[np.ndarray], np.ndarray], lower: np.ndarray, upper: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of ``sdf`` over the box [lower, upper] as (vertices (V,3), faces (F,3)) facing outwards."""
    from skimage.measure import marching_cubes  # optional heavy import, only needed to (re)generate

    axes = [np.arange(lo, hi + spacing, spacing) for lo, hi in zip(lower, upper, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    values = sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])
    values[values == 0.0] = 1e-9  # a sample exactly on the surface would create degenerate triangles
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(spacing,) * 3, method="lewiner")
    verts = verts.astype(np.float64) + np.asarray(lower, dtype=np.float64)
    faces = faces.astype(np.int64)
    if signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()
    return verts, faces


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume; positive when the faces are wound counter-clockwise seen from outside."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def edges_of(faces: np.ndarray) -> np.ndarray:
    """Every directed half-edge (3F, 2) of the faces."""
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def adjacency(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency matrix."""
    e = edges_of(faces)
    data = np.ones(len(e), dtype=np.float64)
    a = sp.coo_matrix((data, (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices)).tocsr()
    a = a + a.T
    a.data[:] = 1.0
    return a


def uniform_laplacian(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Row-normalised adjacency: (L @ x)[i] is the mean of x over the neighbours of vertex i."""
    a = adjacency(faces, num_vertices)
    degree = np.asarray(a.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(degree, 1.0)) @ a


def taubin_smooth(
    vertices: np.ndarray, faces: np.ndarray, iterations: int = 10, lam: float = 0.5, mu: float = -0.53
) -> np.ndarray:
    """Taubin's lambda/mu smoothing: a low-pass filter on the surface that keeps its volume."""
    mean = uniform_laplacian(faces, len(vertices))
    v = vertices.copy()
    for _ in range(iterations):
        v = v + lam * (mean @ v - v)
        v = v + mu * (mean @ v - v)
    return v


def diffuse(values: np.ndarray, faces: np.ndarray, iterations: int, rate: float = 0.5) -> np.ndarray:
    """Blur per-vertex values along the surface (not through the air between arm and torso)."""
    mean = uniform_laplacian(faces, len(values))
    out = values.copy()
    for _ in range(iterations):
        out = (1.0 - rate) * out + rate * (mean @ out)
    return out


def is_closed_manifold(faces: np.ndarray) -> bool:
    """True when every undirected edge is used by exactly two faces, once in each direction."""
    directed = edges_of(faces)
    if len(np.unique(directed, axis=0)) != len(directed):
        return False
    undirected = np.sort(directed, axis=1)
    _, counts = np.unique(undirected, axis=0, return_counts=True)
    return bool(np.all(counts == 2))


def euler_characteristic(faces: np.ndarray) -> int:
    """V - E + F over the vertices the faces use (2 for one closed sphere-like surface)."""
    num_v = len(np.unique(faces))
    num_e = len(np.unique(np.sort(edges_of(faces), axis=1), axis=0))
    return num_v - num_e + len(faces)


def connected_components(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Component label of each vertex."""
    _, labels = _components(adjacency(faces, num_vertices), directed=False)
    return labels
