"""The "ETH zürich" word mark as a 2-D base distribution, drawn from a font matplotlib ships.

The letters are rasterised once per process into a boolean mask; sampling then picks filled
pixels at random and jitters each point uniformly inside its pixel, so the density is flat over
the letters and drawing a fresh batch every training step costs a few microseconds per point.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from ._checks import MAX_SAMPLES, check_positive_int, make_generator

LOGO_TEXT = "ETH zürich"
LOGO_HALF_WIDTH = 5.0          # the mark spans x in [-5, 5]
_PIXELS_PER_UNIT = 40          # raster resolution: 400 pixels across


@functools.lru_cache(maxsize=1)
def logo_mask() -> tuple[np.ndarray, float, float, float]:
    """Rasterise the word mark once; returns (mask (H, W) bool, x_left, y_bottom, pixel size)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    font = FontProperties(family="DejaVu Sans", weight="bold")
    path = TextPath((0.0, 0.0), LOGO_TEXT, size=1.0, prop=font)
    vertices = path.vertices
    (x_min, y_min), (x_max, y_max) = vertices.min(axis=0), vertices.max(axis=0)
    scale = 2 * LOGO_HALF_WIDTH / (x_max - x_min)
    path = path.transformed(Affine2D().scale(scale).translate(-(x_min + x_max) / 2 * scale,
                                                              -(y_min + y_max) / 2 * scale))
    height = (y_max - y_min) * scale
    pixel = 1.0 / _PIXELS_PER_UNIT
    n_x = int(round(2 * LOGO_HALF_WIDTH / pixel))
    n_y = int(np.ceil(height / pixel))
    x_left, y_bottom = -LOGO_HALF_WIDTH, -n_y * pixel / 2
    xs = x_left + (np.arange(n_x) + 0.5) * pixel
    ys = y_bottom + (np.arange(n_y) + 0.5) * pixel
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    # TextPath holds several closed sub-paths (letter outlines and holes); even-odd filling
    # via contains_points on each polygon and xor keeps the holes of 'e', 'h', 'r' open.
    inside = np.zeros(len(grid), dtype=bool)
    for polygon in path.to_polygons(closed_only=True):
        inside ^= Path(polygon).contains_points(grid)
    mask = inside.reshape(n_y, n_x)
    mask.setflags(write=False)
    return mask, x_left, y_bottom, pixel


@functools.lru_cache(maxsize=1)
def _filled_pixel_corners() -> torch.Tensor:
    """Lower-left corners of the filled pixels: float32 (P, 2)."""
    mask, x_left, y_bottom, pixel = logo_mask()
    rows, cols = np.nonzero(mask)
    corners = np.stack([x_left + cols * pixel, y_bottom + rows * pixel], axis=1)
    return torch.from_numpy(corners.astype(np.float32))


def sample_logo(n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Points spread uniformly over the letters: float32 tensor (n_samples, 2)."""
    corners = _filled_pixel_corners()
    pixel = logo_mask()[3]
    index = torch.randint(0, corners.shape[0], (n_samples,), generator=generator)
    jitter = torch.rand(n_samples, 2, generator=generator) * pixel
    return corners[index] + jitter


def load_eth_z_logo_data(n_samples: int = 1000, seed=None, generator: torch.Generator | None = None) -> np.ndarray:
    """Sample the "ETH zürich" word mark: float32 array (n_samples, 2), x in [-5, 5], about 6:1 wide.

    No file is read: the mark is rasterised from a font matplotlib ships, so this works from any
    working directory. ``seed`` or ``generator`` make the draw reproducible.
    """
    n_samples = check_positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    return sample_logo(n_samples, make_generator(seed, generator)).numpy()
