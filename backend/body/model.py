"""BodyModel: one torch module for SMPL and the open body (shape blend shapes, pose blend shapes, FK, LBS).

Semantics are SMPL's (smplx ``lbs``): rest joints J(beta) = J_regressor @ (v_template + shapedirs @ beta),
joint 0 carries the global orientation and rotates about J_0, pose blend shapes (when present) are driven by
(R_j - I) of joints 1..23, then linear blend skinning, then translation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from backend.body.kinematics import forward_kinematics, linear_blend_skinning
from backend.body.rotations import axis_angle_to_matrix
from backend.body.skeleton import JOINT_NAMES, PARENTS

ArrayLike = np.ndarray | torch.Tensor


@dataclass
class BodyOutput:
    """Posed body. ``transforms`` (B, J, 4, 4) map rest-pose points (after pose blend shapes) to the posed,
    translated points: vertices == LBS(rest vertices, transforms, skin_weights)."""

    vertices: torch.Tensor
    joints: torch.Tensor
    rest_joints: torch.Tensor
    transforms: torch.Tensor


def _tensor(value: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value).to(dtype)


class BodyModel(torch.nn.Module):
    """A skinned body with SMPL's 24-joint skeleton; see the module docstring for the maths."""

    def __init__(
        self,
        name: str,
        v_template: ArrayLike,
        faces: ArrayLike,
        skin_weights: ArrayLike,
        shapedirs: ArrayLike,
        J_regressor: ArrayLike,  # noqa: N803 (SMPL's name)
        posedirs: ArrayLike | None = None,
        parents: Sequence[int] = PARENTS,
        joint_names: Sequence[str] = JOINT_NAMES,
        landmark_vertices: Mapping[str, int] | None = None,
        extra_regressors: Mapping[str, ArrayLike] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.name = name
        self.joint_names = list(joint_names)
        self.landmark_vertices = dict(landmark_vertices or {})
        self.register_buffer("v_template", _tensor(v_template, dtype))
        self.register_buffer("faces", _tensor(faces, torch.long))
        self.register_buffer("skin_weights", _tensor(skin_weights, dtype))
        self.register_buffer("shapedirs", _tensor(shapedirs, dtype))
        self.register_buffer("J_regressor", _tensor(J_regressor, dtype))
        self.register_buffer("posedirs", None if posedirs is None else _tensor(posedirs, dtype))
        self.register_buffer("parents", torch.as_tensor(list(parents), dtype=torch.long))
        self._parents = [int(p) for p in parents]
        self._extra_names = list(extra_regressors or {})
        for key, value in (extra_regressors or {}).items():
            self.register_buffer(f"extra_regressor_{key}", _tensor(value, dtype))
        self._check_shapes()

    def _check_shapes(self) -> None:
        v, j = self.num_vertices, self.num_joints
        expected = {
            "v_template": (v, 3), "skin_weights": (v, j), "J_regressor": (j, v),
            "shapedirs": (v, 3, self.num_betas), "parents": (j,),
        }
        if self.posedirs is not None:
            expected["posedirs"] = (v, 3, 9 * (j - 1))
        for key, shape in expected.items():
            if tuple(getattr(self, key).shape) != shape:
                raise ValueError(f"{self.name}: {key} has shape {tuple(getattr(self, key).shape)}, expected {shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.joint_names) != j:
            raise ValueError(f"{self.name}: faces must be (F, 3) and there must be {j} joint names")

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.J_regressor.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def extra_regressors(self) -> dict[str, torch.Tensor]:
        """Named (K, V) regressors of extra points (e.g. H36M joints), possibly empty."""
        return {key: getattr(self, f"extra_regressor_{key}") for key in self._extra_names}

    def _pad_betas(self, betas: torch.Tensor) -> torch.Tensor:
        """Zero-pad shorter shape vectors; refuse longer ones rather than silently dropping coefficients."""
        extra = self.num_betas - betas.shape[-1]
        if extra < 0:
            raise ValueError(f"{self.name} has {self.num_betas} shape coefficients, got {betas.shape[-1]}")
        return torch.nn.functional.pad(betas, (0, extra)) if extra else betas

    def shaped_vertices(self, betas: torch.Tensor) -> torch.Tensor:
        """Rest-pose vertices (..., V, 3) of shape ``betas`` (..., K)."""
        betas = self._pad_betas(betas.to(self.v_template.dtype))
        flat = self.shapedirs.reshape(-1, self.num_betas)
        return self.v_template + (betas @ flat.T).reshape((*betas.shape[:-1], self.num_vertices, 3))

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """J(beta) (..., 24, 3): the skeleton of shape ``betas`` in the rest pose."""
        return self.J_regressor @ self.shaped_vertices(betas)

    def _rotations(self, poses: torch.Tensor) -> torch.Tensor:
        """(..., 24, 3) axis-angle, (..., 72) axis-angle or (..., 24, 3, 3) matrices -> matrices."""
        j = self.num_joints
        if poses.ndim >= 3 and poses.shape[-3:] == (j, 3, 3):
            return poses
        if poses.shape[-1] == 3 * j:
            poses = poses.reshape((*poses.shape[:-1], j, 3))
        if poses.ndim >= 2 and poses.shape[-2:] == (j, 3):
            return axis_angle_to_matrix(poses)
        raise ValueError(f"poses must be (B, {j}, 3) axis-angle or (B, {j}, 3, 3) matrices, got {tuple(poses.shape)}")

    def forward(
        self, poses: torch.Tensor, betas: torch.Tensor | None = None, transl: torch.Tensor | None = None
    ) -> BodyOutput:
        """Pose the body: vertices (B, V, 3), joints (B, 24, 3) = FK(poses, J(betas)) + transl."""
        rotmats = self._rotations(poses.to(self.v_template.dtype))
        batch = rotmats.shape[:-3]
        if betas is None:
            betas = torch.zeros(self.num_betas, dtype=rotmats.dtype, device=rotmats.device)
        shaped = self.shaped_vertices(betas)
        shaped = shaped.expand(batch + shaped.shape[-2:])
        rest = self.J_regressor @ shaped
        if self.posedirs is not None:
            eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
            feature = (rotmats[..., 1:, :, :] - eye).reshape((*batch, -1))
            flat = self.posedirs.reshape(-1, self.posedirs.shape[-1])
            shaped = shaped + (feature @ flat.T).reshape(shaped.shape)
        joints, transforms = forward_kinematics(rotmats, rest, self._parents)
        vertices = linear_blend_skinning(shaped, transforms, self.skin_weights)
        if transl is not None:
            transl = transl.to(vertices.dtype)
            vertices = vertices + transl[..., None, :]
            joints = joints + transl[..., None, :]
            offset = torch.zeros((*transforms.shape[:-2], 4, 4), dtype=transl.dtype, device=transl.device)
            offset[..., :3, 3] = transl[..., None, :].expand(joints.shape)
            transforms = transforms + offset
        return BodyOutput(vertices=vertices, joints=joints, rest_joints=rest, transforms=transforms)

    @classmethod
    def from_arrays(
        cls,
        name: str,
        arrays: Mapping[str, np.ndarray],
        num_betas: int | None = None,
        landmark_vertices: Mapping[str, int] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> BodyModel:
        """Build from SMPL's array layout (v_template, f, weights, shapedirs, J_regressor, optional posedirs)."""
        shapedirs = arrays["shapedirs"]
        if num_betas is not None:
            shapedirs = shapedirs[..., :num_betas]
        posedirs = arrays.get("posedirs")
        return cls(
            name, arrays["v_template"], arrays["f"], arrays["weights"], shapedirs, arrays["J_regressor"],
            posedirs=posedirs, landmark_vertices=landmark_vertices, dtype=dtype,
        )
