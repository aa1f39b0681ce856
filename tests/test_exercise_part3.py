"""Part 3 of the exercises (sampling): differently written right answers pass, bad arguments are refused,
and the tolerances the checks state hold for the spread of valid methods."""
import math

import numpy as np
import pytest
import torch

from gen_models_utilities import exercises as checks
from gen_models_utilities.base_distributions import sample_base
from gen_models_utilities.data import ring_mode_centers
from gen_models_utilities.exercises import ExerciseFailure
from gen_models_utilities.metrics import DATA_OFF_MODE, distance_to_nearest_mode, off_mode_fraction, samples_per_mode
from gen_models_utilities.solvers import euler_step, generate, midpoint_step, rk4_step, solve_ode
from gen_models_utilities.uncertainty import from_values, over_seeds


def run(check, *args, capsys=None) -> str:
    check(*args)
    return capsys.readouterr().out if capsys is not None else ""


# ----------------------------------------------------------------------------- exercise 9

def euler_loop(velocity, x0, times):
    points = [x0]
    for t_now, t_next in zip(times[:-1].tolist(), times[1:].tolist()):
        points.append(points[-1] + (t_next - t_now) * velocity(points[-1], t_now))
    return torch.stack(points)


def euler_tensor_times(velocity, x0, times):          # the times as 0-d tensors, steps from torch.diff
    x, path = x0, [x0]
    for t, h in zip(times[:-1], torch.diff(times)):
        x = x + h * velocity(x, t)
        path.append(x)
    return torch.stack(path)


def euler_numpy(velocity, x0, times):                 # float64 numpy result
    path = np.empty((len(times), *x0.shape))
    path[0] = x = x0.double().numpy()
    for k in range(len(times) - 1):
        x = x + float(times[k + 1] - times[k]) * velocity(torch.from_numpy(x), float(times[k])).numpy()
        path[k + 1] = x
    return path


@pytest.mark.parametrize("answer", [euler_loop, euler_tensor_times, euler_numpy])
def test_euler_accepts_every_way_of_writing_it(answer, capsys):
    assert run(checks.check_euler, answer, capsys=capsys).startswith("Correct:")


def test_euler_names_a_uniform_step_on_a_crowded_grid():
    def equal_steps(velocity, x0, times):
        h, path = float(times[-1] - times[0]) / (len(times) - 1), [x0]
        for t in times[:-1].tolist():
            path.append(path[-1] + h * velocity(path[-1], t))
        return torch.stack(path)
    with pytest.raises(ExerciseFailure, match="crowds its steps.*equal steps on a grid whose steps differ"):
        checks.check_euler(equal_steps)


# ----------------------------------------------------------------------------- exercise 10

@pytest.mark.parametrize("endpoint, share", [
    (lambda x0: torch.zeros_like(x0), 1.0), (lambda x0: x0 - x0, 1), (lambda x0: np.zeros((len(x0), 2)), 0.95),
    (lambda x0: x0 + 1.0 * (-x0), np.float64(0.999)),
])
def test_one_step_accepts_equivalent_answers(endpoint, share, trained_fm, capsys):
    assert run(checks.check_one_step, endpoint, share, trained_fm, capsys=capsys).startswith("Correct:")


@pytest.mark.parametrize("share, phrase", [(100, "a percentage where a fraction is asked for"),
                                           (0.011, "the data's own rate"), (float("nan"), "not a fraction")])
def test_one_step_refuses_shares_that_are_not_the_answer(share, phrase, trained_fm):
    with pytest.raises(ExerciseFailure, match=phrase):
        checks.check_one_step(lambda x0: torch.zeros_like(x0), share, trained_fm)


# ----------------------------------------------------------------------------- exercise 11

def kutta_regrouped(velocity, x, t, h):
    k1 = velocity(x, t)
    k2 = velocity(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = velocity(x - h * k1 + 2 * h * k2, t + h)
    return x + h / 6 * k1 + 2 * h / 3 * k2 + h / 6 * k3


def errors_of(step, field, x0, exact, n):
    x = x0
    for k in range(n):
        x = step(field, x, k / n, 1 / n)
    return (x - exact).norm(dim=1)


NORMS = {"mean": lambda e: e.mean(), "rms": lambda e: e.pow(2).mean().sqrt(), "max": lambda e: e.max(),
         "per point": None}


def order_with(norm):
    def observed_order(step, velocity, x0, exact, n_steps):
        coarse, fine = errors_of(step, velocity, x0, exact, n_steps), errors_of(step, velocity, x0, exact, 2 * n_steps)
        if norm == "per point":
            return float(torch.log2(coarse / fine).mean())
        return math.log2(float(NORMS[norm](coarse)) / float(NORMS[norm](fine)))
    return observed_order


@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n_steps", [1, 2, 4, 8, 16])
def test_measured_orders_of_kutta_fall_in_the_band_the_check_allows(norm, dtype, n_steps):
    field, x0, exact = checks.spiral_problem()
    order = order_with(norm)(kutta_regrouped, field, x0.to(dtype), exact.to(dtype), n_steps)
    assert 2.75 <= order <= 3.5, order


@pytest.mark.parametrize("norm", list(NORMS))
def test_kutta_check_accepts_every_error_norm(norm, capsys):
    field, x0, exact = checks.spiral_problem()
    order = order_with(norm)(kutta_regrouped, field, x0, exact, 2)
    out = run(checks.check_kutta, kutta_regrouped, order_with(norm), order, capsys=capsys)
    assert out.startswith("Correct:"), out


def test_kutta_check_takes_an_order_given_as_a_whole_number(capsys):
    assert run(checks.check_kutta, kutta_regrouped, order_with("mean"), 3, capsys=capsys).startswith("Correct:")


def test_spiral_problem_is_exact():
    field, x0, exact = checks.spiral_problem()
    x, h = x0, 1 / 512
    for k in range(512):
        x = rk4_step(field, x, k * h, h)
    assert torch.allclose(x, exact, atol=1e-10)
    for step, order in ((euler_step, 1), (midpoint_step, 2), (rk4_step, 4)):
        assert abs(order_with("mean")(step, field, x0, exact, 4) - order) < 0.15


# ----------------------------------------------------------------------------- exercise 12

def off_mode_with_from_values(model, n_steps, seeds, n_samples):
    shares = []
    for seed in seeds:
        shares.append(off_mode_fraction(generate(model, n_samples, n_steps=n_steps, seed=seed).x))
    return from_values(shares)


def test_step_study_judges_the_answer_the_students_own_seeds_support(trained_fm, capsys):
    counts, seeds, n = (8, 16, 32), (5, 6), 1000
    estimates = {k: over_seeds(lambda s: off_mode_fraction(generate(trained_fm, n, n_steps=k, seed=s).x), seeds)
                 for k in counts}
    answer = next(k for k in counts if estimates[k].low <= DATA_OFF_MODE)
    out = run(checks.check_step_study, off_mode_with_from_values, answer, trained_fm, counts, seeds, n,
              capsys=capsys)
    assert out.startswith("Correct:"), out


# ----------------------------------------------------------------------------- exercise 13

def report_as_list(model, x0, reference, **solver_options):
    solution = solve_ode(model, x0, **solver_options)
    distance = np.linalg.norm((solution.x - reference).numpy(), axis=1).mean()
    return [np.int64(solution.nfe), np.float32(off_mode_fraction(solution.x)), distance]


def test_solver_report_accepts_a_list_of_numpy_numbers(trained_fm, capsys):
    assert run(checks.check_solver_report, report_as_list, "(B)", trained_fm, capsys=capsys).startswith("Correct:")


def test_solver_report_refuses_a_letter_that_is_not_a_choice(trained_fm):
    with pytest.raises(ExerciseFailure, match="not one of the choices"):
        checks.check_solver_report(report_as_list, "e", trained_fm)


# ----------------------------------------------------------------------------- exercise 14

def imbalance_numpy(samples):
    counts = samples_per_mode(samples).astype(float)
    return 0.5 * np.abs(counts / counts.sum() - 0.125).sum()


def scaled_by_solve_ode(model, scale, n_samples, seed):
    return solve_ode(model, scale * sample_base("gaussian", n_samples, seed=seed), n_steps=32).x.numpy()


def test_temperature_accepts_numpy_answers_and_the_package_solver(trained_fm, capsys):
    out = run(checks.check_temperature, imbalance_numpy, scaled_by_solve_ode, "A", trained_fm, capsys=capsys)
    assert out.startswith("Correct:"), out


# ----------------------------------------------------------------------------- exercise 15

CENTERS = torch.from_numpy(ring_mode_centers()).float()


@pytest.mark.parametrize("answer", [
    lambda x0: torch.round(torch.atan2(x0[:, 1], x0[:, 0]) / (torch.pi / 4)).long() % 8,
    lambda x0: distance_to_nearest_mode(x0)[1],                                     # the nearest centre, numpy
    lambda x0: (x0 @ CENTERS.T / x0.norm(dim=1, keepdim=True)).argmax(dim=1),       # the largest cosine
    lambda x0: np.round(np.degrees(np.arctan2(x0[:, 1].numpy(), x0[:, 0].numpy())) / 45).astype(int) % 8,
])
def test_start_sector_accepts_every_way_of_writing_it(answer, capsys):
    assert run(checks.check_start_sector, answer, "d", capsys=capsys).startswith("Correct:")


# ----------------------------------------------------------------------------- every check

@pytest.mark.parametrize("check, arguments", [
    (checks.check_euler, ("euler",)),
    (checks.check_kutta, (None, None, 3.0)),
    (checks.check_step_study, (0.1, 32, None, (8,), (0, 1), 100)),
    (checks.check_solver_report, ("report", "c", None)),
    (checks.check_temperature, (None, None, "a", None)),
    (checks.check_start_sector, ([0, 1], "d")),
])
def test_part3_checks_refuse_non_callables(check, arguments):
    with pytest.raises(TypeError, match="callable"):
        check(*arguments)
