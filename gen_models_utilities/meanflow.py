"""One step by learning the jump: the average velocity of a flow (MeanFlow, Geng et al. 2025).

A flow matching model learns the instantaneous velocity v(z, t) and samples with many small
steps. MeanFlow learns the average velocity over a whole interval instead,

    u(z_t, r, t) = 1 / (t - r) * integral from r to t of v(z_tau, tau) dtau,

taken along the path z_tau of the flow through z_t, so that one step lands exactly:

    z_r = z_t - (t - r) u(z_t, r, t).

Time runs from noise (t = 0) to data (t = 1) in this package, so a sampling step goes forward
(r > t); the formulas hold for either order. Differentiating (t - r) u = integral_r^t v in t,
with z_t moving along its path, gives the MeanFlow identity, which needs no integral:

    u(z_t, r, t) = v(z_t, t) - (t - r) d/dt u(z_t, r, t),    d/dt u = (v . grad_z) u + partial_t u.

Training regresses u_theta onto the right-hand side, with the pair's velocity x1 - x0 in place
of v (as flow matching does) and d/dt u_theta from one forward-mode Jacobian-vector product
(``torch.func.jvp``), held fixed (no gradient flows through the target). At r = t the target is
v itself: those pairs are flow matching's loss, and a share of them teaches the network v.

``ExactAverageVelocity`` integrates the ring's exact marginal field (``marginal_field``) along
its paths: the answer a trained network is measured against.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import (MAX_ODE_STEPS, MAX_SAMPLES, _short, as_points, check_choice, check_model, check_point_steps,
                      check_positive_int, check_real, make_generator)
from .base_distributions import get_base
from .loaders import RandomBatches
from .marginal_field import RingMarginalField
from .models import ACTIVATIONS, VelocityModel, mlp, register_model_class
from .solvers import ODESolution, solve_ode
from .training import TIME_SAMPLINGS, TrainingResult, _times, check_trainable, check_training_budget, run_steps


@register_model_class
class AverageVelocityField(VelocityModel):
    """The average velocity u(x, r, t) of the flow from time t (where x is) to time r.

    The chapter's network with a second time input: the gap r - t, embedded by its own small MLP
    and fed to the trunk beside x and t's embedding. Call as ``model(x, t, r)``: x (B, 2), t and
    r (B, 1) or floats -> (B, 2). Without r (r = t) it is the instantaneous velocity v(x, t), so
    ``solve_ode(model, x0)`` integrates it like any velocity field.
    """

    def __init__(self, time_emb_dim: int = 16, hidden_dim: int = 128, activation: str = "silu"):
        super().__init__(time_emb_dim, hidden_dim, cond_width=time_emb_dim, activation=activation)
        self.config["activation"] = activation              # kept even for 'relu': the default is 'silu'
        self.gap_mlp = mlp([1, time_emb_dim, time_emb_dim, time_emb_dim], activation=ACTIVATIONS[activation])

    def embed_condition(self, gap: torch.Tensor) -> torch.Tensor:
        return self.gap_mlp(gap)

    def forward(self, x: torch.Tensor, t, r=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(len(x), 1)
        gap = torch.zeros_like(t) if r is None else torch.as_tensor(r, dtype=x.dtype, device=x.device) - t
        return super().forward(x, t, gap.expand(len(x), 1))


def meanflow_target(model: nn.Module, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor, v: torch.Tensor):
    """u_theta(z, r, t) and its regression target v - (t - r) d/dt u_theta, the target detached.

    z, v (B, 2): points on their paths at times t (B, 1) and the velocity they move with;
    r (B, 1): where the step lands. d/dt u_theta = (v . grad_z) u_theta + partial_t u_theta is one
    Jacobian-vector product: the tangent (v, 1, 0) of (z, t, r) pushed through the network.
    Nothing is checked here (a trainer calls it every step); ``meanflow_loss`` is the checked door.
    """
    u, du_dt = torch.func.jvp(lambda z, t, r: model(z, t, r), (z, t, r), (v, torch.ones_like(t), torch.zeros_like(r)))
    return u, (v - (t - r) * du_dt).detach()


def _meanflow_loss(model, z, t, r, v) -> torch.Tensor:
    u, target = meanflow_target(model, z, t, r, v)
    return nn.functional.mse_loss(u, target)


def meanflow_loss(model: nn.Module, z: torch.Tensor, t, r, v: torch.Tensor) -> torch.Tensor:
    """The MeanFlow loss mse(u_theta(z, r, t), v - (t - r) d/dt u_theta), 0-dim with its graph.

    z (B, 2): points at times t; v (B, 2): the velocity they move with (a pair's x1 - x0 in
    training, or an exact field); t, r: (B, 1) tensors or numbers. With the exact v and the
    exact average velocity as ``model`` it is 0; at r = t it is flow matching's loss.
    """
    check_model(model, dim=2, points="z")
    z, v = as_points("z", z), as_points("v", v)
    if z.shape != v.shape:
        raise ValueError(f"z and v must have the same shape (B, 2), got {tuple(z.shape)} and {tuple(v.shape)}")
    times = [_time_column(name, value, len(z), z) for name, value in (("t", t), ("r", r))]
    return _meanflow_loss(model, z, *times, v)


def _time_column(name: str, value, n: int, like: torch.Tensor) -> torch.Tensor:
    """A number or a (n, 1) / (n,) tensor of times in [0, 1] as a (n, 1) column like ``like``."""
    if not isinstance(value, torch.Tensor):
        return torch.full((n, 1), check_real(name, value, low=0.0, high=1.0), dtype=like.dtype)
    if value.dtype == torch.bool or value.is_complex() or value.numel() not in (1, n) or value.dim() > 2:
        raise ValueError(f"{name} must be a number or a tensor of shape ({n}, 1), got {_short(value)}")
    value = value.to(like.dtype).reshape(-1, 1).expand(n, 1)
    if not bool(((value >= 0) & (value <= 1)).all()):
        raise ValueError(f"{name} must lie in [0, 1], got values from {float(value.min()):.3g} to "
                         f"{float(value.max()):.3g}")
    return value


def sample_time_pairs(n: int, how: str = "logit_normal", equal_share: float = 0.75,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training times t <= r, each (n, 1): two draws of ``how`` ('uniform' or 'logit_normal', see
    ``training.sample_times``) sorted, and r = t for a share ``equal_share`` of the pairs (Geng et al.
    use 0.75)."""
    check_choice("how", how, TIME_SAMPLINGS)
    return _time_pairs(check_positive_int("n", n, maximum=MAX_SAMPLES), how,
                       check_real("equal_share", equal_share, low=0.0, high=1.0), make_generator(generator=generator))


def _time_pairs(n: int, how: str, equal_share: float, generator: torch.Generator | None):
    first, second = _times(n, how, generator), _times(n, how, generator)
    t, r = torch.minimum(first, second), torch.maximum(first, second)
    equal = torch.rand(n, 1, generator=generator) < equal_share
    return t, torch.where(equal, t, r)


def train_meanflow(model: nn.Module, data, base: str = "gaussian", n_steps: int = 2000, batch_size: int = 256,
                   lr: float = 1e-3, schedule: str = "cosine", time_sampling: str = "logit_normal",
                   equal_share: float = 0.75, seed=None, generator: torch.Generator | None = None,
                   progress=None) -> TrainingResult:
    """Train an ``AverageVelocityField`` (any ``model(z, t, r)``) with the MeanFlow loss.

    Each step draws data x1, base points x0 and times t <= r (``sample_time_pairs``), and
    regresses u_theta(z_t, r, t) at z_t = (1 - t) x0 + t x1 onto v - (t - r) d/dt u_theta with
    v = x1 - x0. The loop and optimiser are ``training.train``'s (AdamW, ``schedule`` 'cosine'
    or 'constant'); ``equal_share`` of the pairs have r = t. Returns a TrainingResult.
    """
    check_trainable(model)
    check_model(model, dim=2, kinds=(None,))
    base_distribution = get_base(base)
    n_steps, batch_size, lr = check_training_budget(n_steps, batch_size, lr, schedule)
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    equal_share = check_real("equal_share", equal_share, low=0.0, high=1.0)
    rng = make_generator(seed, generator)
    batches = RandomBatches(as_points("data", data), batch_size, generator=rng)

    def batch_loss() -> torch.Tensor:
        x1, _ = batches.sample()
        x0 = base_distribution.sample(batch_size, rng)
        t, r = _time_pairs(batch_size, time_sampling, equal_share, rng)
        return _meanflow_loss(model, (1 - t) * x0 + t * x1, t, r, x1 - x0)

    result = TrainingResult(base=base_distribution.name, recipe={
        "n_steps": n_steps, "batch_size": batch_size, "lr": lr, "schedule": schedule,
        "time_sampling": time_sampling, "equal_share": equal_share, "objective": "meanflow"})
    return run_steps(model, batch_loss, n_steps, lr, schedule, result, desc="meanflow", progress=progress)


@torch.no_grad()
def meanflow_sample(model, x0: torch.Tensor, n_steps: int = 1, return_trajectory: bool = False) -> ODESolution:
    """Carry x0 (B, 2) from t = 0 to t = 1 in ``n_steps`` equal jumps z <- z + (r - t) u(z, t, r).

    One network evaluation per jump. Returns an ``ODESolution``: x (B, 2), trajectory
    (n_steps + 1, B, 2) or None, the times, nfe = n_steps.
    """
    check_model(model, dim=2, kinds=(None,), points="x0")
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_ODE_STEPS)
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0 must be a tensor of shape (B, 2), got {_short(x0)}")
    z = as_points("x0", x0)
    check_point_steps(n_steps, len(z), f"x0 of {len(z)} points")
    if isinstance(model, nn.Module):
        model.eval()
    times = torch.linspace(0.0, 1.0, n_steps + 1)
    path = [z]
    for t, r in zip(times[:-1].tolist(), times[1:].tolist()):
        z = z + (r - t) * model(z, t, r)
        path.append(z)
    return ODESolution(z, torch.stack(path) if return_trajectory else None, times, n_steps)


class ExactAverageVelocity:
    """The ring's exact average velocity u(x, r, t), from the paths of the exact marginal field.

    Carries x from t to r along ``field`` (default: ``RingMarginalField()``) with RK4 and returns
    (x_r - x) / (r - t); at r = t it is the field itself. ``steps_per_unit``: RK4 steps per unit
    of time (100: end points within about 1e-5 of a solve with 800). Call as ``exact(x, t, r)``
    with x (B, 2) and t, r numbers in [0, 1] -> (B, 2) float64.
    """

    dim, predicts, condition_kind, condition_dim = 2, "velocity", None, 0     # what the solvers' door reads

    def __init__(self, field: RingMarginalField | None = None, steps_per_unit: int = 100):
        if field is not None and not isinstance(field, RingMarginalField):
            raise TypeError(f"field must be a RingMarginalField or None, got {_short(field)}")
        self.field = field if field is not None else RingMarginalField()
        self.steps_per_unit = check_positive_int("steps_per_unit", steps_per_unit, maximum=MAX_ODE_STEPS)

    def endpoint(self, x, t: float, r: float) -> torch.Tensor:
        """Where the exact flow carries x (B, 2) from time t to time r: (B, 2) float64."""
        t, r = check_real("t", t, low=0.0, high=1.0), check_real("r", r, low=0.0, high=1.0)
        x = as_points("x", x).detach().cpu().double()
        if r == t:
            return x
        n_steps = max(1, math.ceil(self.steps_per_unit * abs(r - t)))
        return solve_ode(self.field, x, n_steps=n_steps, method="rk4", t0=t, t1=r).x

    def __call__(self, x, t: float, r: float | None = None) -> torch.Tensor:
        t = check_real("t", t, low=0.0, high=1.0)
        r = t if r is None else check_real("r", r, low=0.0, high=1.0)
        x = as_points("x", x).detach().cpu().double()
        if r == t:
            return self.field(x, t)
        return (self.endpoint(x, t, r) - x) / (r - t)


def along_path_derivative(average, field, x, t: float, r: float, h: float = 1e-3) -> torch.Tensor:
    """d/dt u(z_t, r, t) at z_t = x by a central difference along the path of ``field``.

    Moves x to t - h and t + h along ``field`` (RK4, 8 steps each) and differences
    ``average(z, t +- h, r)``: (B, 2) float64. ``average``, ``field``: callables
    average(x, t, r) and field(x, t), e.g. ``ExactAverageVelocity()`` and its ``field``.
    """
    t, r = check_real("t", t), check_real("r", r)
    h = check_real("h", h, low=0.0, low_open=True)
    if not (0.0 <= t - h and t + h <= 1.0):
        raise ValueError(f"t must lie in [h, 1 - h] = [{h}, {1 - h}] for a central difference, got {t}")
    x = as_points("x", x).detach().cpu().double()
    before, after = (solve_ode(field, x, n_steps=8, method="rk4", t0=t, t1=t + s).x for s in (-h, h))
    return (average(after, t + h, r) - average(before, t - h, r)) / (2 * h)

