"""ODE solvers that carry samples along a learned velocity field from t = 0 to t = 1.

The fixed-step methods are written out by hand, since they are what the chapter teaches:
    Euler     x + h v(x, t)                                              1 evaluation a step
    midpoint  x + h v(x + h/2 v(x, t), t + h/2)                          2
    Heun      x + h/2 [v(x, t) + v(x + h v(x, t), t + h)]                2
    RK4       the classical fourth-order Runge-Kutta step                4
Adaptive Dormand-Prince (dopri5, order 5, 6 evaluations a step) comes from torchdiffeq. They
live in one registry, ``SOLVERS``, that ``solve_ode``, the widgets, the benchmarks and the tests
read; a new method is one ``register_solver(Solver(name, order, evaluations, step))`` call.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torchdiffeq import odeint

from .base_distributions import canonical_base_name, sample_base
from .models import ExtrapolationWarning, call_model
from ._checks import (MAX_ODE_STEPS, MAX_SAMPLES, _short, as_list, as_points, as_real_tensor, caller_stacklevel,
                      check_callable, check_choice, check_finite, check_entry, check_model, check_point_steps,
                      check_positive_int, check_real, describe_model, make_generator)

Velocity = Callable[[torch.Tensor, float], torch.Tensor]   # (x (B, D), t) -> (B, D); D = 2 on the ring


def euler_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    """One explicit Euler step: follow the velocity at the start of the step."""
    return x + h * velocity(x, t)


def midpoint_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    """One explicit midpoint step: the velocity halfway along an Euler half-step."""
    return x + h * velocity(x + 0.5 * h * velocity(x, t), t + 0.5 * h)


def heun_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    """One Heun step: the mean of the velocities at the start and at an Euler guess of the end."""
    v_start = velocity(x, t)
    v_end = velocity(x + h * v_start, t + h)
    return x + 0.5 * h * (v_start + v_end)


def rk4_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    """One classical Runge-Kutta step of order four."""
    k1 = velocity(x, t)
    k2 = velocity(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = velocity(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = velocity(x + h * k3, t + h)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@dataclass(frozen=True)
class Solver:
    """One ODE method.

    name: its key in ``SOLVERS``. order: its order of accuracy. evaluations: network evaluations
    per step (for an adaptive method, per accepted step). step: ``step(velocity, x, t, h)`` -> x
    after one step of size h, or None for an adaptive method, which torchdiffeq's ``odeint``
    integrates under its own name.
    """

    name: str
    order: int
    evaluations: int
    step: Callable[[Velocity, torch.Tensor, float, float], torch.Tensor] | None = None

    @property
    def adaptive(self) -> bool:
        return self.step is None

    def steps_for_budget(self, budget: int) -> int:
        """Fixed steps that spend at most ``budget`` network evaluations (0 if not even one step fits)."""
        return budget // self.evaluations


SOLVERS: dict[str, Solver] = {}


def register_solver(solver: Solver) -> Solver:
    """Add ``solver`` to ``SOLVERS`` (replacing one of the same name) and return it."""
    check_entry("solver", solver, Solver)
    if solver.step is not None:
        check_callable("solver.step", solver.step, "step(velocity, x, t, h)")
    check_positive_int("solver.order", solver.order)
    check_positive_int("solver.evaluations", solver.evaluations)
    SOLVERS[solver.name] = solver
    return solver


register_solver(Solver("euler", 1, 1, euler_step))
register_solver(Solver("midpoint", 2, 2, midpoint_step))
register_solver(Solver("heun", 2, 2, heun_step))
register_solver(Solver("rk4", 4, 4, rk4_step))
register_solver(Solver("dopri5", 5, 6))         # torchdiffeq's adaptive Dormand-Prince


def solver_names(adaptive: bool | None = None) -> tuple[str, ...]:
    """The methods ``solve_ode`` accepts: the fixed-step ones, then the adaptive ones, each in registry
    order (``adaptive`` True or False: only those)."""
    fixed = tuple(name for name, solver in SOLVERS.items() if not solver.adaptive)
    variable = tuple(name for name, solver in SOLVERS.items() if solver.adaptive)
    return {None: fixed + variable, False: fixed, True: variable}[adaptive]


class CountingVelocity:
    """Wraps ``model`` as v(x, t) with a fixed condition and counts network evaluations (NFE)."""

    def __init__(self, model: nn.Module | Callable, condition: torch.Tensor | None = None):
        self.model = model
        self.condition = condition
        self.nfe = 0

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        self.nfe += 1
        t_column = torch.full((x.shape[0], 1), float(t), device=x.device, dtype=x.dtype)
        return call_model(self.model, x, t_column, self.condition)


@dataclass
class ODESolution:
    """Result of an ODE solve. x: (B, D) final points; trajectory: (S + 1, B, D) or None;
    times: (S + 1,) the times of the trajectory; nfe: network evaluations used."""

    x: torch.Tensor
    trajectory: torch.Tensor | None
    times: torch.Tensor
    nfe: int


def broadcast_condition(condition, batch: int, model, name: str = "condition") -> torch.Tensor | None:
    """A condition of shape (C,), (1, C) or (B, C) as (B, C); checked against ``model`` (``name``: the
    argument the caller passed it as)."""
    width = getattr(model, "condition_dim", None)
    if condition is None:
        if width:
            raise ValueError(f"{type(model).__name__} needs {name}=(B, {width}) or ({width},)")
        return None
    if width == 0:
        raise ValueError(f"{name} must be None for {describe_model(model)}, got {_short(condition)}")
    condition = check_finite(name, as_real_tensor(name, condition, allow_bool=True).float())
    shape = tuple(condition.shape)
    if condition.dim() > 2:
        raise ValueError(f"{name} must have shape (C,), (1, C) or (B, C), got shape {shape}")
    if condition.dim() < 2:
        condition = condition.reshape(1, -1)                 # (C,) -> (1, C); a number -> (1, 1)
    if width is not None and condition.shape[1] != width:
        hint = (f"; one-hot codes come from class_code(labels, {width})"
                if getattr(model, "condition_kind", None) == "onehot" else "")
        raise ValueError(f"{name} must be {width} wide for {type(model).__name__}, got shape {shape}{hint}")
    if condition.shape[0] == 1:
        condition = condition.expand(batch, -1)
    if condition.shape[0] != batch:
        raise ValueError(f"{name} has {condition.shape[0]} rows for {batch} samples (give one row, or one per sample)")
    return condition


def warn_if_extrapolation(model, condition: torch.Tensor | None) -> None:
    """One ``ExtrapolationWarning`` when a model that knows its trained range (``is_extrapolation``, the
    radius model's ``trained_radius_range``) is asked for conditions outside it."""
    if condition is None or not hasattr(model, "is_extrapolation"):
        return
    low, high = float(condition.min()), float(condition.max())
    if model.is_extrapolation(low) or model.is_extrapolation(high):
        seen_low, seen_high = model.trained_radius_range.tolist()
        asked = f"{low:.2f}" if low == high else f"{low:.2f} to {high:.2f}"
        warnings.warn(ExtrapolationWarning(
            f"condition asks {type(model).__name__} for radius {asked}, outside the radii it was trained on, "
            f"{seen_low:.2f} to {seen_high:.2f} (trained_radius_range): its samples there are extrapolation, "
            f"not learned"), stacklevel=caller_stacklevel())


def _weights(model) -> torch.Tensor | None:
    """The first parameter of a module (where its weights live, and their dtype), else None."""
    return next(model.parameters(), None) if isinstance(model, nn.Module) else None


@torch.no_grad()
def solve_ode(model, x0: torch.Tensor, n_steps: int = 100, method: str = "euler", condition=None,
              return_trajectory: bool = False, t0: float = 0.0, t1: float = 1.0,
              rtol: float = 1e-5, atol: float = 1e-5) -> ODESolution:
    """Integrate dx/dt = model(x, t[, condition]) from t0 to t1 starting at x0: (B, D), D = 2 on the ring.

    Args:
        method: a fixed-step method of ``SOLVERS`` ('euler', 'midpoint', 'heun', 'rk4'; n_steps
            equal steps) or 'dopri5' (adaptive; n_steps only sets how many trajectory points
            are reported).
        condition: (C,), (1, C) or (B, C) for conditional models. A radius outside the radii a
            radius model was trained on gives one ``models.ExtrapolationWarning``.
        return_trajectory: keep every intermediate point, (n_steps + 1, B, D).
        t0, t1: integrate backwards with t1 < t0 (from data to base).
    """
    method = check_choice("method", method, solver_names())
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_ODE_STEPS)
    t0, t1 = check_real("t0", t0), check_real("t1", t1)
    rtol = check_real("rtol", rtol, low=0.0, low_open=True)
    atol = check_real("atol", atol, low=0.0, low_open=True)
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0 must be a tensor of shape (B, D), got {_short(x0)}")
    checked = as_points("x0", x0, dim=x0.shape[1] if x0.dim() == 2 and x0.shape[1] else 2)
    check_model(model, dim=checked.shape[1], points="x0")
    check_point_steps(n_steps, checked.shape[0], f"x0 of {checked.shape[0]} points")
    weights = _weights(model)                  # one rule: x0 moves to the model's device and dtype
    if weights is not None:
        x0 = checked.to(weights.device, weights.dtype)
    elif not x0.is_floating_point():
        x0 = checked.to(x0.device)
    if return_trajectory and (n_steps + 1) * x0.numel() > 50 * MAX_SAMPLES:
        raise ValueError(f"return_trajectory=True with n_steps={n_steps} and x0 of shape {tuple(x0.shape)} "
                         f"would keep {(n_steps + 1) * x0.numel():,} numbers; use fewer steps or samples")
    if isinstance(model, nn.Module):
        model.eval()
    device = x0.device
    velocity = CountingVelocity(model, broadcast_condition(condition, x0.shape[0], model))
    warn_if_extrapolation(model, velocity.condition)
    if velocity.condition is not None:
        velocity.condition = velocity.condition.to(device)
    times = torch.linspace(t0, t1, n_steps + 1)
    if SOLVERS[method].adaptive:
        path = odeint(lambda t, x: velocity(x, t), x0, times.to(device, x0.dtype),
                      method=method, rtol=rtol, atol=atol)
        return ODESolution(path[-1], path if return_trajectory else None, times, velocity.nfe)
    step = SOLVERS[method].step
    h = (t1 - t0) / n_steps
    x = x0
    trajectory = [x0] if return_trajectory else None
    for i in range(n_steps):
        x = step(velocity, x, t0 + i * h, h)
        if trajectory is not None:
            trajectory.append(x)
    return ODESolution(x, torch.stack(trajectory) if trajectory is not None else None, times, velocity.nfe)


def start_points(base: str, n_samples: int, dim: int = 2, seed=None, generator=None) -> torch.Tensor:
    """Where ``generate`` starts: ``n_samples`` points of ``base`` (n_samples, 2), or, for points of
    another width ``dim`` (a digit image has 64), the standard Gaussian N(0, I) (n_samples, dim)."""
    if dim == 2:
        return sample_base(base, n_samples, seed=seed, generator=generator)
    if canonical_base_name(base) != "gaussian":
        raise ValueError(f"base must be 'gaussian' for a model of {dim}-dimensional points (the other bases are "
                         f"2-D), got {base!r}")
    return torch.randn(n_samples, dim, generator=make_generator(seed, generator))


def generate(model, n_samples: int = 1000, base: str = "gaussian", n_steps: int = 100,
             method: str = "euler", condition=None, seed=None, generator=None,
             return_trajectory: bool = False) -> ODESolution:
    """Draw ``n_samples`` from ``base`` and carry them to t = 1 along ``model``'s field (see ``solve_ode``).

    A model of points of another width than 2 (its ``dim``) starts from the standard Gaussian of that width.
    """
    dim = getattr(model, "dim", 2)
    check_model(model, dim=dim)
    n_samples = check_positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    check_point_steps(check_positive_int("n_steps", n_steps, maximum=MAX_ODE_STEPS), n_samples,
                      f"n_samples={n_samples}")
    x0 = start_points(base, n_samples, dim, seed=seed, generator=generator)
    return solve_ode(model, x0, n_steps=n_steps, method=method, condition=condition,
                     return_trajectory=return_trajectory)


def solver_sweep(model, x0: torch.Tensor, budgets=(1, 2, 4, 8, 16, 64), condition=None) -> dict:
    """Solve from x0 with every fixed-step method of ``SOLVERS`` at each budget of network evaluations.

    A method takes ``Solver.steps_for_budget(budget)`` steps; budgets too small for one step are
    skipped. Returns {method: [ODESolution, ...]} in budget order (read ``.nfe`` and ``.x``).
    """
    budgets = [check_positive_int("budgets entry", budget, maximum=MAX_ODE_STEPS)
               for budget in as_list("budgets", budgets, "numbers of network evaluations")]
    return {name: [solve_ode(model, x0, n_steps=SOLVERS[name].steps_for_budget(budget), method=name,
                             condition=condition)
                   for budget in budgets if SOLVERS[name].steps_for_budget(budget) > 0]
            for name in solver_names(adaptive=False)}
