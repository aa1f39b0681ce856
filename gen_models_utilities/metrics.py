"""Numbers that say how good a set of samples is.

General: exact 2-Wasserstein distance (POT) and maximum mean discrepancy. Ring-specific, for
reading at a glance: the fraction of samples far from every mode, samples per mode, and how
straight the sampling paths are.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from ._checks import MAX_PAIRWISE, MAX_SEED, _short, as_points, as_trajectory, check_positive_int, check_real
from .data import RING_MODES, RING_RADIUS, RING_STD, create_ring_gaussians, ring_mode_centers


def _numpy(name: str, points) -> np.ndarray:
    return as_points(name, points).detach().cpu().double().numpy()


def _rows(points) -> int:
    """Rows of an array or tensor, read from its shape before any check touches the values."""
    shape = getattr(points, "shape", None)
    return int(shape[0]) if isinstance(shape, tuple) and len(shape) > 0 else 0


def _check_pairwise_size(n: int, m: int) -> None:
    if n * m > MAX_PAIRWISE:
        raise ValueError(f"x has {n} and y has {m} points: the {n} x {m} distance matrix is too large "
                         f"(at most {MAX_PAIRWISE:,} entries); compare random subsets instead")


def wasserstein2(x, y) -> float:
    """Exact 2-Wasserstein distance between two point clouds (N, 2) and (M, 2), equal weights.

    Solves the optimal transport problem with POT's ``ot.emd2``; cost grows about as N^3,
    so keep N to a few thousand.
    """
    import ot

    _check_pairwise_size(_rows(x), _rows(y))
    a, b = _numpy("x", x), _numpy("y", y)
    cost = ot.dist(a, b)                                   # squared Euclidean
    w_a, w_b = np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b))
    return float(np.sqrt(max(ot.emd2(w_a, w_b, cost, numItermax=10_000_000), 0.0)))


def w2_floor(n_samples: int = 1000, seed: int = 0) -> float:
    """W2 between two independent data sets of size ``n_samples``: the best a model can score.

    Deterministic in (n_samples, seed), so each pair is computed once per process.
    """
    n_samples = check_positive_int("n_samples", n_samples, maximum=int(MAX_PAIRWISE ** 0.5))
    seed = check_positive_int("seed", seed, minimum=0, maximum=MAX_SEED - 1)
    return _w2_floor(n_samples, seed)


@functools.lru_cache(maxsize=64)
def _w2_floor(n_samples: int, seed: int) -> float:
    a, _ = create_ring_gaussians(n_samples, seed=seed)
    b, _ = create_ring_gaussians(n_samples, seed=seed + 1)
    return wasserstein2(a, b)


def mmd(x, y, bandwidths=(0.25, 0.5, 1.0, 2.0)) -> float:
    """Squared maximum mean discrepancy with a sum of Gaussian kernels (biased estimate, >= 0)."""
    _check_pairwise_size(_rows(x) + _rows(y), _rows(x) + _rows(y))
    a, b = torch.from_numpy(_numpy("x", x)), torch.from_numpy(_numpy("y", y))
    widths = _bandwidths(bandwidths)
    both = torch.cat([a, b])
    sq = torch.cdist(both, both).pow(2)
    kernel = sum(torch.exp(-sq / (2 * s**2)) for s in widths)
    n = len(a)
    value = kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
    return float(value.clamp_min(0))


def _bandwidths(bandwidths) -> list[float]:
    """Kernel widths as 1 to 100 floats in [1e-150, 1e150], so that 2 s^2 is positive and finite."""
    if isinstance(bandwidths, (str, bytes)) or not hasattr(bandwidths, "__iter__"):
        raise TypeError(f"bandwidths must be a sequence of positive numbers, got {_short(bandwidths)}")
    values = [check_real("bandwidths", s, low=1e-150, high=1e150) for s in bandwidths]
    if not 1 <= len(values) <= 100:
        raise ValueError(f"bandwidths must hold between 1 and 100 numbers, got {len(values)}")
    return values


def distance_to_nearest_mode(samples, n_modes: int = RING_MODES, radius: float = RING_RADIUS):
    """Distance of each sample to its nearest mode centre and that mode: two arrays (N,)."""
    points = _numpy("samples", samples)
    centers = ring_mode_centers(n_modes, radius).astype(np.float64)
    distances = np.linalg.norm(points[:, None, :] - centers[None], axis=2)
    return distances.min(axis=1), distances.argmin(axis=1)


def _threshold(std, n_std) -> float:
    return check_real("std", std, low=0.0) * check_real("n_std", n_std, low=0.0)


def off_mode_fraction(samples, n_modes: int = RING_MODES, radius: float = RING_RADIUS,
                      std: float = RING_STD, n_std: float = 3.0) -> float:
    """Fraction of samples more than ``n_std`` standard deviations from every mode centre.

    Data drawn from the ring itself scores exp(-n_std^2 / 2), about 1.1% for 3 std.
    """
    distance, _ = distance_to_nearest_mode(samples, n_modes, radius)
    return float(np.mean(distance > _threshold(std, n_std)))


def samples_per_mode(samples, n_modes: int = RING_MODES, radius: float = RING_RADIUS,
                     std: float = RING_STD, n_std: float = 3.0) -> np.ndarray:
    """How many samples lie within ``n_std`` std of each mode: int64 (n_modes,)."""
    distance, nearest = distance_to_nearest_mode(samples, n_modes, radius)
    return np.bincount(nearest[distance <= _threshold(std, n_std)], minlength=n_modes).astype(np.int64)


def path_straightness(trajectory) -> float:
    """Mean over particles of |x_end - x_start| / path length, from (S + 1, B, 2); 1 = straight."""
    path = as_trajectory("trajectory", trajectory, min_frames=2)
    length = (path[1:] - path[:-1]).norm(dim=2).sum(dim=0)
    chord = (path[-1] - path[0]).norm(dim=1)
    return float((chord / length.clamp_min(1e-12)).mean())


def ring_quality(samples, reference=None, n_reference: int = 1000, seed: int = 12345) -> dict:
    """The teacher's summary of ring samples: W2 to fresh data, its floor, off-mode fraction,
    and samples per mode. ``reference`` defaults to ``n_reference`` fresh points from the ring."""
    if reference is None:
        n_reference = check_positive_int("n_reference", n_reference, maximum=int(MAX_PAIRWISE ** 0.5))
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
