"""The rasterizer: index map and depth of simple boxes, gradients, and the scaled camera."""

from __future__ import annotations

import torch

from backend.evaluation.scenes import box_mesh
from backend.geometry.camera import Camera
from backend.geometry.render import rasterize

CAMERA = Camera(64, 48, 50.0, 50.0, 32.0, 24.0)


def _two_boxes(near_z: float = 4.0, far_z: float = 6.0):
    near = box_mesh(torch.tensor([-1.0, -1.0, near_z - 1]), torch.tensor([1.0, 1.0, near_z + 1]))
    far = box_mesh(torch.tensor([0.0, -1.0, far_z - 1]), torch.tensor([2.0, 1.0, far_z + 1]))
    return [near[0], far[0]], [near[1], far[1]]


def test_overlapping_boxes_give_index_map_and_depths() -> None:
    verts, faces = _two_boxes()
    frags = rasterize(verts, faces, CAMERA)
    index = frags.index_map
    # the near box's front face (z = 3) spans x in [-1, 1] -> columns 32 -/+ 16.7
    assert index[24, 20] == 0 and index[24, 44] == 0
    assert torch.allclose(frags.depth[0, 24, 20:45], torch.tensor(3.0))
    # right of the near box only the far box is seen; its front face is z = 5, x in [0, 2] -> columns 32..52
    assert index[24, 50] == 1 and torch.isclose(frags.depth[1, 24, 50], torch.tensor(5.0))
    # behind the near box the far box still has its own (amodal) depth and silhouette
    assert frags.silhouettes[1, 24, 40] and torch.isclose(frags.depth[1, 24, 40], torch.tensor(5.0))
    assert index[24, 2] == -1 and index[2, 32] == -1
    assert torch.isinf(frags.depth[:, 24, 2]).all()


def test_swapping_depths_swaps_the_index_map() -> None:
    verts, faces = _two_boxes(near_z=6.0, far_z=4.0)
    index = rasterize(verts, faces, CAMERA).index_map
    assert index[24, 40] == 1 and index[24, 25] == 0


def test_depth_is_differentiable_with_respect_to_vertices() -> None:
    verts, faces = _two_boxes()
    verts = [v.clone().requires_grad_(True) for v in verts]
    frags = rasterize(verts, faces, CAMERA)
    visible = torch.isfinite(frags.depth)
    frags.depth[visible].sum().backward()
    for v in verts:
        assert v.grad is not None and v.grad[:, 2].abs().sum() > 0
    # moving the whole near box back by 1 m adds 1 m to each of its covered pixels' depth
    frags0 = rasterize([verts[0].detach()], [faces[0]], CAMERA)
    shifted = rasterize([verts[0].detach() + torch.tensor([0.0, 0.0, 1.0])], [faces[0]], CAMERA)
    assert torch.isclose(shifted.depth[0, 24, 32], frags0.depth[0, 24, 32] + 1.0)


def test_batched_meshes_and_resized_camera() -> None:
    verts, faces = _two_boxes()
    stacked = torch.stack([verts[0], verts[0] + torch.tensor([0.0, 0.0, 1.0])])
    frags = rasterize(stacked, faces[0], CAMERA.resized(32))
    assert frags.depth.shape == (2, 24, 32)
    assert (frags.index_map[frags.silhouettes[0]] == 0).all()
    assert frags.silhouettes[0].sum() >= frags.silhouettes[1].sum() > 0
