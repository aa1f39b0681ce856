"""Part 1 of the exercise checks (paths and the field): every differently written right answer passes,
arguments that are not answers are refused, and a failure does not print the answer it expects."""
import math

import numpy as np
import pytest
import torch

from gen_models_utilities import exercises as checks
from gen_models_utilities.data import RING_STD, ring_mode_centers
from gen_models_utilities.exercises import ExerciseFailure

CENTERS = torch.from_numpy(ring_mode_centers()).float()


def trig_point(x0, x1, t):
    a = torch.pi * t / 2
    return torch.cos(a) * x0 + torch.sin(a) * x1


def trig_velocity(x0, x1, t):
    a = torch.pi * t / 2
    return torch.pi / 2 * (torch.cos(a) * x1 - torch.sin(a) * x0)


RIGHT_VELOCITIES = {
    "by hand, float32": trig_velocity,
    "by hand, float64": lambda x0, x1, t: trig_velocity(x0.double(), x1.double(), t.double()),
    "numpy": lambda x0, x1, t: (np.pi / 2 * (np.cos(np.pi * t.numpy() / 2) * x1.numpy()
                                             - np.sin(np.pi * t.numpy() / 2) * x0.numpy())),
    "central difference, step 1e-3": lambda x0, x1, t: (trig_point(x0, x1, t + 1e-3)
                                                         - trig_point(x0, x1, t - 1e-3)) / 2e-3,
    "central difference, step 1e-4": lambda x0, x1, t: (trig_point(x0, x1, t + 1e-4)
                                                         - trig_point(x0, x1, t - 1e-4)) / 2e-4,
    "forward difference, step 1e-3": lambda x0, x1, t: (trig_point(x0, x1, t + 1e-3) - trig_point(x0, x1, t)) / 1e-3,
    "torch.func.jvp": lambda x0, x1, t: torch.func.jvp(lambda s: trig_point(x0, x1, s), (t,), (torch.ones_like(t),))[1],
}


@pytest.mark.parametrize("velocity", RIGHT_VELOCITIES.values(), ids=RIGHT_VELOCITIES.keys())
def test_path_check_accepts_every_right_derivative(velocity, capsys):
    checks.check_path(trig_point, velocity)
    assert capsys.readouterr().out.startswith("Correct:")


def test_path_check_names_the_straight_path():
    with pytest.raises(ExerciseFailure, match="the straight path's velocity"):
        checks.check_path(trig_point, lambda x0, x1, t: x1 - x0)


def test_path_check_refuses_a_non_callable():
    with pytest.raises(TypeError, match="callable"):
        checks.check_path(trig_point, "x1 - x0")


def test_field_check_does_not_print_the_exact_field(trained_fm):
    with pytest.raises(ExerciseFailure) as failure:
        checks.check_field_ends(lambda x: -0.5 * x, lambda x: x, trained_fm)
    message = str(failure.value)
    assert "0 degrees off the exact direction and 0.50 times its length" in message
    x = 4 * torch.rand(256, 2, generator=torch.Generator().manual_seed(20)) - 2
    assert f"{-float(x[0, 0]):.3f}" not in message, message          # -x at the first point is not shown


def _blob_covariance_route(x, t, mu, s):
    var, cov = (1 - t) ** 2 + t ** 2 * s ** 2, t * s ** 2 - (1 - t)
    return mu + cov / var * (x - t * mu)


def _blob_x1_route(x, t, mu, s):
    var = (1 - t) ** 2 + t ** 2 * s ** 2
    return (mu + t * s ** 2 / var * (x - t * mu) - x) / (1 - t)


def _blob_x0_route(x, t, mu, s):
    var = (1 - t) ** 2 + t ** 2 * s ** 2
    return (x - (1 - t) / var * (x - t * mu)) / t


def _marginal(blob, dtype=torch.float32):
    def marginal_velocity(x, t):
        x, centers = x.to(dtype), CENTERS.to(dtype)
        var = (1 - t) ** 2 + t ** 2 * RING_STD ** 2
        logits = -((x[:, None] - t * centers[None]) ** 2).sum(dim=2) / (2 * var)
        per_blob = torch.stack([blob(x, t, mu, RING_STD) for mu in centers], dim=1)
        return (torch.softmax(logits, dim=1)[:, :, None] * per_blob).sum(dim=1)
    return marginal_velocity


@pytest.mark.parametrize("blob", [_blob_covariance_route, _blob_x1_route, _blob_x0_route])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_marginal_check_accepts_every_route(blob, dtype, capsys):
    checks.check_marginal_velocity(_marginal(blob, dtype), lambda x, t, mu, s: blob(x.to(dtype), t, mu.to(dtype), s))
    assert capsys.readouterr().out.startswith("Correct:")


def test_marginal_check_accepts_numpy_and_unnormalised_then_divided_weights(capsys):
    def marginal_velocity(x, t):
        x, centers = x.double().numpy(), CENTERS.double().numpy()
        var = (1 - t) ** 2 + t ** 2 * RING_STD ** 2
        density = np.exp(-((x[:, None] - t * centers[None]) ** 2).sum(axis=2) / (2 * var))
        weights = density / density.sum(axis=1, keepdims=True)
        per_blob = centers[None] + (t * RING_STD ** 2 - (1 - t)) / var * (x[:, None] - t * centers[None])
        return (weights[:, :, None] * per_blob).sum(axis=1)
    checks.check_marginal_velocity(marginal_velocity)
    assert capsys.readouterr().out.startswith("Correct:")


def test_marginal_check_refuses_a_non_callable_blob():
    with pytest.raises(TypeError, match="callable"):
        checks.check_marginal_velocity(_marginal(_blob_covariance_route), "mu")


@pytest.mark.parametrize("letter", ["b", "(B)", " b"])
def test_encode_check_reads_any_spelling_of_a_letter(trained_fm, letter, capsys):
    def encode(velocity, x1, n_steps):
        x, h = x1, 1 / n_steps
        for k in range(n_steps):
            x = x - h * velocity(x, 1 - k * h)
        return x
    with torch.no_grad():
        checks.check_encode(encode, letter, trained_fm, n_samples=20, n_steps=4)
    assert capsys.readouterr().out.startswith("Correct:")


def test_encode_check_grades_no_letter(trained_fm, capsys):
    """The visible check only reads the letter: a wrong one is recorded, and the hidden test grades it."""
    def encode(velocity, x1, n_steps):
        x = x1
        for k in range(n_steps):
            x = x - velocity(x, 1 - k / n_steps) / n_steps
        return x
    checks.check_encode(encode, "a", trained_fm, n_samples=20, n_steps=4)
    assert "DIFFUSION_ANSWER = 'a'" in capsys.readouterr().out


def test_velocity_tolerance_is_far_below_every_named_mistake():
    """The loosest accepted answer is off by 5e-3; the closest named mistake differs by far more."""
    generator = torch.Generator().manual_seed(0)
    x0, x1, t = torch.randn(256, 2, generator=generator), torch.randn(256, 2, generator=generator), torch.rand(256, 1)
    closest = (trig_velocity(x0, x1, t) * (1 - 2 / math.pi)).abs().max()
    assert checks.part1_paths.VELOCITY_ATOL < float(closest) / 10
