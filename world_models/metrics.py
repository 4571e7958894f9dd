"""Image similarity for open-loop reports: SSIM next to MSE/PSNR.

MSE rewards a blurry mean frame; SSIM (Wang et al. 2004) compares local means, contrast and structure,
so a sharp frame with the right layout scores well even where pixels are slightly off.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Standard SSIM constants for images in [0, 1] (K1 = 0.01, K2 = 0.03) and an 11x11 Gaussian window, sigma 1.5.
_C1, _C2 = 0.01**2, 0.03**2
_WINDOW, _SIGMA = 11, 1.5


def _gaussian_window(channels: int) -> torch.Tensor:
    x = torch.arange(_WINDOW, dtype=torch.float64) - (_WINDOW - 1) / 2
    g = torch.exp(-(x**2) / (2 * _SIGMA**2))
    g = (g / g.sum()).float()
    return (g[:, None] * g[None, :]).expand(channels, 1, _WINDOW, _WINDOW).contiguous()


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean SSIM per image of two batches (N, H, W, C) with values in [0, 1] -> (N,).

    Computed per channel over valid 11x11 windows (no padding) and averaged, as skimage does with
    ``gaussian_weights=True``; 1.0 means identical.
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim needs two (N, H, W, C) batches of one shape, got {a.shape} and {b.shape}")
    x = torch.as_tensor(a, dtype=torch.float32).permute(0, 3, 1, 2)
    y = torch.as_tensor(b, dtype=torch.float32).permute(0, 3, 1, 2)
    window = _gaussian_window(x.shape[1])

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    score = ((2 * mx * my + _C1) * (2 * cov + _C2)) / ((mx**2 + my**2 + _C1) * (vx + vy + _C2))
    return score.mean((1, 2, 3)).numpy()
