"""Exact log-likelihood under a flow: the instantaneous change of variables.

Along a solution x_t of dx/dt = v(x, t) the log density changes at the rate of the divergence:

    d/dt log p_t(x_t) = -div v(x_t, t),   so   log p_1(x_1) = log p_0(x_0) - int_0^1 div v dt.

To score a data point x_1 we integrate backwards, from t = 1 to t = 0, the augmented state
[x_t, L_t] with dL/dt = div v and L_1 = 0; then log p_1(x_1) = log p_0(x_0) + L_0.
In two dimensions the divergence is exact and cheap: one autograd pass per coordinate.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._checks import (MAX_ODE_STEPS, MAX_SAMPLES, as_points, as_real_tensor, check_callable, check_choice, check_model,
                       check_positive_int, check_real, make_generator)
from ..base_distributions import BASES, get_base
from ..data import RING_MODES, RING_RADIUS, RING_STD, ring_mode_centers
from ..models import call_model
from ..plotting import square_axes
from ..solvers import broadcast_condition, solve_ode, solver_names


MAX_PROBES = 10_000             # Hutchinson probes of one estimate (its noise falls as 1 / sqrt(n_probes))


def velocity_and_divergence(velocity, x: torch.Tensor, t: torch.Tensor,
                            create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """v(x, t): (B, D) and its exact divergence sum_i dv_i/dx_i: (B,), one autograd pass per i.

    ``velocity(x, t)`` is any differentiable callable; ``create_graph=True`` keeps the graph so
    the divergence itself can be differentiated (needed to train a CNF by maximum likelihood).
    Rows must not interact (no batch norm): the trace is taken row by row.
    """
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        v = velocity(x, t)
        divergence = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        if not v.requires_grad:                    # a field that ignores x (e.g. zero) has divergence 0
            return v, divergence
        for i in range(x.shape[1]):
            grad = torch.autograd.grad(v[:, i].sum(), x, create_graph=create_graph, retain_graph=True,
                                       allow_unused=True)[0]
            if grad is not None:
                divergence = divergence + grad[:, i]
    return v, divergence


def hutchinson_divergence(velocity, x: torch.Tensor, t, n_probes: int = 1, probe: str = "rademacher",
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Hutchinson's unbiased estimate of div v = tr(dv/dx): E[z^T (dv/dx) z] over random z.

    Each probe z (B, D) costs one vector-Jacobian product, whatever D is; the exact trace costs
    D of them. probe: 'rademacher' (entries +-1) or 'gaussian' (N(0, 1)). Returns (B,), the
    mean over ``n_probes`` probes; its variance falls as 1 / n_probes.
    """
    check_callable("velocity", velocity, "velocity(x, t)")
    x = as_real_tensor("x", x)
    n_probes = check_positive_int("n_probes", n_probes, maximum=MAX_PROBES)
    probe = check_choice("probe", probe, ("rademacher", "gaussian"))
    generator = make_generator(generator=generator)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x, t)
        estimate = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_probes):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            z = (z.sign() if probe == "rademacher" else z).to(x.device)
            z_jacobian = torch.autograd.grad(v, x, grad_outputs=z, retain_graph=True)[0]    # z^T dv/dx
            estimate = estimate + (z_jacobian * z).sum(dim=1)
    return estimate.detach() / n_probes


class AugmentedField(nn.Module):
    """The field of the augmented state [x, L]: (B, D + 1) -> [v(x, t), div v(x, t)].

    Integrating it with any solver of ``solvers`` carries a point and its log-density change.
    """

    def __init__(self, model, condition: torch.Tensor | None = None, create_graph: bool = False):
        super().__init__()
        self.model = model
        self.condition = condition
        self.create_graph = create_graph

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        return call_model(self.model, x, t, self.condition)

    def forward(self, state: torch.Tensor, t) -> torch.Tensor:
        x = state[:, :-1]
        v, divergence = velocity_and_divergence(self.velocity, x, t, create_graph=self.create_graph)
        if not self.create_graph:
            v, divergence = v.detach(), divergence.detach()
        return torch.cat([v, divergence[:, None]], dim=1)


def base_log_density(base: str, x: torch.Tensor) -> torch.Tensor:
    """log p_0(x) of a registered base with a known density: (B, 2) -> (B,).

    Reads ``BASES[base].log_density``; a base without one (the logo, sampled from an image)
    raises a ValueError naming the bases that have a density.
    """
    entry = get_base(base)
    if entry.log_density is None:
        known = [name for name, b in BASES.items() if b.log_density is not None]
        raise ValueError(f"base must have a known density, one of {known}, got {base!r} "
                         f"(the {entry.label} has no density formula)")
    return entry.log_density(as_points("x", x))


def ring_log_density(x, n_modes: int = RING_MODES, radius: float = RING_RADIUS, std: float = RING_STD) -> torch.Tensor:
    """The true log density of the ring of Gaussians (equal weights): (N, 2) -> float64 (N,).

    log p(x) = logsumexp_k [log N(x; c_k, std^2 I)] - log K, the best any model can score.
    """
    points = as_points("x", x).double()
    std = check_real("std", std, low=0.0, low_open=True)
    centers = torch.from_numpy(ring_mode_centers(n_modes, radius).astype(np.float64))
    squared = ((points[:, None, :] - centers[None]) ** 2).sum(dim=2)           # (N, K)
    log_normal = -squared / (2 * std ** 2) - math.log(2 * math.pi * std ** 2)
    return torch.logsumexp(log_normal, dim=1) - math.log(len(centers))


def log_likelihood(model, x1, base: str = "gaussian", n_steps: int = 32, method: str = "rk4",
                   condition=None, return_base_points: bool = False):
    """Exact log p_1(x1) under the flow of ``model`` from ``base``: x1 (B, 2) -> (B,).

    Integrates the augmented state backwards from t = 1 to t = 0 with ``solvers.solve_ode``
    ('euler', 'midpoint', 'heun', 'rk4' on n_steps steps, or adaptive 'dopri5'). Exact up to
    the ODE solver's error. With ``return_base_points`` also returns x0: (B, 2).
    """
    base_log_density(base, torch.zeros(1, 2))                 # refuses a base without a density
    check_model(model, dim=2, points="x1")
    method = check_choice("method", method, solver_names())
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_ODE_STEPS)
    points = as_points("x1", x1)
    device = next(model.parameters(), points).device if isinstance(model, nn.Module) else points.device
    points = points.to(device)
    cond = broadcast_condition(condition, points.shape[0], model)
    field = AugmentedField(model, None if cond is None else cond.to(device))
    if isinstance(model, nn.Module):
        model.eval()
    state = torch.cat([points, torch.zeros(points.shape[0], 1, device=device)], dim=1)
    end = solve_ode(field, state, n_steps=n_steps, method=method, t0=1.0, t1=0.0).x
    x0, change = end[:, :-1], end[:, -1]
    log_p = base_log_density(base, x0) + change
    return (log_p, x0) if return_base_points else log_p


MAX_GRID = 1000                # grid points per side of a density picture


def plot_sample_densities(samples: dict, limit: float = 5.0, n_grid: int = 120, max_points: int = 1000):
    """The exact ring density beside a seaborn kernel density estimate of each sample set.

    samples: {title: (N, 2) points}; the first ``max_points`` of each are used. One row of
    panels sharing the axes: the true density (filled contours of p), then one KDE per entry.
    Returns the Figure.
    """
    if not isinstance(samples, dict) or not samples:
        raise ValueError(f"samples must be a non-empty dict {{title: (N, 2) points}}, got {type(samples).__name__}")
    limit = check_real("limit", limit, low=0.0, low_open=True)
    n_grid = check_positive_int("n_grid", n_grid, minimum=2, maximum=MAX_GRID)
    max_points = check_positive_int("max_points", max_points, maximum=MAX_SAMPLES)
    points = {title: as_points(f"samples[{title!r}]", x)[:max_points].detach().cpu().numpy()
              for title, x in samples.items()}
    import matplotlib.pyplot as plt           # plotting libraries load when a figure is drawn, not at import
    import seaborn as sns

    axis = np.linspace(-limit, limit, n_grid)
    xx, yy = np.meshgrid(axis, axis)
    density = ring_log_density(np.stack([xx.ravel(), yy.ravel()], axis=1)).exp().numpy().reshape(xx.shape)
    fig, axes = plt.subplots(1, len(points) + 1, figsize=(3.2 * (len(points) + 1), 3.4), sharex=True, sharey=True)
    axes[0].contourf(xx, yy, density, levels=np.linspace(0.05, 1, 9) * density.max(), cmap="mako_r")
    square_axes(axes[0], "exact density of the ring", limit=limit)
    for ax, (title, x) in zip(axes[1:], points.items()):
        sns.kdeplot(x=x[:, 0], y=x[:, 1], ax=ax, fill=True, levels=8, cmap="mako_r", bw_adjust=0.5)
        square_axes(ax, title, limit=limit)
    for ax in axes:
        ax.grid(False)
    fig.tight_layout()
    return fig


__all__ = ["AugmentedField", "base_log_density", "hutchinson_divergence", "log_likelihood",
           "plot_sample_densities", "ring_log_density", "velocity_and_divergence"]
