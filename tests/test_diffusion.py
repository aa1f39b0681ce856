"""The DDPM-style comparison model (gen_models_utilities.diffusion)."""
import math

import pytest
import torch

from gen_models_utilities import VelocityField, create_ring_gaussians, wasserstein2
from gen_models_utilities.diffusion import (DiffusionModel, NoiseSchedule, ProbabilityFlowField, add_noise,
                                            noise_prediction_loss, sample_ancestral, sample_probability_flow,
                                            train_diffusion)


@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are tiny: one thread is faster on a shared machine and gives the same numbers."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_schedule_runs_from_data_to_noise():
    schedule = NoiseSchedule()
    s = torch.linspace(0, 1, 101)
    abar = schedule.alpha_bar(s)
    assert abar[0] == pytest.approx(1.0)
    assert abar[-1] < 1e-4                                    # essentially pure noise at s = 1
    assert torch.all(abar[1:] < abar[:-1])                    # strictly decreasing
    torch.testing.assert_close(abar + schedule.noise_std(s) ** 2, torch.ones_like(s))   # variance preserving


def test_schedule_matches_ddpm_per_step_betas():
    # With 1000 steps, 1 - abar(s_k) / abar(s_{k-1}) runs from about 1e-4 to 0.02 as in DDPM.
    schedule = NoiseSchedule()
    s = torch.linspace(0, 1, 1001, dtype=torch.float64)
    betas = 1 - schedule.alpha_bar(s[1:]) / schedule.alpha_bar(s[:-1])
    assert betas[0].item() == pytest.approx(1e-4, rel=0.15)
    assert betas[-1].item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(betas[1:] > betas[:-1])


def test_forward_process_keeps_unit_variance():
    schedule = NoiseSchedule()
    x = torch.randn(20000, 2, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1))
    for s in (0.1, 0.5, 0.9):
        noisy = add_noise(schedule, x, torch.full((20000, 1), s), noise)
        assert noisy.var().item() == pytest.approx(1.0, abs=0.05)


def test_an_exact_noise_predictor_turns_gaussian_data_into_itself():
    # For standard normal data x_s is standard normal for every s and the optimal predictor is
    # eps = sigma(s) x; the probability-flow field is then zero and the ancestral chain keeps N(0, I).
    model = DiffusionModel()
    model.forward = lambda x, s: model.schedule.noise_std(torch.as_tensor(s).reshape(-1, 1)) * x
    field = ProbabilityFlowField(model)
    x = torch.randn(8, 2)
    torch.testing.assert_close(field(x, torch.full((8, 1), 0.4)), torch.zeros(8, 2), atol=1e-5, rtol=0)
    # (DDPM's posterior variance is exact only for fine steps: 200 steps keep N(0, I) within 2%.)
    samples = sample_ancestral(model, 4000, n_steps=200, seed=0).x
    assert samples.std().item() == pytest.approx(1.0, abs=0.03)


def test_short_training_learns_and_both_samplers_improve():
    data, _ = create_ring_gaussians(2000, seed=0)
    torch.manual_seed(0)
    model = DiffusionModel()
    untrained = wasserstein2(sample_probability_flow(model, 300, 10, "rk4", seed=1).x, data[:500])
    result = train_diffusion(model, data, n_steps=120, batch_size=128, lr=5e-3, seed=0, progress=False)
    assert sum(result.losses[-25:]) < sum(result.losses[:25])
    ode = sample_probability_flow(model, 300, 10, "rk4", seed=1)
    sde = sample_ancestral(model, 300, 50, seed=1, return_trajectory=True)
    assert sde.trajectory.shape == (51, 300, 2) and sde.nfe == 50 and ode.nfe == 40
    assert wasserstein2(ode.x, data[:500]) < untrained
    assert wasserstein2(sde.x, data[:500]) < untrained


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="beta_max"):
        NoiseSchedule(beta_min=1.0, beta_max=0.5)
    with pytest.raises(TypeError, match="DiffusionModel"):
        sample_ancestral(torch.nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match="n_steps"):
        sample_ancestral(DiffusionModel(), 10, n_steps=0)
    with pytest.raises(ValueError, match="schedule"):
        train_diffusion(DiffusionModel(), torch.zeros(4, 2), n_steps=1, schedule="linear")
    assert math.isfinite(NoiseSchedule().s_min)


def test_train_diffusion_minimises_the_noise_prediction_loss_the_notebook_shows():
    """17b prints diffusion.noise_prediction_loss as the objective; train_diffusion's first loss is it."""
    data = create_ring_gaussians(300, seed=0)[0]
    torch.manual_seed(0)
    model = VelocityField()
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    result = train_diffusion(model, data, n_steps=1, batch_size=64, seed=5, progress=False)
    generator = torch.Generator().manual_seed(5)                 # the draws of the first step
    x_data = torch.as_tensor(data)[torch.randint(0, len(data), (64,), generator=generator)]
    s, noise = torch.rand(64, 1, generator=generator), torch.randn(64, 2, generator=generator)
    model.load_state_dict(initial)
    shown = noise_prediction_loss(model, NoiseSchedule(), x_data, s, noise)
    assert result.losses[0] == shown.item()
