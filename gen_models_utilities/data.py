"""The data set of the chapter: a ring of Gaussian blobs, and facts about it."""
from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import MAX_SAMPLES, MAX_WIDTH, check_positive_int, check_real, make_generator

MAX_SIZE = 1e6                 # largest accepted radius and std: keeps points well inside float32

RING_RADIUS = 3.0
RING_STD = 0.25
RING_MODES = 8


def ring_mode_centers(n_modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """Centres of the ring's modes, evenly spaced on a circle: float32 (n_modes, 2).

    Mode k sits at angle 2*pi*k/n_modes, so mode 0 is on the positive x axis.
    """
    n_modes = check_positive_int("n_modes", n_modes, maximum=MAX_WIDTH)
    radius = check_real("radius", radius, low=0.0, high=MAX_SIZE, low_open=True)
    angles = 2 * math.pi * np.arange(n_modes) / n_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def create_ring_gaussians(n_samples: int = 1000, n_modes: int = RING_MODES, radius: float = RING_RADIUS,
                          std: float = RING_STD, seed=None, generator: torch.Generator | None = None):
    """Sample a mixture of ``n_modes`` equally weighted isotropic Gaussians on a circle.

    Args:
        n_samples: number of points, >= 1.
        n_modes: number of Gaussians on the ring.
        radius: radius of the ring of centres.
        std: standard deviation of each Gaussian.
        seed, generator: a seed or ``torch.Generator`` for a reproducible draw that leaves the
            global random state alone; neither means the global torch generator.

    Returns:
        points: float32 array (n_samples, 2); labels: int64 array (n_samples,), the mode of each.
    """
    n_samples = check_positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    std = check_real("std", std, low=0.0, high=MAX_SIZE)
    centers = torch.from_numpy(ring_mode_centers(n_modes, radius))
    rng = make_generator(seed, generator)
    labels = torch.randint(0, n_modes, (n_samples,), generator=rng)
    noise = torch.randn(n_samples, 2, generator=rng)
    points = centers[labels] + std * noise
    return points.numpy().astype(np.float32), labels.numpy().astype(np.int64)
