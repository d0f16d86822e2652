"""Axis-angle to rotation matrices and the D2M-GAN 219-d AIST++ motion feature.

No SMPL body model is needed: the feature is root translation (smpl_trans / smpl_scaling)
followed by the 24 joint rotations as row-major 3x3 matrices (FACT/mint preprocessing).
"""
from __future__ import annotations

import numpy as np


def axis_angle_to_matrix(rotvec):
    """Rodrigues' formula, batched over leading axes: (..., 3) -> (..., 3, 3).

    R = I + sin(theta) K + (1 - cos(theta)) K^2 with theta = |r|, K the cross-product matrix
    of the unit axis r / theta (Rodrigues 1840). Near theta = 0 the Taylor forms
    sin(t)/t ~ 1 - t^2/6 and (1 - cos t)/t^2 ~ 1/2 - t^2/24 avoid dividing by zero.
    """
    r = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)[..., None, None]
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta ** 2 / 6.0, np.sin(safe) / safe)  # multiplies K (unnormalised)
    b = np.where(small, 0.5 - theta ** 2 / 24.0, (1.0 - np.cos(safe)) / safe ** 2)
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + a * k + b * (k @ k)


def aistpp_motion_features(smpl_poses, smpl_trans, smpl_scaling):
    """(N, 219) float32: trans / scaling (3) then 24 rotation matrices flattened (216)."""
    poses = np.asarray(smpl_poses, dtype=np.float64)
    n = poses.shape[0]
    if poses.shape[-1] != 72 and poses.shape[-2:] != (24, 3):
        raise ValueError(f"smpl_poses has shape {poses.shape}, expected (N, 72) or (N, 24, 3)")
    rot = axis_angle_to_matrix(poses.reshape(n, 24, 3)).reshape(n, 216)
    scale = float(np.asarray(smpl_scaling, dtype=np.float64).reshape(-1)[0])
    trans = np.asarray(smpl_trans, dtype=np.float64).reshape(n, 3) / scale
    return np.concatenate([trans, rot], axis=1).astype(np.float32)
