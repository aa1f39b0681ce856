"""Part 5's checks accept every right answer, however it is written, and refuse what is not an answer."""
import numpy as np
import pytest
import torch

from gen_models_utilities import exercises as checks
from gen_models_utilities import generate, ring_quality, solve_ode


def straightness(trajectory):
    segments = (trajectory[1:] - trajectory[:-1]).norm(dim=2)
    return float(((trajectory[-1] - trajectory[0]).norm(dim=1) / segments.sum(dim=0)).mean())


def rk4_endpoints(velocity, x0, n_steps):
    return solve_ode(velocity, x0, n_steps=n_steps, method="rk4").x


def fewest_by_generate(velocity, step_counts, seeds, n_samples):
    for n_steps in step_counts:
        verdicts = [ring_quality(generate(velocity, n_samples, n_steps=n_steps, seed=seed).x).as_good_as_data
                    for seed in seeds]
        if all(verdicts):
            return np.int64(n_steps)
    return None


def fewest_with_a_flag(velocity, step_counts, seeds, n_samples):
    answer = None
    for n_steps in reversed(step_counts):          # from the most steps down: the last passing count is the fewest
        good = True
        for seed in seeds:
            x = generate(velocity, n_samples, n_steps=n_steps, seed=seed).x.double()
            good = good and ring_quality(x).as_good_as_data
        if good:
            answer = n_steps
        else:
            break
    return answer


@pytest.mark.parametrize("fewest", [fewest_by_generate, fewest_with_a_flag], ids=["generate, numpy int", "backwards"])
def test_every_way_to_find_the_fewest_steps_passes(capsys, fewest):
    checks.check_fewest_steps(fewest)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize("measure", [
    lambda tr: float(np.mean(np.linalg.norm(tr[-1] - tr[0], axis=1)
                             / np.linalg.norm(np.diff(tr.numpy(), axis=0), axis=2).sum(axis=0))),
    lambda tr: torch.stack([(p[-1] - p[0]).norm() / (p[1:] - p[:-1]).norm(dim=1).sum()
                            for p in tr.double().unbind(dim=1)]).mean(),
], ids=["numpy", "a loop over paths, float64 tensor"])
def test_every_way_to_measure_straightness_passes(capsys, measure):
    checks.check_reflow(measure, rk4_endpoints, "c")
    assert capsys.readouterr().out.startswith("Correct:")


def kutta_endpoints(velocity, x0, n_steps):
    x = x0
    for k in range(n_steps):
        t, h = k / n_steps, 1 / n_steps
        k1 = velocity(x, t)
        k2 = velocity(x + h / 2 * k1, t + h / 2)
        k3 = velocity(x + h * (2 * k2 - k1), t + h)
        x = x + h * (k1 + 4 * k2 + k3) / 6
    return x


@pytest.mark.parametrize("endpoints", [
    rk4_endpoints,
    kutta_endpoints,
    lambda velocity, x0, n_steps: solve_ode(velocity, x0, n_steps=n_steps, method="dopri5").x,
    lambda velocity, x0, n_steps: solve_ode(velocity, x0.double(), n_steps=4 * n_steps, method="rk4").x.numpy(),
], ids=["rk4", "kutta", "dopri5", "rk4, more steps, numpy"])
def test_every_accurate_solver_makes_the_pairs(capsys, endpoints):
    checks.check_reflow(straightness, endpoints, "(C)")
    assert capsys.readouterr().out.startswith("Correct:")


def test_the_checks_refuse_what_is_not_a_function():
    with pytest.raises(TypeError, match="callable"):
        checks.check_fewest_steps(16)
    with pytest.raises(TypeError, match="callable"):
        checks.check_reflow(straightness, None, "c")
