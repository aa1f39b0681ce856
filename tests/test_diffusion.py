"""The DDPM-style comparison model (gen_models_utilities.baselines.diffusion)."""
import math

import pytest
import torch

from gen_models_utilities import VelocityField, create_ring_gaussians, sample_base, solve_ode, wasserstein2
from gen_models_utilities.baselines.diffusion import (DiffusionModel, NoiseAsVelocity, NoiseSchedule,
                                                     ProbabilityFlowField, add_noise, noise_prediction_loss,
                                                     sample_ancestral, train_diffusion)
from gen_models_utilities.marginal_field import RingMarginalField


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
    start = sample_base("gaussian", 300, seed=1)
    untrained = wasserstein2(solve_ode(ProbabilityFlowField(model), start, n_steps=10, method="rk4").x, data[:500])
    result = train_diffusion(model, data, n_steps=120, batch_size=128, lr=5e-3, seed=0, progress=False)
    assert sum(result.losses[-25:]) < sum(result.losses[:25])
    ode = solve_ode(ProbabilityFlowField(model), start, n_steps=10, method="rk4")
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


class ExactNoisePredictor(DiffusionModel):
    """The best possible eps_theta for the ring, from the exact marginal field: eps = x_t - t u_t(x_t)."""

    def forward(self, x, s):
        schedule = self.schedule
        s = torch.as_tensor(s, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        t = schedule.flow_time(s)
        x_flow = x / (torch.sqrt(schedule.alpha_bar(s)) + schedule.noise_std(s))
        return x_flow - t * RingMarginalField()(x_flow, t)


def test_flow_time_and_log_snr_invert_each_other():
    schedule = NoiseSchedule()
    s = torch.linspace(0.01, 1, 50, dtype=torch.float64)
    torch.testing.assert_close(schedule.diffusion_time(schedule.flow_time(s)), s)
    torch.testing.assert_close(schedule.time_of_log_snr(schedule.log_snr(s)), s)
    t = schedule.flow_time(s)
    assert torch.all(t[1:] < t[:-1]) and t[-1].item() == pytest.approx(0.0066, abs=2e-4)
    # the same eps makes both paths: x_s = (a + b) x_t with t = a / (a + b)
    x_data, noise = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    a, b = torch.sqrt(schedule.alpha_bar(s[20])), schedule.noise_std(s[20])
    x_flow = t[20] * x_data + (1 - t[20]) * noise
    torch.testing.assert_close(add_noise(schedule, x_data, s[20].reshape(1, 1), noise), (a + b) * x_flow)


def test_the_exact_noise_predictor_read_as_a_velocity_is_the_exact_marginal_field():
    field, exact = NoiseAsVelocity(ExactNoisePredictor()), RingMarginalField()
    x = 2 * torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    for t in (0.05, 0.3, 0.7, 0.95):
        torch.testing.assert_close(field(x, t), exact(x, t), atol=1e-4, rtol=1e-4)
    # below the noisiest time of the schedule the field is read at that time
    torch.testing.assert_close(field(x, 0.0), field(x, field.t_min))


@pytest.mark.parametrize("clock", ["linear", "log_snr", "flow"])
def test_the_probability_flow_of_the_exact_predictor_follows_the_exact_flow(clock):
    x0 = sample_base("gaussian", 300, seed=0)
    exact = solve_ode(RingMarginalField(), x0, n_steps=200, method="rk4").x
    diffusion = solve_ode(ProbabilityFlowField(ExactNoisePredictor(), clock), x0, n_steps=200, method="rk4").x
    assert (diffusion - exact).norm(dim=1).mean().item() < 0.01
    coarse = solve_ode(ProbabilityFlowField(ExactNoisePredictor(), clock), x0, n_steps=4).x
    assert (coarse - exact).norm(dim=1).mean().item() > 0.1          # the check can fail


def test_an_unknown_clock_is_refused():
    with pytest.raises(ValueError, match="clock"):
        ProbabilityFlowField(DiffusionModel(), clock="cosine")
    with pytest.raises(TypeError, match="DiffusionModel"):
        NoiseAsVelocity(VelocityField())
