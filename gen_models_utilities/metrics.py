"""Numbers that say how good a set of samples is.

General: exact 2-Wasserstein distance (POT) and maximum mean discrepancy. Ring-specific, for
reading at a glance: the fraction of samples far from every mode, samples per mode, and how
straight the sampling paths are.
"""
from __future__ import annotations

import numpy as np
import torch

from ._checks import as_points, check_positive_int, check_real
from .data import RING_MODES, RING_RADIUS, RING_STD, create_ring_gaussians, ring_mode_centers


def _numpy(name: str, points) -> np.ndarray:
    return as_points(name, points).detach().cpu().double().numpy()


def wasserstein2(x, y) -> float:
    """Exact 2-Wasserstein distance between two point clouds (N, 2) and (M, 2), equal weights.

    Solves the optimal transport problem with POT's ``ot.emd2``; cost grows about as N^3,
    so keep N to a few thousand.
    """
    import ot

    a, b = _numpy("x", x), _numpy("y", y)
    cost = ot.dist(a, b)                                   # squared Euclidean
    w_a, w_b = np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b))
    return float(np.sqrt(max(ot.emd2(w_a, w_b, cost, numItermax=10_000_000), 0.0)))


def w2_floor(n_samples: int = 1000, seed: int = 0) -> float:
    """W2 between two independent data sets of size ``n_samples``: the best a model can score."""
    n_samples = check_positive_int("n_samples", n_samples)
    a, _ = create_ring_gaussians(n_samples, seed=seed)
    b, _ = create_ring_gaussians(n_samples, seed=seed + 1)
    return wasserstein2(a, b)


def mmd(x, y, bandwidths=(0.25, 0.5, 1.0, 2.0)) -> float:
    """Squared maximum mean discrepancy with a sum of Gaussian kernels (biased estimate, >= 0)."""
    a, b = torch.from_numpy(_numpy("x", x)), torch.from_numpy(_numpy("y", y))
    both = torch.cat([a, b])
    sq = torch.cdist(both, both).pow(2)
    kernel = sum(torch.exp(-sq / (2 * check_real("bandwidth", s, low=0, low_open=True) ** 2)) for s in bandwidths)
    n = len(a)
    value = kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
    return float(value.clamp_min(0))


def distance_to_nearest_mode(samples, n_modes: int = RING_MODES, radius: float = RING_RADIUS):
    """Distance of each sample to its nearest mode centre and that mode: two arrays (N,)."""
    points = _numpy("samples", samples)
    centers = ring_mode_centers(n_modes, radius).astype(np.float64)
    distances = np.linalg.norm(points[:, None, :] - centers[None], axis=2)
    return distances.min(axis=1), distances.argmin(axis=1)


def off_mode_fraction(samples, n_modes: int = RING_MODES, radius: float = RING_RADIUS,
                      std: float = RING_STD, n_std: float = 3.0) -> float:
    """Fraction of samples more than ``n_std`` standard deviations from every mode centre.

    Data drawn from the ring itself scores exp(-n_std^2 / 2), about 1.1% for 3 std.
    """
    distance, _ = distance_to_nearest_mode(samples, n_modes, radius)
    return float(np.mean(distance > n_std * std))


def samples_per_mode(samples, n_modes: int = RING_MODES, radius: float = RING_RADIUS,
                     std: float = RING_STD, n_std: float = 3.0) -> np.ndarray:
    """How many samples lie within ``n_std`` std of each mode: int64 (n_modes,)."""
    distance, nearest = distance_to_nearest_mode(samples, n_modes, radius)
    return np.bincount(nearest[distance <= n_std * std], minlength=n_modes).astype(np.int64)


def path_straightness(trajectory) -> float:
    """Mean over particles of |x_end - x_start| / path length, from (S + 1, B, 2); 1 = straight."""
    path = torch.as_tensor(trajectory, dtype=torch.float64)
    if path.dim() != 3 or path.shape[0] < 2:
        raise ValueError(f"trajectory must have shape (S + 1, B, D) with S >= 1, got {tuple(path.shape)}")
    length = (path[1:] - path[:-1]).norm(dim=2).sum(dim=0)
    chord = (path[-1] - path[0]).norm(dim=1)
    return float((chord / length.clamp_min(1e-12)).mean())


def ring_quality(samples, reference=None, n_reference: int = 1000, seed: int = 12345) -> dict:
    """The teacher's summary of ring samples: W2 to fresh data, its floor, off-mode fraction,
    and samples per mode. ``reference`` defaults to ``n_reference`` fresh points from the ring."""
    if reference is None:
        reference, _ = create_ring_gaussians(n_reference, seed=seed)
    return {
        "w2": wasserstein2(samples, reference),
        "off_mode_fraction": off_mode_fraction(samples),
        "samples_per_mode": samples_per_mode(samples).tolist(),
    }


def format_quality(quality: dict, floor: float | None = None) -> str:
    """One readable line from ``ring_quality``'s dict (rounded, so outputs are stable)."""
    text = f"W2 to data {quality['w2']:.2f}"
    if floor is not None:
        text += f" ({quality['w2'] / floor:.1f}x the data-to-data floor {floor:.2f})"
    text += f" | off every mode {100 * quality['off_mode_fraction']:.1f}%"
    text += f" | per mode {quality['samples_per_mode']}"
    return text
