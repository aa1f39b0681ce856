"""Exact likelihood by the instantaneous change of variables (gen_models_utilities.baselines.likelihood)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from gen_models_utilities import generate
from gen_models_utilities.baselines.likelihood import (base_log_density, hutchinson_divergence, log_likelihood,
                                             plot_sample_densities, ring_log_density, velocity_and_divergence)


class ZeroField(nn.Module):
    """The identity flow: v(x, t) = 0 everywhere."""

    def forward(self, x, t, condition=None):
        return torch.zeros_like(x)


class LinearField(nn.Module):
    """v(x, t) = A x: the flow is x_1 = exp(A) x_0, with divergence trace(A) everywhere."""

    def __init__(self, matrix):
        super().__init__()
        self.matrix = nn.Parameter(torch.as_tensor(matrix, dtype=torch.float32), requires_grad=False)

    def forward(self, x, t, condition=None):
        return x @ self.matrix.T


def test_identity_flow_gives_the_standard_normal_density():
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 2
    closed_form = -0.5 * (x ** 2).sum(dim=1) - math.log(2 * math.pi)
    torch.testing.assert_close(log_likelihood(ZeroField(), x, "gaussian", n_steps=4), closed_form)


def test_identity_flow_under_the_uniform_base():
    x = torch.tensor([[0.0, 1.0], [3.4, -3.4], [3.6, 0.0]])
    log_p = log_likelihood(ZeroField(), x, "uniform", n_steps=2)
    assert torch.allclose(log_p[:2], torch.full((2,), -math.log(49.0)))
    assert log_p[2] == -math.inf


def test_linear_flow_matches_the_change_of_variables_formula():
    # x_1 = exp(A) x_0 with A = diag(a, b): p_1(x) = N(exp(-A) x; 0, I) exp(-(a + b)).
    a, b = 0.3, -0.5
    x1 = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    x0 = x1 * torch.tensor([math.exp(-a), math.exp(-b)])
    expected = -0.5 * (x0 ** 2).sum(dim=1) - math.log(2 * math.pi) - (a + b)
    log_p = log_likelihood(LinearField([[a, 0.0], [0.0, b]]), x1, "gaussian", n_steps=20, method="rk4")
    torch.testing.assert_close(log_p, expected, atol=1e-4, rtol=1e-4)


def test_divergence_equals_the_trace_of_autograds_jacobian():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 2))
    field = lambda x, t: net(torch.cat([x, torch.full((x.shape[0], 1), float(t))], dim=1))  # noqa: E731
    x = torch.randn(16, 2)
    _, divergence = velocity_and_divergence(field, x, 0.3)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(lambda p: field(p[None], 0.3)[0], x[i])
        assert divergence[i].item() == pytest.approx(torch.trace(jacobian).item(), abs=1e-5)


def test_ring_log_density_is_a_normalised_density():
    axis = np.linspace(-5, 5, 301)
    xx, yy = np.meshgrid(axis, axis)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    mass = ring_log_density(grid).exp().sum().item() * (axis[1] - axis[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_a_flow_scores_its_own_samples_above_the_empty_centre(trained_fm):
    samples = generate(trained_fm, 200, n_steps=20, seed=0).x
    log_p = log_likelihood(trained_fm, samples[:50], "gaussian", n_steps=8)
    assert log_p.shape == (50,) and torch.isfinite(log_p).all()
    # Points the model generates are far more probable under it than points in the empty centre.
    assert log_p.mean() > log_likelihood(trained_fm, torch.zeros(5, 2), "gaussian", n_steps=8).mean() + 2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="known density"):
        base_log_density("ethz_logo", torch.zeros(1, 2))
    with pytest.raises(ValueError, match="known density"):
        log_likelihood(ZeroField(), torch.zeros(2, 2), "ethz_logo")
    with pytest.raises(ValueError, match="x1"):
        log_likelihood(ZeroField(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="method"):
        log_likelihood(ZeroField(), torch.zeros(2, 2), method="leapfrog")


class QuadraticField(nn.Module):
    """v(x, t) = A x + x * x: Jacobian A + 2 diag(x), divergence trace(A) + 2 sum(x)."""

    def forward(self, x, t, condition=None):
        return x @ torch.tensor([[0.5, 2.0], [-1.0, -1.5]]).T + x * x


def test_hutchinson_is_unbiased_with_the_variance_theory_gives():
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0)).repeat(10000, 1)   # each point 10000 times
    exact = velocity_and_divergence(QuadraticField(), x, 0.5)[1]
    generator = torch.Generator().manual_seed(1)
    for probe in ("rademacher", "gaussian"):
        estimates = hutchinson_divergence(QuadraticField(), x, 0.5, probe=probe, generator=generator)
        mean = estimates.reshape(10000, 4).mean(dim=0)
        torch.testing.assert_close(mean, exact[:4], atol=0.1, rtol=0)
        # Rademacher: var = (A12 + A21)^2 = 1; Gaussian: 2 ||sym(J)||_F^2, here 2 (J11^2 + J22^2) + 1
        jacobian_diagonal = torch.tensor([0.5, -1.5]) + 2 * x[:4]
        theory = torch.ones(4) if probe == "rademacher" else 2 * (jacobian_diagonal ** 2).sum(dim=1) + 1
        variance = estimates.reshape(10000, 4).var(dim=0)
        torch.testing.assert_close(variance, theory, rtol=0.2, atol=0.05)   # wrong by 2x fails
    averaged = hutchinson_divergence(QuadraticField(), x, 0.5, n_probes=16, generator=generator)
    assert averaged.reshape(10000, 4).var(dim=0).mean().item() == pytest.approx(1 / 16, rel=0.15)


def test_hutchinson_is_exact_for_a_diagonal_jacobian_with_rademacher_probes():
    field = LinearField([[0.7, 0.0], [0.0, -2.0]])
    x = torch.randn(50, 2)
    estimate = hutchinson_divergence(field, x, 0.3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimate, torch.full((50,), -1.3), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="n_probes"):
        hutchinson_divergence(field, x, 0.3, n_probes=0)
    with pytest.raises(ValueError, match="probe"):
        hutchinson_divergence(field, x, 0.3, probe="uniform")


def test_sample_densities_draw_one_panel_per_sample_set_after_the_exact_one():
    import matplotlib.pyplot as plt

    points = torch.as_tensor(np.random.default_rng(0).normal(size=(200, 2)), dtype=torch.float32)
    fig = plot_sample_densities({"a": points, "b": 2 * points}, n_grid=30)
    assert [ax.get_title() for ax in fig.axes] == ["exact density of the ring", "a", "b"]
    plt.close(fig)
    with pytest.raises(ValueError, match="samples"):
        plot_sample_densities({})
