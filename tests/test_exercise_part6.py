"""Part 6's checks accept every differently written right answer, and refuse arguments that are not answers.

Exercise 22 (a noise prediction as a velocity) and 23 (a log-likelihood with one's own RK4 step): each
right answer below is written the way a student might write it, differently from the solution notebook.
"""
import contextlib
import io
import math

import numpy as np
import pytest
import torch

from gen_models_utilities import exercises as checks
from gen_models_utilities import solve_ode
from gen_models_utilities.pretrained import load_pretrained

DIFFUSION = load_pretrained("diffusion", "gaussian")[0]
SCHEDULE = DIFFUSION.schedule
T_MIN = float(SCHEDULE.flow_time(torch.tensor(1.0)))


def passes(check, *arguments) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        check(*arguments)
    printed = out.getvalue()
    assert printed.startswith("Correct:") and printed.count("\n") == 1, printed
    return printed


# ----------------------------------------------------------------------------- exercise 22: right answers


def velocity_from_noise(x, eps_hat, t):
    return (x - eps_hat) / t


def velocity_from_noise_numpy(x, eps_hat, t):            # numpy in, numpy out
    return (x.numpy() - eps_hat.numpy()) / t.numpy()


def noise_weight(t):
    return t ** 2


def data_weight(t):
    return (1 - t) ** 2


def noise_weight_flat(t):                                 # one weight per time, shape (B,), in numpy
    return np.square(t.numpy()[:, 0])


def data_weight_flat(t):
    return torch.square(1 - t).reshape(-1)


def velocity_clamped(model, x, t):                         # lambda from a and b, s from the schedule
    t = torch.maximum(t, torch.full_like(t, T_MIN))
    s = model.schedule.diffusion_time(t)
    scale = torch.sqrt(model.schedule.alpha_bar(s)) + model.schedule.noise_std(s)
    return velocity_from_noise(x, model(scale * x, s), t)


def velocity_own_time(model, x, t):                        # s solved by hand from the log SNR, in float64
    t = t.double().clamp(min=T_MIN)
    log_alpha_bar = torch.nn.functional.logsigmoid(2 * torch.log(t / (1 - t)))
    slope = SCHEDULE.beta_max - SCHEDULE.beta_min          # beta_min s + slope / 2 s^2 = -log abar
    s = (torch.sqrt(SCHEDULE.beta_min ** 2 - 2 * slope * log_alpha_bar) - SCHEDULE.beta_min) / slope
    scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)
    eps = model((scale * x.double()).float(), s.float()).double()
    return ((x.double() - eps) / t).float()


def velocity_where(model, x, t):                           # t below T_MIN replaced with torch.where
    t = torch.where(t < T_MIN, torch.full_like(t, T_MIN), t)
    scale = 1 / torch.sqrt(t * t + (1 - t) * (1 - t))
    return (x - model(scale * x, SCHEDULE.diffusion_time(t))) / t


def sample_clamped(model, x0, n_steps):
    with torch.no_grad():
        return solve_ode(lambda x, t: velocity_clamped(model, x, t), x0, n_steps, "rk4").x


def sample_from_t_min(model, x0, n_steps):                 # the solve starts where the network's clock starts
    with torch.no_grad():
        return solve_ode(lambda x, t: velocity_clamped(model, x, t), x0, n_steps, "rk4", t0=T_MIN).x


def sample_from_t_min_scaled(model, x0, n_steps):          # ... at the flow point of the noise, x0 / lambda
    scale = 1 / math.sqrt(T_MIN ** 2 + (1 - T_MIN) ** 2)
    with torch.no_grad():
        return solve_ode(lambda x, t: velocity_clamped(model, x, t), x0 / scale, n_steps, "rk4", t0=T_MIN).x


def sample_numpy(model, x0, n_steps):
    return sample_clamped(model, x0, n_steps).numpy()


@pytest.mark.parametrize("answers", [
    (velocity_from_noise, noise_weight, data_weight, velocity_clamped, sample_clamped),
    (velocity_from_noise_numpy, noise_weight_flat, data_weight_flat, velocity_own_time, sample_from_t_min),
    (velocity_from_noise, noise_weight, data_weight_flat, velocity_where, sample_from_t_min_scaled),
    (velocity_from_noise, noise_weight_flat, data_weight, velocity_clamped, sample_numpy),
], ids=["clamped", "numpy, own s, start at T_MIN", "torch.where, start at x0 / lambda", "numpy samples"])
def test_exercise_21_accepts_right_answers(answers):
    passes(checks.check_noise_to_velocity, *answers, DIFFUSION)


def test_exercise_21_refuses_a_non_function_and_a_velocity_model(trained_fm):
    with pytest.raises(TypeError, match="callable"):
        checks.check_noise_to_velocity("u", noise_weight, data_weight, velocity_clamped, sample_clamped, DIFFUSION)
    with pytest.raises(TypeError, match="DiffusionModel"):
        checks.check_noise_to_velocity(velocity_from_noise, noise_weight, data_weight, velocity_clamped,
                                       sample_clamped, trained_fm)


# ----------------------------------------------------------------------------- exercise 23: right answers


def rk4_classic(velocity, x, t, h):
    k1 = velocity(x, t)
    k2 = velocity(x + h / 2 * k1, t + h / 2)
    k3 = velocity(x + h / 2 * k2, t + h / 2)
    k4 = velocity(x + h * k3, t + h)
    return x + h / 6 * k1 + h / 3 * k2 + h / 3 * k3 + h / 6 * k4


def divergence_jacobian(velocity, x, t):                   # the whole Jacobian, then its trace
    jacobian = torch.autograd.functional.jacobian(lambda y: velocity(y, t).sum(dim=0), x)    # (2, B, 2)
    return jacobian[0, :, 0] + jacobian[1, :, 1]


def divergence_func(velocity, x, t):                       # torch.func, one point at a time
    from torch.func import jacrev, vmap

    times = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(len(x), 1)
    jacobians = vmap(jacrev(lambda point, time: velocity(point[None], time[None])[0]))(x, times)
    return jacobians.diagonal(dim1=1, dim2=2).sum(dim=1)


def divergence_loop(velocity, x, t):
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        v = velocity(x, t)
        first = torch.autograd.grad(v[:, 0].sum(), x, retain_graph=True)[0]
        second = torch.autograd.grad(v[:, 1].sum(), x)[0]
    return first[:, 0] + second[:, 1]


def likelihood_with(rk4_step, divergence, dtype=torch.float32, reversed_clock=False):
    """A flow_log_likelihood written with the given pieces: in float64, or forward in s = 1 - t."""
    def flow_log_likelihood(model, x1, n_steps):
        def field(state, t):
            x = state[:, :2]
            time = torch.full((len(x), 1), float(t), dtype=torch.float32)
            v = model(x.float(), time).detach().to(dtype)
            return torch.cat([v, divergence(model, x.float(), time).detach().to(dtype)[:, None]], dim=1)

        state = torch.cat([torch.as_tensor(x1, dtype=dtype), torch.zeros(len(x1), 1, dtype=dtype)], dim=1)
        for k in range(n_steps):
            if reversed_clock:      # d/ds [x, -L] = -[v, div v](1 - s), s from 0 to 1
                state = rk4_step(lambda y, s: -field(y, 1 - s), state, k / n_steps, 1 / n_steps)
            else:
                state = rk4_step(field, state, 1 - k / n_steps, -1 / n_steps)
        x0 = state[:, :2]
        return state[:, 2] - (x0 ** 2).sum(dim=1) / 2 - math.log(2 * math.pi)
    return flow_log_likelihood


def means(flow_log_likelihood, model):
    from gen_models_utilities import create_ring_gaussians

    points = torch.from_numpy(create_ring_gaussians(500, seed=7)[0])
    return {n: flow_log_likelihood(model, points, n).mean() for n in (2, 4, 8, 16)}      # tensors, not floats


@pytest.mark.parametrize("pieces", [
    (rk4_classic, divergence_loop, {}),
    (rk4_classic, divergence_jacobian, {"dtype": torch.float64}),
    (rk4_classic, divergence_func, {"reversed_clock": True}),
], ids=["loop divergence", "jacobian, float64", "torch.func, reversed clock"])
def test_exercise_22_accepts_right_answers(pieces, trained_fm):
    rk4_step, divergence, options = pieces
    flow_log_likelihood = likelihood_with(rk4_step, divergence, **options)
    passes(checks.check_flow_likelihood, rk4_step, divergence, flow_log_likelihood,
           means(flow_log_likelihood, trained_fm), " (C)", trained_fm)


def test_exercise_22_refuses_a_non_function(trained_fm):
    with pytest.raises(TypeError, match="callable"):
        checks.check_flow_likelihood(rk4_classic, None, likelihood_with(rk4_classic, divergence_loop), {}, "c",
                                     trained_fm)
