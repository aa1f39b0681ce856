"""A continuous normalising flow (CNF) trained by maximum likelihood, for comparison.

The network is the same velocity model as flow matching; only the training differs. Each step
scores a data batch exactly (``likelihood``: integrate [x, div v] backwards from t = 1 to 0)
with a fixed-step RK4 solve that keeps the autograd graph, and follows the gradient of the
negative log-likelihood through every solver step. That costs one forward pass, one autograd
pass per coordinate for the divergence, and the backward pass through all of them, at every
one of the 4 * ode_steps evaluations, where flow matching needs one evaluation per step.
Sampling is an ODE solve from the base, exactly as for flow matching (``solvers.generate``).
"""
from __future__ import annotations

import torch
from torch import nn

from .._checks import as_points, check_model, check_positive_int, make_generator
from ..base_distributions import canonical_base_name, get_base
from ..loaders import RandomBatches
from ..solvers import rk4_step
from ..training import TrainingResult, check_trainable, check_training_budget, run_steps
from .likelihood import AugmentedField, base_log_density

MAX_CNF_ODE_STEPS = 1000        # RK4 steps of one differentiable solve (each keeps its autograd graph)


def cnf_log_likelihood(model: nn.Module, x1: torch.Tensor, base: str = "gaussian", ode_steps: int = 6) -> torch.Tensor:
    """Differentiable exact log p_1(x1): (B, 2) -> (B,), by ``ode_steps`` RK4 steps from t = 1 to 0."""
    check_model(model, dim=2, kinds=(None,), points="x1")
    base_log_density(base, torch.zeros(1, 2))                 # the base needs a density
    ode_steps = check_positive_int("ode_steps", ode_steps, maximum=MAX_CNF_ODE_STEPS)
    return rk4_log_likelihood(AugmentedField(model, create_graph=True), as_points("x1", x1), base, ode_steps)


def rk4_log_likelihood(field: AugmentedField, x1: torch.Tensor, base: str, ode_steps: int) -> torch.Tensor:
    """The solve behind ``cnf_log_likelihood``, run by ``train_cnf`` every step on its own checked batches."""
    state = torch.cat([x1, torch.zeros(x1.shape[0], 1, dtype=x1.dtype, device=x1.device)], dim=1)
    h = -1.0 / ode_steps
    for i in range(ode_steps):
        state = rk4_step(field, state, 1.0 + i * h, h)
    return get_base(base).log_density(state[:, :-1]) + state[:, -1]


def train_cnf(model: nn.Module, data, base: str = "gaussian", n_steps: int = 200, batch_size: int = 256,
              lr: float = 1e-3, schedule: str = "cosine", ode_steps: int = 6, seed=None,
              progress=None) -> TrainingResult:
    """Train ``model`` as a CNF by maximising the exact log-likelihood of ``data`` (N, 2).

    Same optimiser and learning-rate ``schedule`` as ``training.train``. ``losses`` in the
    result are the mean negative log-likelihoods (nats per point) of the batches.
    """
    check_trainable(model)
    check_model(model, dim=2, kinds=(None,))
    base = canonical_base_name(base)
    base_log_density(base, torch.zeros(1, 2))                 # the base needs a density
    n_steps, batch_size, lr = check_training_budget(n_steps, batch_size, lr, schedule)
    ode_steps = check_positive_int("ode_steps", ode_steps, maximum=MAX_CNF_ODE_STEPS)
    rng = make_generator(seed)
    batches = RandomBatches(as_points("data", data), batch_size, generator=rng)
    field = AugmentedField(model, create_graph=True)

    def batch_loss() -> torch.Tensor:
        x1, _ = batches.sample()
        return -rk4_log_likelihood(field, x1, base, ode_steps).mean()

    result = TrainingResult(base=base, recipe={"n_steps": n_steps, "batch_size": batch_size, "lr": lr,
                                               "schedule": schedule, "ode_steps": ode_steps,
                                               "objective": "maximum likelihood"})
    return run_steps(model, batch_loss, n_steps, lr, schedule, result, desc="CNF", progress=progress)
