"""ODE solvers against an equation with a known solution: order of accuracy, NFE, shapes, errors."""
import math

import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from gen_models_utilities.solvers import SOLVERS, generate, solve_ode, solver_names

ORDERS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def linear_field(x, t):
    """dx/dt = -x + t, whose solution from x(0) is x(t) = t - 1 + (x(0) + 1) exp(-t)."""
    return -x + t


def exact_solution(x0, t):
    return t - 1 + (x0 + 1) * math.exp(-t)


@pytest.fixture
def start():
    return torch.tensor([[0.5, -2.0], [3.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


def error_at_one(method, n_steps, x0):
    x = solve_ode(linear_field, x0, n_steps=n_steps, method=method).x
    return float((x - exact_solution(x0, 1.0)).abs().max())


@pytest.mark.parametrize("method", list(ORDERS))
def test_fixed_step_methods_have_their_order_of_accuracy(method, start):
    # Halving the step divides the global error by about 2^p for a method of order p.
    coarse, fine = error_at_one(method, 8, start), error_at_one(method, 16, start)
    observed = math.log2(coarse / fine)
    assert abs(observed - ORDERS[method]) < 0.25, f"{method}: observed order {observed:.2f}"


def test_higher_order_methods_are_more_accurate_at_equal_cost(start):
    # 16 evaluations each: 16 Euler steps, 8 midpoint or Heun steps, 4 RK4 steps.
    errors = {m: error_at_one(m, 16 // SOLVERS[m].evaluations, start) for m in ORDERS}
    assert errors["rk4"] < errors["midpoint"] < errors["euler"]
    assert errors["heun"] < errors["euler"]


def test_dopri5_is_accurate_and_reports_its_evaluations(start):
    loose = solve_ode(linear_field, start, method="dopri5", rtol=1e-3, atol=1e-3)
    tight = solve_ode(linear_field, start, method="dopri5", rtol=1e-9, atol=1e-9)
    assert float((tight.x - exact_solution(start, 1.0)).abs().max()) < 1e-7
    assert 0 < loose.nfe < tight.nfe


@pytest.mark.parametrize("method", solver_names(adaptive=False))
@pytest.mark.parametrize("n_steps", [1, 3, 10])
def test_fixed_step_nfe_is_steps_times_evaluations_per_step(method, n_steps, start):
    assert solve_ode(linear_field, start, n_steps=n_steps, method=method).nfe == n_steps * SOLVERS[method].evaluations


@pytest.mark.parametrize("method", solver_names())
def test_trajectory_shape_and_endpoints(method, start):
    solution = solve_ode(linear_field, start, n_steps=5, method=method, return_trajectory=True)
    assert solution.trajectory.shape == (6, 3, 2)
    assert solution.times.shape == (6,)
    torch.testing.assert_close(solution.trajectory[0], start)
    torch.testing.assert_close(solution.trajectory[-1], solution.x)
    assert solve_ode(linear_field, start, n_steps=5, method=method).trajectory is None


def test_backwards_solve_returns_to_start(start):
    forward = solve_ode(linear_field, start, n_steps=40, method="rk4").x
    back = solve_ode(linear_field, forward, n_steps=40, method="rk4", t0=1.0, t1=0.0).x
    torch.testing.assert_close(back, start, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", solver_names())
def test_conditional_models_work_with_every_solver(method):
    torch.manual_seed(0)
    onehot, radius = ConditionalVelocityField(n_classes=3, hidden_dim=16), ConditionalVelocityFieldRadius(hidden_dim=16)
    x0 = torch.randn(20, 2)
    loose = {"rtol": 1e-3, "atol": 1e-3}           # dopri5 only; keeps an untrained field cheap

    def sample(model, condition):
        return solve_ode(model, x0, n_steps=2, method=method, condition=condition, **loose).x

    x_onehot, x_radius = sample(onehot, torch.tensor([0.0, 1.0, 0.0])), sample(radius, torch.tensor([3.0]))
    for x in (x_onehot, x_radius):
        assert x.shape == (20, 2) and torch.isfinite(x).all()
    # The condition reaches the network: another class moves the same x0 elsewhere.
    assert not torch.allclose(x_onehot, sample(onehot, torch.tensor([1.0, 0.0, 0.0])))
    code = torch.tensor([0.0, 0.0, 1.0])
    assert generate(onehot, 5, n_steps=1, method=method, condition=code, seed=0).x.shape == (5, 2)


def test_per_row_conditions_match_one_row_at_a_time():
    torch.manual_seed(0)
    model = ConditionalVelocityField(n_classes=2, hidden_dim=16)
    x0 = torch.randn(4, 2)
    codes = torch.eye(2)[[0, 1, 1, 0]]
    together = solve_ode(model, x0, n_steps=3, method="heun", condition=codes).x
    for i in range(4):
        alone = solve_ode(model, x0[i:i + 1], n_steps=3, method="heun", condition=codes[i]).x
        torch.testing.assert_close(together[i:i + 1], alone)


def test_unknown_method_is_refused_by_name(start):
    with pytest.raises(ValueError, match="method"):
        solve_ode(linear_field, start, method="rk5")
    with pytest.raises(ValueError, match="method"):
        generate(VelocityField(hidden_dim=8), 4, method="Euler")


@pytest.mark.parametrize("n_steps", [0, -3])
def test_step_count_below_one_is_refused_by_name(n_steps, start):
    with pytest.raises(ValueError, match="n_steps"):
        solve_ode(linear_field, start, n_steps=n_steps)


def test_non_integer_step_count_is_refused(start):
    with pytest.raises(TypeError, match="n_steps"):
        solve_ode(linear_field, start, n_steps=2.5)
