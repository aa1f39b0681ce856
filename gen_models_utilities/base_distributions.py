"""Base distributions p_0 by name: where every flow starts."""
from __future__ import annotations

import torch

from ._checks import MAX_SAMPLES, check_choice, check_device, check_positive_int, make_generator
from .logo import sample_logo

BASE_NAMES = ("gaussian", "uniform", "ethz_logo")
UNIFORM_HALF_WIDTH = 3.5       # uniform on [-3.5, 3.5]^2
_ALIASES = {"logo": "ethz_logo", "normal": "gaussian"}


def canonical_base_name(name: str) -> str:
    """The canonical name of a base distribution ('logo' is accepted for 'ethz_logo')."""
    if isinstance(name, str):
        name = _ALIASES.get(name, name)
    return check_choice("base", name, BASE_NAMES)


def sample_base(name: str, n_samples: int, seed=None, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Draw ``n_samples`` points from a base distribution: float32 tensor (n_samples, 2).

    Args:
        name: 'gaussian' (standard normal), 'uniform' (on [-3.5, 3.5]^2) or 'ethz_logo'.
        n_samples: number of points, >= 1.
        seed, generator: make the draw reproducible without touching global random state.
        device: where the result lives (drawn on the CPU, so a seed gives the same points anywhere).
    """
    name = canonical_base_name(name)
    n_samples = check_positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    device = check_device("device", device)
    rng = make_generator(seed, generator)
    if name == "gaussian":
        points = torch.randn(n_samples, 2, generator=rng)
    elif name == "uniform":
        points = (torch.rand(n_samples, 2, generator=rng) * 2 - 1) * UNIFORM_HALF_WIDTH
    else:
        points = sample_logo(n_samples, rng)
    return points if device is None else points.to(device)
