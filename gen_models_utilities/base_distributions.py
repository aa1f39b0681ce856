"""Base distributions p_0, where every flow starts: one registry, ``BASES``.

Every consumer (``sample_base``, the likelihood code, the widgets' choices, the checkpoint
recipes, the notebooks) reads ``BASES`` when it runs, so a base added with ``register_base``
is offered everywhere at once::

    register_base(BaseDistribution("ring", "ring of radius 2", sample=my_sampler))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ._checks import MAX_SAMPLES, _short, check_callable, check_device, check_entry, check_positive_int, make_generator
from .logo import sample_logo

UNIFORM_HALF_WIDTH = 3.5       # uniform on [-3.5, 3.5]^2


@dataclass(frozen=True)
class BaseDistribution:
    """One base distribution.

    Attributes:
        name: the key in ``BASES``, e.g. 'gaussian'.
        label: a human-readable name for legends and widgets.
        sample: ``sample(n, generator)`` -> float32 (n, 2) on the CPU.
        log_density: ``log_density(x)``: (B, 2) -> (B,), or None where it has no formula.
        aliases: other names accepted for it.
    """

    name: str
    label: str
    sample: Callable[[int, torch.Generator | None], torch.Tensor]
    log_density: Callable[[torch.Tensor], torch.Tensor] | None = None
    aliases: tuple[str, ...] = ()


def _gaussian_log_density(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x ** 2).sum(dim=1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


def _uniform_sample(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(n, 2, generator=generator) * 2 - 1) * UNIFORM_HALF_WIDTH


def _uniform_log_density(x: torch.Tensor) -> torch.Tensor:
    inside = (x.abs() <= UNIFORM_HALF_WIDTH).all(dim=1)
    value = -x.shape[1] * math.log(2 * UNIFORM_HALF_WIDTH)
    return torch.where(inside, torch.full_like(x[:, 0], value), torch.full_like(x[:, 0], -math.inf))


BASES: dict[str, BaseDistribution] = {}


def register_base(base: BaseDistribution) -> BaseDistribution:
    """Add ``base`` to ``BASES`` (replacing one of the same name) and return it."""
    check_entry("base", base, BaseDistribution)
    check_callable("base.sample", base.sample, "sample(n, generator)")
    if base.log_density is not None:
        check_callable("base.log_density", base.log_density, "log_density(x)")
    if not (isinstance(base.aliases, tuple) and all(isinstance(alias, str) for alias in base.aliases)):
        raise TypeError(f"base.aliases must be a tuple of names, got {_short(base.aliases)}")
    BASES[base.name] = base
    return base


register_base(BaseDistribution("gaussian", "Gaussian N(0, I)", lambda n, rng: torch.randn(n, 2, generator=rng),
                               _gaussian_log_density, aliases=("normal",)))
register_base(BaseDistribution("uniform", "uniform on [-3.5, 3.5]²", _uniform_sample, _uniform_log_density))
register_base(BaseDistribution("ethz_logo", "ETH Zurich logo", sample_logo, aliases=("logo",)))


def get_base(name: str) -> BaseDistribution:
    """The registered base called ``name`` (or one of its aliases)."""
    if isinstance(name, str):
        for base in BASES.values():
            if name == base.name or name in base.aliases:
                return base
    raise ValueError(f"base must be one of {list(BASES)}, got {_short(name)}")


def canonical_base_name(name: str) -> str:
    """The registry name of a base ('logo' is accepted for 'ethz_logo')."""
    return get_base(name).name


def sample_base(name: str, n_samples: int, seed=None, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Draw ``n_samples`` points from the base ``name``: float32 tensor (n_samples, 2).

    Args:
        name: a key of ``BASES``, e.g. 'gaussian', 'uniform' or 'ethz_logo'.
        n_samples: number of points, >= 1.
        seed, generator: make the draw reproducible without touching global random state.
        device: where the result lives (drawn on the CPU, so a seed gives the same points anywhere).
    """
    base = get_base(name)
    n_samples = check_positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    device = check_device("device", device)
    points = base.sample(n_samples, make_generator(seed, generator))
    return points if device is None else points.to(device)
