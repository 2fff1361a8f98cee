"""Body-pose sampler with anatomical limits and joint correlations (no motion-capture data is available).

Poses are drawn as per-joint Euler angles ``(x, y, z)`` in the joint's parent frame, composed as
``R = Rx(x) @ Ry(y) @ Rz(z)``, in the SMPL/open-body rest frame (T-pose, y up, facing +z). Conventions (checked
on the open body): flexing a hip or a shoulder forward is ``-x``, bending a knee is ``+x``, bending the spine or
the neck forward is ``+x``, lowering the left arm is ``-z`` (right ``+z``), bending the left elbow is ``-y``
(right ``+y``). Right-side limits mirror the left ones as ``(x, -y, -z)``.

Correlations come from *activity modes* that couple joints, plus independent jitter:

* ``stand``: arms mostly down, small asymmetric leg and torso variation;
* ``walk`` / ``run``: one gait phase drives both legs in antiphase, knee flexion follows the swing, the arms
  swing opposite to the legs; running adds forward lean and bent elbows;
* ``sit`` / ``squat``: hip flexion and knee flexion together (knee >= 0.7 x hip), torso upright or leaning;
* ``reach``: one or both arms raised forward, sideways or overhead, elbow bend anticorrelated with reach;
* ``bend``: forward torso flexion spread over the three spine joints, hips flexing with it, arms hanging.

Every sample is clipped to ``LIMITS`` afterwards, so the limits below hold for all poses (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.body.rotations import matrix_to_axis_angle

# Left-side / central joint limits in radians: joint -> ((lo_x, hi_x), (lo_y, hi_y), (lo_z, hi_z)).
_LEFT_LIMITS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((-2.2, 0.5), (-0.5, 0.6), (-0.3, 0.8)),  # left hip: flexion -x, abduction +z, twist y
    3: ((-0.35, 0.6), (-0.35, 0.35), (-0.3, 0.3)),  # spine1: forward +x, twist y, side bend z
    4: ((0.0, 2.4), (-0.05, 0.05), (-0.05, 0.05)),  # left knee: bends one way only, never hyper-extended
    6: ((-0.3, 0.5), (-0.3, 0.3), (-0.25, 0.25)),  # spine2
    7: ((-0.6, 0.6), (-0.25, 0.25), (-0.3, 0.3)),  # left ankle
    9: ((-0.3, 0.5), (-0.3, 0.3), (-0.25, 0.25)),  # spine3
    10: ((-0.3, 0.3), (-0.05, 0.05), (-0.05, 0.05)),  # left toes
    12: ((-0.5, 0.7), (-0.6, 0.6), (-0.4, 0.4)),  # neck
    13: ((-0.15, 0.15), (-0.2, 0.2), (-0.25, 0.4)),  # left collar: shrug +z
    15: ((-0.4, 0.5), (-0.6, 0.6), (-0.35, 0.35)),  # head
    16: ((-2.0, 0.8), (-1.3, 0.6), (-1.45, 1.35)),  # left shoulder: forward -x, forward (horizontal) -y, down -z
    18: ((-0.6, 0.6), (-2.5, 0.0), (-0.1, 0.1)),  # left elbow: bends with -y only; x = forearm twist
    20: ((-0.8, 0.8), (-0.5, 0.5), (-1.0, 1.0)),  # left wrist
    22: ((-0.2, 0.2), (-0.2, 0.2), (-0.3, 0.3)),  # left hand
}
_MIRROR = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}


def _build_limits() -> np.ndarray:
    limits = np.zeros((24, 3, 2))  # joint 0 (global orientation) is set by the scene, not sampled here
    for joint, lim in _LEFT_LIMITS.items():
        limits[joint] = lim
        if joint in _MIRROR:
            x, y, z = lim
            limits[_MIRROR[joint]] = (x, (-y[1], -y[0]), (-z[1], -z[0]))
    return limits


LIMITS = _build_limits()  # (24, 3, 2) lo/hi per joint and Euler axis; joint 0 unused (zeros)
MODES = ("stand", "walk", "run", "sit", "squat", "reach", "bend")
MODE_WEIGHTS = np.array([0.22, 0.22, 0.1, 0.12, 0.07, 0.15, 0.12])
# Independent jitter (std, radians) on top of a mode, per joint and axis (before clipping).
_JITTER = np.full((24, 3), 0.08)
_JITTER[[4, 5], 1:] = 0.0
_JITTER[[18, 19], 2] = 0.0
_JITTER[[20, 21]] = 0.3
_JITTER[[12, 15]] = 0.2


def euler_to_matrix(euler: torch.Tensor) -> torch.Tensor:
    """(..., 3) angles -> (..., 3, 3) rotation Rx(x) @ Ry(y) @ Rz(z)."""
    c, s = torch.cos(euler), torch.sin(euler)
    one, zero = torch.ones_like(c[..., 0]), torch.zeros_like(c[..., 0])

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    rx = mat([[one, zero, zero], [zero, c[..., 0], -s[..., 0]], [zero, s[..., 0], c[..., 0]]])
    ry = mat([[c[..., 1], zero, s[..., 1]], [zero, one, zero], [-s[..., 1], zero, c[..., 1]]])
    rz = mat([[c[..., 2], -s[..., 2], zero], [s[..., 2], c[..., 2], zero], [zero, zero, one]])
    return rx @ ry @ rz


@dataclass
class PoseBatch:
    euler: np.ndarray  # (N, 24, 3) sampled Euler angles, inside LIMITS (joint 0 zero)
    mode: np.ndarray  # (N,) index into MODES

    def rotmats(self) -> torch.Tensor:
        """(N, 24, 3, 3) local rotations; joint 0 is the identity (the scene sets the global orientation)."""
        return euler_to_matrix(torch.as_tensor(self.euler, dtype=torch.float32))

    def axis_angle(self) -> np.ndarray:
        return matrix_to_axis_angle(self.rotmats().double()).numpy()


def _mirror(e: np.ndarray, left: int, value: tuple[float, float, float]) -> None:
    """Write ``value`` (left-side angles) to joint ``left``'s mirror as (x, -y, -z)."""
    e[:, _MIRROR[left]] = np.stack([value[0], -value[1], -value[2]], -1)


def sample_body_poses(rng: np.random.Generator, n: int, modes: np.ndarray | None = None) -> PoseBatch:
    """``n`` body poses (see the module docstring); ``modes`` forces the activity of each sample."""
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    if modes is None:
        modes = rng.choice(len(MODES), size=n, p=MODE_WEIGHTS / MODE_WEIGHTS.sum())
    e = np.zeros((n, 24, 3))
    # arms mostly down by default, elbows slightly bent, legs straight-ish
    for left, sign in ((16, 1.0), (17, -1.0)):
        e[:, left, 2] = sign * u(-1.4, -0.9)
        e[:, left, 0] = u(-0.3, 0.2)
    e[:, 18, 1], e[:, 19, 1] = -u(0.0, 0.6), u(0.0, 0.6)
    phase = u(0, 2 * np.pi)
    for m, name in enumerate(MODES):
        idx = np.flatnonzero(modes == m)
        k = len(idx)
        if k == 0:
            continue
        r = lambda lo, hi: rng.uniform(lo, hi, k)  # noqa: E731,B023
        sub = e[idx]
        if name in ("walk", "run"):
            amp = r(0.2, 0.55) if name == "walk" else r(0.5, 1.0)
            ph = phase[idx]
            swing = amp * np.sin(ph)
            sub[:, 1, 0], sub[:, 2, 0] = -swing, swing  # legs in antiphase (flexion is -x)
            base_knee = r(0.0, 0.2) if name == "walk" else r(0.3, 0.8)
            gain = 0.8 if name == "walk" else 1.6
            sub[:, 4, 0] = base_knee + gain * amp * np.clip(np.sin(ph + 1.2), 0, None)  # knee follows the swing
            sub[:, 5, 0] = base_knee + gain * amp * np.clip(np.sin(ph + 1.2 + np.pi), 0, None)
            arm = 0.8 * amp * np.sin(ph)  # arms opposite to the legs: left arm forward when right leg forward
            sub[:, 16, 0], sub[:, 17, 0] = arm, -arm  # left arm back (+x) while the left leg is forward
            if name == "run":
                sub[:, 18, 1], sub[:, 19, 1] = -r(1.0, 1.9), r(1.0, 1.9)
                sub[:, 3, 0] = r(0.1, 0.35)
        elif name in ("sit", "squat"):
            hip = -r(1.2, 1.8) if name == "sit" else -r(1.6, 2.2)
            for j in (1, 2):
                sub[:, j, 0] = hip + rng.normal(0, 0.15, k)
                sub[:, j, 2] = (1 if j == 1 else -1) * r(-0.05, 0.4)
            knee = -hip * r(0.7, 1.15) if name == "sit" else -hip * r(1.0, 1.2)
            sub[:, 4, 0], sub[:, 5, 0] = knee + rng.normal(0, 0.1, k), knee + rng.normal(0, 0.1, k)
            sub[:, 7, 0] = sub[:, 8, 0] = r(-0.2, 0.5) if name == "sit" else r(0.2, 0.6)
            sub[:, 3, 0] = r(-0.1, 0.4) if name == "sit" else r(0.2, 0.5)
            sub[:, 18, 1], sub[:, 19, 1] = -r(0.3, 1.6), r(0.3, 1.6)
        elif name == "reach":
            for left in (16, 17):
                sign = 1.0 if left == 16 else -1.0
                raise_it = rng.random(k) < (0.85 if left == 16 else 0.55)
                kind = rng.integers(0, 3, k)  # 0 forward, 1 sideways, 2 overhead
                z = np.where(kind == 0, r(-1.3, -0.4), np.where(kind == 1, r(-0.5, 0.4), r(0.6, 1.3)))
                x = np.where(kind == 0, -r(0.6, 1.6), r(-0.5, 0.3))
                y = np.where(kind == 0, -r(0.0, 0.6), r(-0.3, 0.3))
                sub[:, left, 0] = np.where(raise_it, x, sub[:, left, 0])
                sub[:, left, 1] = np.where(raise_it, sign * y, sub[:, left, 1])
                sub[:, left, 2] = np.where(raise_it, sign * z, sub[:, left, 2])
                reach = np.abs(x) + np.clip(z * sign, 0, None)  # stretched arms bend their elbows less
                elbow = np.clip(r(0.0, 1.8) - 0.5 * reach, 0.0, None)
                sub[:, left + 2, 1] = np.where(raise_it, -sign * elbow, sub[:, left + 2, 1])
            sub[:, 12, 0] = r(-0.4, 0.1)  # looking up a little
        elif name == "bend":
            total = r(0.5, 1.4)
            w = rng.dirichlet([2, 2, 2], k)
            sub[:, 3, 0], sub[:, 6, 0], sub[:, 9, 0] = (total[:, None] * w).T * 1.0
            sub[:, 1, 0] = sub[:, 2, 0] = -r(0.2, 1.2) * total / 1.4
            sub[:, 16, 0] = sub[:, 17, 0] = -total * r(0.5, 1.0)  # hanging arms follow the torso
            sub[:, 12, 0] = -r(0.0, 0.5)
        else:  # stand
            sub[:, 1, 2], sub[:, 2, 2] = r(-0.05, 0.3), -r(-0.05, 0.3)
            sub[:, 1, 0], sub[:, 2, 0] = -r(-0.2, 0.3), -r(-0.2, 0.3)
            sub[:, 4, 0], sub[:, 5, 0] = r(0.0, 0.3), r(0.0, 0.3)
        e[idx] = sub
    e += rng.normal(0.0, 1.0, e.shape) * _JITTER
    e[:, 0] = 0.0
    e = np.clip(e, LIMITS[..., 0], LIMITS[..., 1])
    return PoseBatch(e, modes)
