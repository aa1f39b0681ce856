"""The exact marginal field of the ring, checked against Monte-Carlo estimates that do not use it."""
import math

import pytest
import torch

from gen_models_utilities import create_ring_gaussians, sample_base, solve_ode
from gen_models_utilities.marginal_field import RingMarginalField
from gen_models_utilities.metrics import off_mode_fraction

FIELD = RingMarginalField()


@pytest.fixture(scope="module")
def data_points():
    return torch.from_numpy(create_ring_gaussians(200_000, seed=1)[0]).double()


def monte_carlo_velocity(x, t, x1):
    """E[x1 - x0 | x_t = x] by importance sampling over data points x1.

    Given x_t = x and x1, the base point is x0 = (x - t x1) / (1 - t), so each x1 is weighted by
    the base density there: p(x1 | x_t = x) is proportional to p_data(x1) N(x0; 0, I).
    """
    x0 = (x - t * x1) / (1 - t)
    weights = torch.softmax(-0.5 * (x0 ** 2).sum(dim=1), dim=0)
    effective = float(1 / (weights ** 2).sum())
    return (weights[:, None] * (x1 - x0)).sum(dim=0), effective


@pytest.mark.parametrize("t", [0.2, 0.5, 0.7])
@pytest.mark.parametrize("point", [(1.0, 0.5), (0.3, 2.9), (-2.0, -1.5)])
def test_the_closed_form_matches_monte_carlo(t, point, data_points):
    x = torch.tensor(point, dtype=torch.float64)
    estimate, effective = monte_carlo_velocity(x, t, data_points)
    assert effective > 1000                              # enough weight on many points to trust it
    exact = FIELD(x[None], t)[0]
    assert torch.allclose(exact, estimate, atol=0.05), (exact, estimate)


def test_the_field_at_the_ends_is_minus_x_and_x():
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(FIELD(x, 0.0), -x, atol=1e-12)         # every arrow points at the empty centre
    assert torch.allclose(FIELD(x, 1.0), x, atol=1e-12)          # and outwards at the end
    assert not torch.allclose(FIELD(x, 0.5), -x, atol=0.1)


def test_times_can_differ_per_row_and_keep_the_input_dtype():
    x = torch.tensor([[1.0, 0.5], [1.0, 0.5]])
    t = torch.tensor([[0.0], [1.0]])
    velocity = FIELD(x, t)
    assert velocity.dtype == torch.float32 and velocity.shape == (2, 2)
    assert torch.allclose(velocity, torch.tensor([[-1.0, -0.5], [1.0, 0.5]]), atol=1e-6)


@pytest.mark.parametrize("t", [0.1, 0.4, 0.7, 0.95])
def test_float64_inputs_are_computed_in_float64(t):
    """u_t(x) = x / t + (1 - t) / t * score, with the score written out from the same closed form: in
    float64 (a Python float t included) the two sides agree to rounding, ~1e-12, not float32's ~1e-7."""
    x = 3 * torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    variance, _ = FIELD.moments(torch.tensor([[t]], dtype=torch.float64))
    weights = FIELD.mode_weights(x, t)
    assert weights.dtype == torch.float64
    score = -(weights[:, :, None] * (x[:, None, :] - t * FIELD.centers[None])).sum(dim=1) / variance
    velocity = FIELD(x, t)
    assert velocity.dtype == torch.float64
    assert (velocity - (x / t + (1 - t) / t * score)).abs().max() < 1e-11


@pytest.mark.parametrize("t", [0.0, 0.4, 0.8, 1.0])
def test_the_loss_floor_matches_monte_carlo(t):
    generator = torch.Generator().manual_seed(3)
    x1 = torch.from_numpy(create_ring_gaussians(200_000, seed=2)[0]).double()
    x0 = torch.randn(x1.shape, generator=generator, dtype=torch.float64)
    x_t = (1 - t) * x0 + t * x1
    residual = ((x1 - x0 - FIELD(x_t, t)) ** 2).mean()           # mse_loss of the exact field
    assert FIELD.loss_floor(t) == pytest.approx(float(residual), rel=0.01)


def test_the_floor_has_its_closed_form_at_the_ends():
    # t = 0: u = x1 - x0 given x0 keeps the data's spread, 1 + s^2 - 1 + 9/2 (per coordinate: s^2 + R^2/2).
    assert FIELD.loss_floor(0.0) == pytest.approx(0.25 ** 2 + 9 / 2, abs=1e-4)
    # t = 1: x_1 fixes x1 but not x0: what is left is the base's variance, 1 per coordinate.
    assert FIELD.loss_floor(1.0) == pytest.approx(1.0, abs=1e-6)


def test_average_floors_weight_the_times_as_training_draws_them():
    uniform = FIELD.average_loss_floor("uniform")
    fine = FIELD.average_loss_floor("uniform", n_times=48)
    assert uniform == pytest.approx(fine, rel=1e-4)
    direct = sum(FIELD.loss_floor((i + 0.5) / 200) for i in range(200)) / 200     # midpoint rule
    assert uniform == pytest.approx(direct, rel=1e-3)
    # Logit-normal times skip the ends, where the floor is highest (t near 0), so its floor is lower.
    assert FIELD.average_loss_floor("logit_normal") < uniform
    with pytest.raises(ValueError, match="time_sampling"):
        FIELD.average_loss_floor("beta")


def test_exact_trajectories_carry_the_base_onto_the_ring():
    samples = solve_ode(FIELD, sample_base("gaussian", 2000, seed=0), n_steps=25, method="rk4").x
    assert samples.shape == (2000, 2) and torch.isfinite(samples).all()
    assert off_mode_fraction(samples) < 0.03                     # the data's own rate: exp(-4.5) = 1.1%
    assert math.isclose(float(samples.norm(dim=1).mean()), 3.0, abs_tol=0.05)
