"""How sure a number is: an estimate with its noise, and comparisons that say "within noise".

A verdict drawn from one draw of 500 samples can flip on the next draw. Measure the quantity
over several seeds (``over_seeds``) or, for a share of samples, give its binomial interval
(``share``); then ``compare`` says "A < B" only when the two 95% intervals do not overlap:

    eight = over_seeds(lambda seed: off_mode_fraction(generate(model, 2000, n_steps=8, seed=seed).x))
    print(eight.percent(), compare(eight, sixteen, "8 steps", "16 steps"))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

from ._checks import _short, as_list, check_positive_int, check_real

Z95 = 1.959963984540054        # the two-sided 95% point of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A measured number with a 95% interval [low, high].

    mean: the estimate. low, high: its interval. n: the seeds or samples it rests on.
    basis: 'seeds' (Student-t interval of a mean over seeds) or 'samples' (Wilson interval of a share).
    """

    mean: float
    low: float
    high: float
    n: int
    basis: str

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        return f"{self.mean:{spec}} ± {self.half_width:{spec}} ({self.n} {self.basis})"

    def __str__(self) -> str:
        return format(self)

    def percent(self, digits: int = 1) -> str:
        """The estimate as a percentage, e.g. '2.1% ± 0.6% (2000 samples)'."""
        return f"{100 * self.mean:.{digits}f}% ± {100 * self.half_width:.{digits}f}% ({self.n} {self.basis})"


def over_seeds(measure: Callable[[int], float], seeds=(0, 1, 2)) -> Estimate:
    """``measure(seed)`` for each seed: the mean with the 95% Student-t interval of a mean."""
    if not callable(measure):
        raise TypeError(f"measure must be callable as measure(seed) -> float, got {_short(measure)}")
    seeds = as_list("seeds", seeds, "seeds")
    if len(seeds) < 2:
        raise ValueError(f"seeds must hold at least 2 seeds to measure noise, got {_short(seeds)}")
    return from_values([check_real(f"measure({seed})", measure(seed)) for seed in seeds])


def from_values(values) -> Estimate:
    """The mean of repeated measurements (one per seed) with its 95% Student-t interval."""
    values = np.asarray([check_real("values entry", v) for v in as_list("values", values, "numbers")], dtype=float)
    if len(values) < 2:
        raise ValueError(f"values must hold at least 2 measurements, got {len(values)}")
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return Estimate(mean, mean - half, mean + half, len(values), "seeds")


def share(fraction: float, n: int) -> Estimate:
    """A share of ``n`` samples (e.g. the off-mode fraction) with its 95% Wilson interval."""
    n = check_positive_int("n", n)
    p = check_real("fraction", fraction, low=0.0, high=1.0)
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 / (1 + Z95 ** 2 / n) * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, "samples")


@dataclass(frozen=True)
class Comparison:
    """The verdict of ``compare``: '<', '>' or 'within noise', with the two estimates."""

    a: Estimate
    b: Estimate
    name_a: str
    name_b: str
    verdict: str

    def __str__(self) -> str:
        if self.verdict == "within noise":
            return f"{self.name_a} and {self.name_b}: within noise"
        return f"{self.name_a} {self.verdict} {self.name_b}"


def compare(a: Estimate, b: Estimate, name_a: str = "A", name_b: str = "B") -> Comparison:
    """'<' or '>' when the 95% intervals of ``a`` and ``b`` do not overlap, else 'within noise'."""
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, Estimate):
            raise TypeError(f"{name} must be an Estimate (from over_seeds, from_values or share), got {_short(value)}")
    verdict = "<" if a.high < b.low else ">" if a.low > b.high else "within noise"
    return Comparison(a, b, name_a, name_b, verdict)
