"""A DDPM-style denoising diffusion model on the same network, for comparison with flow matching.

Diffusion time s runs from 0 (data) to 1 (noise), the opposite way to the flow's clock t.
A variance-preserving noise schedule with a linearly growing rate beta(s) gives

    x_s = sqrt(abar(s)) x_data + sqrt(1 - abar(s)) eps,   abar(s) = exp(-int_0^s beta),

and a network eps_theta(x_s, s) is trained to predict the noise eps (mean squared error).
With 1000 equal steps the schedule is the classic DDPM one (beta from 1e-4 to 0.02 per step).

Two samplers start from standard normal noise at s = 1:
    ancestral   the DDPM reverse chain, which adds fresh noise at every step (zig-zag paths);
    PF-ODE      the probability-flow ODE, a deterministic field with the same marginals,
                written in a clock u from 0 (noise) to 1 (data) so that ``solvers.solve_ode``
                integrates it, with equal steps in s ('linear'), in log signal-to-noise ('log_snr')
                or in flow matching's time ('flow').

The link to flow matching: the straight path x_t = t x_data + (1 - t) eps is the same Gaussian
path up to scale, x_s = (a + b) x_t with a = sqrt(abar), b = sqrt(1 - abar) and t = a / (a + b),
with the same eps. So a noise predictor is a velocity: v(x, t) = (x - eps_theta((a + b) x, s)) / t
(``NoiseAsVelocity``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._checks import (MAX_ODE_STEPS, MAX_SAMPLES, _short, as_points, check_choice, check_model, check_point_steps,
                       check_positive_int, check_real, make_generator)
from ..base_distributions import sample_base
from ..loaders import RandomBatches
from ..models import VelocityField, register_model_class
from ..solvers import ODESolution
from ..training import TrainingResult, check_trainable, check_training_budget, run_steps


@dataclass(frozen=True)
class NoiseSchedule:
    """Variance-preserving schedule with beta(s) = beta_min + s (beta_max - beta_min), s in [0, 1].

    ``s_min`` is where samplers stop: at s = 0 the probability-flow field divides by zero.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    s_min: float = 1e-3

    def __post_init__(self):
        check_real("beta_min", self.beta_min, low=0.0, low_open=True)
        check_real("beta_max", self.beta_max, low=self.beta_min)
        check_real("s_min", self.s_min, low=0.0, high=0.5, low_open=True)

    def beta(self, s: torch.Tensor) -> torch.Tensor:
        """Noise rate beta(s), same shape as s."""
        return self.beta_min + s * (self.beta_max - self.beta_min)

    def log_alpha_bar(self, s: torch.Tensor) -> torch.Tensor:
        """log abar(s) = -int_0^s beta, same shape as s."""
        return -(self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s ** 2)

    def alpha_bar(self, s: torch.Tensor) -> torch.Tensor:
        """Fraction of the data's variance left at s: 1 at s = 0, about 4e-5 at s = 1."""
        return torch.exp(self.log_alpha_bar(s))

    def noise_std(self, s: torch.Tensor) -> torch.Tensor:
        """sigma(s) = sqrt(1 - abar(s)), the standard deviation of the added noise."""
        return torch.sqrt(-torch.expm1(self.log_alpha_bar(s)))

    def log_snr(self, s: torch.Tensor) -> torch.Tensor:
        """log signal-to-noise ratio log(abar / (1 - abar)), falling with s; same shape as s."""
        log_abar = self.log_alpha_bar(s)
        return log_abar - torch.log(-torch.expm1(log_abar))

    def time_of_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        """The diffusion time s with the given log SNR (the inverse of ``log_snr``, s >= 0)."""
        log_abar = nn.functional.logsigmoid(log_snr)        # abar = sigmoid(log SNR)
        slope = self.beta_max - self.beta_min                # solve slope/2 s^2 + beta_min s = -log abar
        return (torch.sqrt(self.beta_min ** 2 - 2 * slope * log_abar) - self.beta_min) / slope

    def flow_time(self, s: torch.Tensor) -> torch.Tensor:
        """Flow matching's t = a / (a + b) of diffusion time s (a = sqrt(abar), b = sigma)."""
        a, b = torch.sqrt(self.alpha_bar(s)), self.noise_std(s)
        return a / (a + b)

    def diffusion_time(self, t: torch.Tensor) -> torch.Tensor:
        """The diffusion time s of flow time t in (0, 1]: log SNR = 2 log(t / (1 - t))."""
        return self.time_of_log_snr(2 * (torch.log(t) - torch.log1p(-t)))


def add_noise(schedule: NoiseSchedule, x_data: torch.Tensor, s: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The forward process: x_s = sqrt(abar) x_data + sigma eps. x_data, noise (B, 2), s (B, 1)."""
    return torch.sqrt(schedule.alpha_bar(s)) * x_data + schedule.noise_std(s) * noise


def noise_prediction_loss(model: nn.Module, schedule: NoiseSchedule, x_data: torch.Tensor, s: torch.Tensor,
                          noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error between eps_theta(x_s, s) and the noise that made x_s."""
    return nn.functional.mse_loss(model(add_noise(schedule, x_data, s, noise), s), noise)


def train_diffusion(model: nn.Module, data, n_steps: int = 2000, batch_size: int = 256, lr: float = 1e-3,
                    schedule: str = "cosine", noise_schedule: NoiseSchedule | None = None, seed=None,
                    progress=None) -> TrainingResult:
    """Train ``model`` (any ``model(x, s)``, e.g. a VelocityField) to predict the noise.

    The loop and optimiser of ``training.train`` (AdamW, ``schedule`` 'cosine' or 'constant',
    batches drawn from memory), with s ~ U[0, 1], eps ~ N(0, I) and ``noise_prediction_loss``.
    """
    check_trainable(model)
    check_model(model, dim=2, kinds=(None,), predicts=None)       # any unconditional model(x, s)
    n_steps, batch_size, lr = check_training_budget(n_steps, batch_size, lr, schedule)
    if noise_schedule is not None and not isinstance(noise_schedule, NoiseSchedule):
        raise TypeError(f"noise_schedule must be a NoiseSchedule or None, got {_short(noise_schedule)}")
    noise_schedule = noise_schedule or NoiseSchedule()
    rng = make_generator(seed)
    batches = RandomBatches(as_points("data", data), batch_size, generator=rng)

    def batch_loss() -> torch.Tensor:
        x_data, _ = batches.sample()
        s = torch.rand(batch_size, 1, generator=rng)
        noise = torch.randn(batch_size, 2, generator=rng)
        return noise_prediction_loss(model, noise_schedule, x_data, s, noise)

    result = TrainingResult(recipe={"n_steps": n_steps, "batch_size": batch_size, "lr": lr,
                                    "schedule": schedule, "objective": "noise prediction"})
    return run_steps(model, batch_loss, n_steps, lr, schedule, result, desc="diffusion", progress=progress)


@register_model_class
class DiffusionModel(nn.Module):
    """A noise-prediction network eps_theta(x, s) plus its noise schedule.

    The network is the package's ``VelocityField`` (same width, depth and time embedding as the
    flow matching model); only what its output means differs. x: (B, 2), s: (B, 1) -> (B, 2).
    """

    predicts = "noise"
    condition_kind = None
    condition_dim = 0
    dim = 2

    def __init__(self, time_emb_dim: int = 16, hidden_dim: int = 128, beta_min: float = 0.1,
                 beta_max: float = 20.0):
        super().__init__()
        self.network = VelocityField(time_emb_dim, hidden_dim)
        self.schedule = NoiseSchedule(beta_min, beta_max)
        self.config = {**self.network.config, "beta_min": float(beta_min), "beta_max": float(beta_max)}

    def forward(self, x: torch.Tensor, s) -> torch.Tensor:
        """Predicted noise at x: (B, 2) and diffusion time s: (B, 1) (or a float)."""
        return self.network(x, s)


CLOCKS = ("linear", "log_snr", "flow")


class ProbabilityFlowField(nn.Module):
    """The probability-flow ODE of a diffusion model as a velocity in a clock u from 0 to 1.

    In diffusion time, dx/ds = -beta(s) / 2 * (x - eps_theta(x, s) / sigma(s)). ``clock``
    says how u runs through s in [s_min, 1], so that equal steps in u are equal steps of:
    'linear' s (DDPM's), 'log_snr' the log signal-to-noise ratio, or 'flow' flow matching's
    time t = a / (a + b). u = 0 is pure noise and u = 1 (almost) data. Call as ``field(x, u)``.
    """

    dim, predicts, condition_kind, condition_dim = 2, "velocity", None, 0     # what the solvers' door reads

    def __init__(self, diffusion: DiffusionModel, clock: str = "linear"):
        super().__init__()
        if not isinstance(diffusion, DiffusionModel):
            raise TypeError(f"diffusion must be a DiffusionModel, got {type(diffusion).__name__}")
        self.diffusion = diffusion
        self.clock = check_choice("clock", clock, CLOCKS)
        ends = torch.tensor([1.0, diffusion.schedule.s_min])          # where u = 0 and u = 1 sit
        ends = diffusion.schedule.log_snr(ends) if clock == "log_snr" else diffusion.schedule.flow_time(ends)
        self.start, self.end = ends.tolist()

    def log_snr_of(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The log SNR at clock time u and its rate d(log SNR)/du ('log_snr' and 'flow' clocks)."""
        if self.clock == "log_snr":
            return self.start + u * (self.end - self.start), torch.full_like(u, self.end - self.start)
        t = self.start + u * (self.end - self.start)                  # log SNR = 2 log(t / (1 - t))
        return 2 * (torch.log(t) - torch.log1p(-t)), 2 * (self.end - self.start) / (t * (1 - t))

    def forward(self, x: torch.Tensor, u) -> torch.Tensor:
        schedule = self.diffusion.schedule
        u = torch.as_tensor(u, dtype=x.dtype).reshape(-1, 1)
        if self.clock == "linear":
            s, ds_du = 1 - u * (1 - schedule.s_min), -(1 - schedule.s_min)
        else:                          # d(log SNR)/ds = -beta / sigma^2, so ds/du = rate * -sigma^2 / beta
            log_snr, rate = self.log_snr_of(u)
            s = schedule.time_of_log_snr(log_snr)
            ds_du = -rate * schedule.noise_std(s) ** 2 / schedule.beta(s)
        eps = self.diffusion(x, s.expand(x.shape[0], 1))
        return ds_du * -0.5 * schedule.beta(s) * (x - eps / schedule.noise_std(s))    # chain rule: dx/du


class NoiseAsVelocity(nn.Module):
    """A diffusion model's noise prediction read as a flow matching velocity field v(x, t).

    The point x at flow time t is the diffusion point (a + b) x at the s with t = a / (a + b),
    made with the same noise, so v(x, t) = (x - eps_theta((a + b) x, s)) / t. Times below the
    schedule's noisiest t (about 0.007, where s = 1) are read at that t. Call as ``field(x, t)``.
    """

    dim, predicts, condition_kind, condition_dim = 2, "velocity", None, 0     # what the solvers' door reads

    def __init__(self, diffusion: DiffusionModel):
        super().__init__()
        if not isinstance(diffusion, DiffusionModel):
            raise TypeError(f"diffusion must be a DiffusionModel, got {type(diffusion).__name__}")
        self.diffusion = diffusion
        self.t_min = float(diffusion.schedule.flow_time(torch.tensor(1.0)))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        schedule = self.diffusion.schedule
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1).clamp(min=self.t_min)
        s = schedule.diffusion_time(t)
        scale = torch.sqrt(schedule.alpha_bar(s)) + schedule.noise_std(s)        # a + b
        return (x - self.diffusion(scale * x, s)) / t


def diffusion_times(schedule: NoiseSchedule, n_steps: int) -> torch.Tensor:
    """n_steps + 1 equally spaced diffusion times from 1 down to s_min: (n_steps + 1,)."""
    return torch.linspace(1.0, schedule.s_min, n_steps + 1)


@torch.no_grad()
def sample_ancestral(model: DiffusionModel, n_samples: int = 1000, n_steps: int = 1000, seed=None,
                     return_trajectory: bool = False) -> ODESolution:
    """DDPM's ancestral sampler on ``n_steps`` equal steps from s = 1 to s_min.

    Each step draws x_{s'} from the Gaussian posterior q(x_{s'} | x_s, x_data_hat): the mean
    removes the predicted noise, and fresh noise with variance (1 - abar_s') / (1 - abar_s) beta
    is added back. Returns an ``ODESolution`` (it is an SDE, but the fields are the same):
    x (B, 2), trajectory (n_steps + 1, B, 2) or None, nfe = n_steps.
    """
    if not isinstance(model, DiffusionModel):
        raise TypeError(f"model must be a DiffusionModel, got {type(model).__name__}")
    n_samples = check_positive_int("n_samples", n_samples, maximum=MAX_SAMPLES)
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_ODE_STEPS)
    check_point_steps(n_steps, n_samples, f"n_samples={n_samples}")
    rng = make_generator(seed)
    model.eval()
    schedule = model.schedule
    times = diffusion_times(schedule, n_steps)
    x = sample_base("gaussian", n_samples, generator=rng)
    trajectory = [x] if return_trajectory else None
    for i in range(n_steps):
        s, s_next = times[i], times[i + 1]
        abar, abar_next = schedule.alpha_bar(s), schedule.alpha_bar(s_next)
        alpha = abar / abar_next                   # what this step keeps of the signal
        beta = 1 - alpha
        eps = model(x, s.expand(n_samples, 1))
        mean = (x - beta / torch.sqrt(1 - abar) * eps) / torch.sqrt(alpha)
        x = mean
        if i < n_steps - 1:                        # the last step returns the mean
            variance = beta * (1 - abar_next) / (1 - abar)
            x = mean + torch.sqrt(variance) * torch.randn(n_samples, 2, generator=rng)
        if trajectory is not None:
            trajectory.append(x)
    return ODESolution(x, torch.stack(trajectory) if trajectory is not None else None,
                       1 - times, n_steps)
