"""A CNF trained by maximum likelihood (gen_models_utilities.baselines.cnf)."""
import math

import pytest
import torch

from gen_models_utilities import VelocityField, create_ring_gaussians
from gen_models_utilities.baselines.cnf import cnf_log_likelihood, train_cnf
from gen_models_utilities.baselines.likelihood import log_likelihood


def test_training_likelihood_agrees_with_the_evaluation_one():
    torch.manual_seed(0)
    model = VelocityField()
    x = torch.randn(16, 2)
    differentiable = cnf_log_likelihood(model, x, "gaussian", ode_steps=4)
    evaluated = log_likelihood(model, x, "gaussian", n_steps=4, method="rk4")
    torch.testing.assert_close(differentiable.detach(), evaluated, atol=1e-4, rtol=1e-4)
    differentiable.sum().backward()            # gradients flow to the weights through the solve
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_cnf_loss_decreases_on_a_tiny_run():
    data, _ = create_ring_gaussians(1000, seed=0)
    torch.manual_seed(0)
    model = VelocityField(hidden_dim=32)
    result = train_cnf(model, data, n_steps=12, batch_size=64, lr=1e-2, ode_steps=2, seed=0, progress=False)
    assert len(result.losses) == 12 and all(math.isfinite(v) for v in result.losses)
    assert sum(result.losses[-3:]) < sum(result.losses[:3])
    assert result.recipe["objective"] == "maximum likelihood"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="known density"):
        train_cnf(VelocityField(), torch.zeros(8, 2), base="ethz_logo", n_steps=1)
    with pytest.raises(ValueError, match="ode_steps"):
        train_cnf(VelocityField(), torch.zeros(8, 2), n_steps=1, ode_steps=0)
    with pytest.raises(TypeError, match="model"):
        train_cnf("model", torch.zeros(8, 2), n_steps=1)


def test_a_smooth_activation_gives_a_smooth_divergence():
    """With ReLU the divergence is piecewise constant in x; with SiLU it changes continuously."""
    from gen_models_utilities.baselines.likelihood import velocity_and_divergence

    line = torch.stack([torch.linspace(-1, 1, 2001), torch.zeros(2001)], dim=1).double()
    for activation, smooth in (("relu", False), ("silu", True)):
        torch.manual_seed(0)
        model = VelocityField(activation=activation).double()
        divergence = velocity_and_divergence(model, line, 0.5)[1].detach()
        flat = (divergence[1:] == divergence[:-1]).double().mean().item()   # neighbours with the same value
        assert (flat < 0.05) if smooth else (flat > 0.8)
