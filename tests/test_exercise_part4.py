"""Part 4's checks accept every right answer, however it is written, and refuse what is not an answer."""
import numpy as np
import pytest
import torch

from gen_models_utilities import create_ring_gaussians, generate, sample_base, solve_ode
from gen_models_utilities import exercises as checks
from gen_models_utilities.data import RING_STD
from gen_models_utilities.marginal_field import RingMarginalField
from gen_models_utilities.models import class_code

EXACT = RingMarginalField()
REQUESTED = [2.0, 2.3, 2.5, 3.0, 3.5, 3.9, 4.5]
NUMPY_METHODS = ["inverted_cdf", "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf", "hazen",
                 "weibull", "linear", "median_unbiased", "normal_unbiased", "lower", "higher", "midpoint", "nearest"]


@pytest.fixture(scope="module")
def training_radii():
    return np.linalg.norm(create_ring_gaussians(8000, seed=0)[0], axis=1)


def flags(requested, low, high):
    return [not (low <= r <= high) for r in requested]


@pytest.mark.parametrize("seen_range", [
    *[lambda radii, m=m: tuple(np.percentile(radii, [1, 99], method=m)) for m in NUMPY_METHODS],
    lambda radii: tuple(np.quantile(radii, [0.01, 0.99])),
    lambda radii: tuple(torch.quantile(torch.as_tensor(radii, dtype=torch.float32), torch.tensor([0.01, 0.99]))),
    lambda radii: tuple(np.percentile(np.float32(radii), [1, 99])),
    lambda radii: (np.sort(radii)[int(0.01 * len(radii))], np.sort(radii)[int(0.99 * len(radii))]),
], ids=[*NUMPY_METHODS, "np.quantile", "torch.quantile float32", "float32", "sorted index"])
def test_every_percentile_convention_passes(capsys, training_radii, seen_range):
    checks.check_extrapolation(seen_range, flags, training_radii, REQUESTED, "a")
    assert capsys.readouterr().out.startswith("Correct:")


def mode_field(x, t, mode, dtype=torch.float64):
    var, c = EXACT.moments(t)
    mu = EXACT.centers[mode].to(dtype)
    return mu + c / var * (x.to(dtype) - t * mu)


def guided(form, dtype=torch.float64):
    def guided_field(mode, w):
        def velocity(x, t):
            u, v = EXACT(x, t).to(dtype), mode_field(x, t, mode, dtype)
            return form(u, v, w)
        return velocity
    return guided_field


def share_and_spread(samples, mode):
    near = (samples.double() - EXACT.centers[mode]).norm(dim=1) <= 3 * RING_STD
    return float(near.double().mean()), float(samples.std(dim=0).mean())


@pytest.mark.parametrize("guided_field", [
    guided(lambda u, v, w: u + w * (v - u)),
    guided(lambda u, v, w: w * v + (1 - w) * u),
    guided(lambda u, v, w: (1 + (w - 1)) * v - (w - 1) * u),     # Ho & Salimans' form with their w' = w - 1
    guided(lambda u, v, w: v + (w - 1) * (v - u)),
    guided(lambda u, v, w: u + w * (v - u), dtype=torch.float32),
], ids=["u + w (v - u)", "w v + (1 - w) u", "(1 + w') v - w' u", "v + (w - 1)(v - u)", "float32"])
def test_every_form_of_the_guided_field_passes(capsys, guided_field):
    checks.check_guidance(guided_field, share_and_spread, 0.125, "d")
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize("measure", [
    lambda s, mode: (float(np.mean(np.linalg.norm(s.numpy() - EXACT.centers[mode].numpy(), axis=1) <= 0.75)),
                     float(np.std(s.numpy(), axis=0).mean())),
    lambda s, mode: (float(((s - EXACT.centers[mode].float()).norm(dim=1) <= 3 * RING_STD).float().mean()),
                     float(s.var(dim=0).mean().sqrt())),
    lambda s, mode: (np.float32(share_and_spread(s, mode)[0]), torch.tensor(share_and_spread(s, mode)[1])),
], ids=["numpy, ddof 0", "torch, root of the mean variance", "numpy and torch scalars"])
def test_every_reading_of_share_and_spread_passes(capsys, measure):
    checks.check_guidance(guided(lambda u, v, w: u + w * (v - u)), measure, 0.12, "(D)")
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize("sample_mode", [
    lambda model, mode, n, steps, seed: generate(model, n, n_steps=steps, condition=class_code(mode, 8), seed=seed).x,
    lambda model, mode, n, steps, seed: solve_ode(model, sample_base("gaussian", n, seed=seed), n_steps=steps,
                                                  condition=class_code([mode] * n, 8)).x.numpy(),
], ids=["generate", "solve_ode with one code per point, numpy"])
def test_every_conditional_sampler_passes(capsys, onehot_model, sample_mode):
    with torch.no_grad():
        checks.check_conditional_sampling(sample_mode, onehot_model)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.fixture(scope="module")
def onehot_model():
    from gen_models_utilities.pretrained import load_pretrained

    return load_pretrained("onehot", "gaussian")[0]


def test_a_prediction_is_graded_in_its_range():
    assert checks.grade_number("P", 0.125, 0.09, 0.16, "why", fraction=True) == 0.125
    with pytest.raises(AssertionError, match="why"):
        checks.grade_number("P", 0.5, 0.09, 0.16, "why", fraction=True)
    with pytest.raises(AssertionError, match="a percentage"):
        checks.grade_number("P", 12.5, 0.09, 0.16, "why", fraction=True)


def test_the_guidance_check_refuses_what_is_not_a_function():
    with pytest.raises(TypeError, match="callable"):
        checks.check_guidance("u + w (v - u)", share_and_spread, 0.125, "d")
    with pytest.raises(TypeError, match="callable"):
        checks.check_guidance(guided(lambda u, v, w: u), None, 0.125, "d")
