"""Numbers that say how good a set of samples is.

General: the exact 2-Wasserstein distance (POT). Ring-specific, for
reading at a glance: the fraction of samples far from every mode, samples per mode, and how
straight the sampling paths are.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._checks import MAX_PAIRWISE, as_points, as_trajectory, check_positive_int, check_real
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


REFERENCE_SEED = 12345           # the one fixed reference draw every quality figure compares with
FLOOR_SEEDS = (101, 102, 103, 104, 105)
DATA_OFF_MODE = math.exp(-4.5)   # the ring's own share more than 3 std from every mode, 1.1%


def reference_data(n_reference: int = 2000) -> np.ndarray:
    """The fixed reference draw of the ring that quality is measured against: float32 (N, 2)."""
    n_reference = check_positive_int("n_reference", n_reference, maximum=int(MAX_PAIRWISE ** 0.5))
    return create_ring_gaussians(n_reference, seed=REFERENCE_SEED)[0]


FLOORS_FILE = Path(__file__).resolve().parent / "pretrained" / "w2_floors.json"


def w2_floor(n_samples: int, n_reference: int = 2000) -> tuple[float, float]:
    """What real data scores: W2 from fresh ring draws of ``n_samples`` points to the reference.

    Returns (mean, spread): the mean and standard deviation over the five ``FLOOR_SEEDS``. A
    perfect model scores inside this band, not 0. The sizes the notebooks use are shipped
    precomputed in ``FLOORS_FILE`` (``stored_w2_floors``; tests recompute them); others are
    computed here, once per size and process.
    """
    n_samples = check_positive_int("n_samples", n_samples, maximum=int(MAX_PAIRWISE ** 0.5))
    n_reference = check_positive_int("n_reference", n_reference, maximum=int(MAX_PAIRWISE ** 0.5))
    stored = stored_w2_floors().get(f"{n_samples}x{n_reference}")
    return tuple(stored) if stored else _measured_floor(n_samples, n_reference)


@functools.lru_cache(maxsize=32)
def _measured_floor(n_samples: int, n_reference: int) -> tuple[float, float]:
    return measure_w2_floor(n_samples, n_reference)


def measure_w2_floor(n_samples: int, n_reference: int = 2000) -> tuple[float, float]:
    """``w2_floor`` computed afresh: five exact W2 distances."""
    reference = reference_data(n_reference)
    scores = [wasserstein2(create_ring_gaussians(n_samples, seed=seed)[0], reference) for seed in FLOOR_SEEDS]
    return float(np.mean(scores)), float(np.std(scores))


@functools.lru_cache(maxsize=1)
def stored_w2_floors() -> dict:
    """{'<n_samples>x<n_reference>': [mean, spread]} from ``FLOORS_FILE``, if it was measured with
    today's reference and seeds (``python -m tools.retrain_checkpoints --floors`` writes it)."""
    if not FLOORS_FILE.is_file():
        return {}
    stored = json.loads(FLOORS_FILE.read_text())
    if stored.get("reference_seed") != REFERENCE_SEED or stored.get("floor_seeds") != list(FLOOR_SEEDS):
        return {}
    return stored["floors"]


def off_mode_limit(n_samples: int) -> float:
    """The largest off-mode share real data of ``n_samples`` points shows: its own share plus
    three binomial standard deviations (the yardstick's limit; 2.5% at 500 samples)."""
    return DATA_OFF_MODE + 3 * math.sqrt(DATA_OFF_MODE * (1 - DATA_OFF_MODE) / n_samples)


@dataclass(frozen=True)
class Quality:
    """Samples of the ring measured three ways, since no single number tells good from bad.

    w2: exact W2 to the reference; floor, floor_spread: what real data of the same size scores
    (mean and std, ``w2_floor``); off_mode_fraction: share more than 3 std from every mode
    (blur and stragglers between the modes, which W2 on a few thousand points hardly sees);
    samples_per_mode: counts within 3 std of each mode (missing or crowded modes).
    """

    w2: float
    floor: float
    floor_spread: float
    off_mode_fraction: float
    samples_per_mode: tuple[int, ...]
    n_samples: int

    @property
    def w2_like_data(self) -> bool:
        """W2 within three spreads of what data of the same size scores."""
        return self.w2 <= self.floor + 3 * self.floor_spread

    @property
    def off_mode_like_data(self) -> bool:
        """Off-mode share within what data of the same size shows (``off_mode_limit``)."""
        return self.off_mode_fraction <= off_mode_limit(self.n_samples)

    @property
    def odd_modes(self) -> tuple[int, ...]:
        """Modes whose count is more than four binomial standard deviations from their share."""
        share = (1 - DATA_OFF_MODE) / len(self.samples_per_mode)
        spread = 4 * math.sqrt(self.n_samples * share * (1 - share))
        return tuple(k for k, count in enumerate(self.samples_per_mode) if abs(count - self.n_samples * share) > spread)

    @property
    def as_good_as_data(self) -> bool:
        return self.w2_like_data and self.off_mode_like_data and not self.odd_modes

    def problems(self) -> list[str]:
        """What sets these samples apart from real data, in words (empty when nothing does)."""
        found = []
        if not self.w2_like_data:
            found.append(f"W2 above the data's {self.floor:.2f} + 3 x {self.floor_spread:.2f}")
        if not self.off_mode_like_data:
            found.append(f"{100 * self.off_mode_fraction:.1f}% off every mode (data: {100 * DATA_OFF_MODE:.1f}%)")
        if self.odd_modes:
            found.append(f"modes {list(self.odd_modes)} far from their share")
        return found

    def __str__(self) -> str:
        problems = self.problems()
        verdict = "as good as data" if not problems else "unlike data: " + "; ".join(problems)
        return (f"W2 {self.w2:.2f} (data: {self.floor:.2f} ± {self.floor_spread:.2f}) | "
                f"off every mode {100 * self.off_mode_fraction:.1f}% | per mode {list(self.samples_per_mode)} "
                f"| {verdict}")


def ring_quality(samples, n_reference: int = 2000) -> Quality:
    """The yardstick: W2 to the fixed reference beside its floor, the off-mode share and the
    samples per mode, for samples (N, 2) of the ring."""
    points = _numpy("samples", samples)
    if len(points) > MAX_PAIRWISE ** 0.5:
        raise ValueError(f"samples has {len(points)} points; the exact W2 compares at most {int(MAX_PAIRWISE ** 0.5)} "
                         f"with the reference, so score a random subset")
    floor, spread = w2_floor(len(points), n_reference)
    return Quality(w2=wasserstein2(points, reference_data(n_reference)), floor=floor, floor_spread=spread,
                   off_mode_fraction=off_mode_fraction(points),
                   samples_per_mode=tuple(samples_per_mode(points).tolist()), n_samples=len(points))
