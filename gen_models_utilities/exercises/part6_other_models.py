"""Checks of the exercise notebook's part 6, diffusion and likelihood (17b): exercises 22 and 23.

Exercise 22 turns the shipped diffusion model's noise prediction into a flow matching velocity and
samples with it; exercise 23 scores held-out points by the instantaneous change of variables, with
the student's own RK4 step on the augmented state. Each answer is compared with the package's own
version (``diffusion.NoiseAsVelocity``, ``likelihood.log_likelihood``), with tolerances set from the
spread of the valid ways to write it (measured; each check's docstring says what it allows).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import _short
from ..base_distributions import sample_base
from ..baselines.diffusion import DiffusionModel, NoiseAsVelocity
from ..baselines.likelihood import AugmentedField, log_likelihood, velocity_and_divergence
from ..data import create_ring_gaussians
from ..marginal_field import RingMarginalField
from ..metrics import off_mode_limit, ring_quality
from ..solvers import rk4_step, solve_ode
from ._harness import (LinearProbe, as_number, as_tensor, call, choice, compare, exercise_check, fail, fixed_pairs,
                       require_callable, vector)

__all__ = ["check_noise_to_velocity", "check_flow_likelihood"]

SAMPLE_SEED, SAMPLE_STEPS, SAMPLE_SIZE = 21, 16, 2000     # exercise 22's draw of noise and its RK4 solve
SAMPLE_TOLERANCE = 0.15        # RMS distance allowed from the package's sampler (valid variants: <= 0.04)
HELD_OUT_SIZE, HELD_OUT_SEED = 500, 7                      # exercise 23's held-out ring points
LIKELIHOOD_STEPS = (2, 4, 8, 16)
NATS = 1e-3                    # agreement of log-likelihoods (valid variants: means within 1e-5)


def _exact_noise(x: torch.Tensor, t: float) -> torch.Tensor:
    """E[x0 | x_t = x] on the ring, float64 (B, 2): each mode's Gaussian posterior mean, averaged over modes."""
    field = RingMarginalField()
    var = (1 - t) ** 2 + t ** 2 * field.std ** 2                 # variance of x_t within one mode
    weights = field.mode_weights(x, t)[:, :, None]               # (B, K, 1)
    return (weights * (1 - t) / var * (x[:, None] - t * field.centers)).sum(dim=1)


def _check_velocity_from_noise(velocity_from_noise) -> None:
    """Part 1: fed the exact noise prediction of the ring, the answer must give the exact field."""
    exact = RingMarginalField()
    generator = torch.Generator().manual_seed(21)
    x1 = torch.from_numpy(create_ring_gaussians(64, generator=generator)[0]).double()
    x0 = torch.randn(64, 2, generator=generator, dtype=torch.float64)
    for t in (0.1, 0.4, 0.7, 0.95):
        x = (1 - t) * x0 + t * x1
        eps = _exact_noise(x, t)
        column = torch.full((64, 1), t, dtype=torch.float64)
        value = call("velocity_from_noise", velocity_from_noise, x.clone(), eps.clone(), column)
        received = as_tensor("velocity_from_noise", value, x.shape)
        x, eps = x.float(), eps.float()
        compare("velocity_from_noise", received, exact(x, t), lambda i: f"at t = {t} for x = {vector(x[i])}", {
            "that is E[x1 | x_t], the denoised point": (
                (x - (1 - t) * eps) / t, "the velocity of one pair is x1 - x0, not x1; subtract the noise as well."),
            "dividing by 1 - t reads the path the wrong way round": (
                (x - eps) / (1 - t), "here x_t = (1 - t) x0 + t x1 with x0 the noise: t = 0 is pure noise."),
            "the division by t is missing": (
                x - eps, "write x1 in terms of x_t and x0 first; the factor it brings stays in the velocity."),
            "the sign is flipped": (
                (eps - x) / t, "the flow carries noise to data: the velocity points from x0 towards x1."),
            "only the noise is divided by t": (
                x - eps / t, "mind the brackets: which terms does the factor from x1 multiply?"),
        }, "start from x_t = (1 - t) x0 + t x1, write x1 - x0 with x_t and x0 only, and take its mean "
           "given x_t = x (the mean of x0 given x_t is eps_hat).", atol=1e-3)


def _as_weights(name: str, value, t: torch.Tensor) -> torch.Tensor:
    """A weight function's result as (B, 1); a number is the same weight for every t."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.full_like(t, float(value))
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        fail(f"{name} returned the wrong type", "a tensor with one weight per time", _short(value),
             "compute the weight from t with torch operations, so it works on a (B, 1) tensor of times.")
    if value.numel() == 1:
        value = value.reshape(1, 1).expand(t.shape)
    if value.numel() != t.numel():
        fail(f"{name} returned the wrong shape", f"one weight per time, shape {tuple(t.shape)}",
             f"shape {tuple(value.shape)}", "return a weight of the same shape as t.")
    return as_tensor(name, value.reshape(t.shape), t.shape)


def _check_weights(noise_loss_weight, data_loss_weight) -> None:
    """Part 2: the weights must equal the measured ratios of the three squared errors, point by point."""
    x0, x1, t = (tensor.double() for tensor in fixed_pairs(256, seed=6))
    with torch.no_grad():
        x_t = (1 - t) * x0 + t * x1
        v = LinearProbe()(x_t.float(), t.float()).double()       # any velocity prediction
        velocity_loss = ((v - (x1 - x0)) ** 2).sum(dim=1, keepdim=True)
        noise_ratio = ((x_t - t * v - x0) ** 2).sum(dim=1, keepdim=True) / velocity_loss
        data_ratio = ((x_t + (1 - t) * v - x1) ** 2).sum(dim=1, keepdim=True) / velocity_loss
    t = t.float()
    where = lambda i: f"at t = {float(t[i]):.3f}"  # noqa: E731
    square = "the losses are squared errors: the weight is the square of the factor between the two errors."
    for name, function, ratio, mistakes in (
        ("noise_loss_weight", noise_loss_weight, noise_ratio, {
            "the factor between the two errors, not its square": (t, square),
            "the inverse weight": (1 / t ** 2, "which loss is the smaller one near t = 0: the noise loss or the "
                                               "velocity loss?"),
            "that is the weight of a data prediction": ((1 - t) ** 2, "the noise x0 sits at t = 0 in this package's "
                                                                      "convention; redo the algebra for x0."),
            "the two losses are not equal": (torch.ones_like(t), "link eps_hat - x0 to v_hat - (x1 - x0) through "
                                                                "your answer to part 1."),
        }),
        ("data_loss_weight", data_loss_weight, data_ratio, {
            "the factor between the two errors, not its square": (1 - t, square),
            "that is the weight of a noise prediction": (t ** 2, "write x1_hat from x_t and v_hat: x1 sits at "
                                                                 "t = 1 in this package's convention."),
            "the inverse weight": (1 / (1 - t) ** 2, "which loss is the smaller one near t = 1?"),
            "the two losses are not equal": (torch.ones_like(t), "link x1_hat - x1 to v_hat - (x1 - x0)."),
        }),
    ):
        received = _as_weights(name, call(name, function, t.clone()), t)
        compare(name, received, ratio.float(), where, mistakes,
                "write the prediction that belongs to v_hat, subtract the truth, and compare with v_hat - (x1 - x0).")


def _check_diffusion_velocity(diffusion_velocity, model: DiffusionModel) -> None:
    """Part 3: the answer must equal the package's ``NoiseAsVelocity`` for t in [0.02, 0.98] (valid variants
    differ by at most 1.4e-5; allowed 1e-3) and be finite at t = 0."""
    reference, schedule = NoiseAsVelocity(model), model.schedule
    x = 1.5 * torch.randn(128, 2, generator=torch.Generator().manual_seed(22))
    with torch.no_grad():
        start = call("diffusion_velocity", diffusion_velocity, model, x.clone(), torch.zeros(128, 1))
        if isinstance(start, torch.Tensor) and not bool(torch.isfinite(start).all()):
            fail("diffusion_velocity returned NaN or inf at t = 0", "finite velocities (every sampler starts at t = 0)",
                 f"{int((~torch.isfinite(start)).sum())} of {start.numel()} values NaN or inf",
                 "the network knows s only up to 1, which is t = T_MIN, not t = 0: decide what your field does "
                 "below T_MIN without dividing by zero.")
        for t in (0.02, 0.1, 0.3, 0.6, 0.9, 0.98):
            column = torch.full((128, 1), t)
            value = call("diffusion_velocity", diffusion_velocity, model, x.clone(), column.clone())
            received = as_tensor("diffusion_velocity", value, x.shape)
            s, scale = schedule.diffusion_time(column), 1 / math.sqrt(t ** 2 + (1 - t) ** 2)
            where = lambda i: f"at t = {t} for x = {vector(x[i])}"  # noqa: E731
            compare("diffusion_velocity", received, reference(x, column), where, {
                "the network was given the flow point x_t": (
                    (x - model(x, s)) / t, "the network was trained on diffusion points x_s, a scaled copy of x_t."),
                "diffusion time taken as s = 1 - t": (
                    (x - model(scale * x, 1 - column)) / t, "the two clocks are tied by the signal-to-noise ratio, "
                                                            "not by s = 1 - t; the schedule converts t to s."),
                "diffusion time taken as s = t": (
                    (x - model(scale * x, column)) / t, "diffusion time runs from data (s = 0) to noise (s = 1)."),
                "the velocity of the scaled point": (
                    (scale * x - model(scale * x, s)) / t, "the network's input is scaled, but the velocity is the "
                                                           "flow point's: use x itself in velocity_from_noise."),
                "the point was divided by the scale": (
                    (x - model(x / scale, s)) / t, "x_s is larger than x_t: check which way the scale goes."),
            }, "convert t to the diffusion time s, give the network the diffusion point (a scaled x), and turn "
               "its noise prediction into a velocity with velocity_from_noise.", atol=1e-3)


def _check_samples(sample_from_diffusion, diffusion_velocity, model: DiffusionModel):
    """Part 4: samples within SAMPLE_TOLERANCE (RMS) of the package's sampler from the same noise, and as good as
    data by ``ring_quality``. Reading t < T_MIN at T_MIN, or starting the solve at T_MIN (with x0 or x0 / lambda),
    land 0.04 apart; 32 steps instead of 16 land 0.035 from 16; every wrong conversion measured lands >= 0.43 away."""
    x0 = sample_base("gaussian", SAMPLE_SIZE, seed=SAMPLE_SEED)
    with torch.no_grad():
        value = call("sample_from_diffusion", sample_from_diffusion, model, x0.clone(), SAMPLE_STEPS)
        reference = solve_ode(NoiseAsVelocity(model), x0, SAMPLE_STEPS, "rk4").x
    if hasattr(value, "trajectory") and hasattr(value, "x"):
        fail("sample_from_diffusion returned a whole solution", "the samples, a tensor (B, 2)", _short(value),
             "return the end points of the solve: its .x.")
    if isinstance(value, torch.Tensor) and value.dim() == 3 and value.shape[1:] == x0.shape:
        fail("sample_from_diffusion returned a whole trajectory", f"the samples, shape {tuple(x0.shape)}",
             f"shape {tuple(value.shape)}", "return only the last point of each path, at t = 1.")
    samples = as_tensor("sample_from_diffusion", value, x0.shape)
    distance = float(((samples - reference) ** 2).sum(dim=1).mean().sqrt())
    if distance > SAMPLE_TOLERANCE:
        hint = "solve from t = 0 to t = 1 with method='rk4' and n_steps steps, along diffusion_velocity."
        with torch.no_grad():
            euler = solve_ode(NoiseAsVelocity(model), x0, SAMPLE_STEPS, "euler").x
            field = NoiseAsVelocity(model)
            early = torch.full((256, 1), field.t_min / 2)              # a time below T_MIN
            below = call("diffusion_velocity", diffusion_velocity, model, x0[:256].clone(), early.clone())
            far = isinstance(below, torch.Tensor) and tuple(below.shape) == (256, 2) and \
                float(((below.float() - field(x0[:256], early)) ** 2).sum(dim=1).mean().sqrt()) > 1
        if float(((samples - x0) ** 2).sum(dim=1).mean().sqrt()) < 1e-3:
            hint = "the samples are the noise itself: carry x0 along the field."
        elif float(((samples - euler) ** 2).sum(dim=1).mean().sqrt()) < SAMPLE_TOLERANCE:
            hint = "those are Euler steps; the exercise asks for RK4 (method='rk4')."
        elif far:
            hint = ("below T_MIN your field asks the network for diffusion times s > 1, where it was never trained; "
                    "its noise prediction there is not to be trusted.")
        fail("sample_from_diffusion does not land where the diffusion model's flow goes",
             f"RMS distance at most {SAMPLE_TOLERANCE} from the package's sampler "
             f"(first sample {vector(reference[0])})",
             f"{distance:.2f} (first sample {vector(samples[0])})", hint)
    quality = ring_quality(samples)
    if not quality.as_good_as_data:
        fail("sample_from_diffusion's samples are not as good as data", "samples that pass ring_quality",
             "; ".join(quality.problems()), "use n_steps RK4 steps over the whole of [0, 1].")
    return quality


@exercise_check
def check_noise_to_velocity(velocity_from_noise, noise_loss_weight, data_loss_weight, diffusion_velocity,
                            sample_from_diffusion, model) -> None:
    """Exercise 22: a noise prediction as a velocity, the loss weights, and sampling the shipped diffusion model.

    ``velocity_from_noise(x, eps_hat, t)``: fed the ring's exact noise prediction (per-mode Gaussian posteriors,
    float64), it must give the exact field ``RingMarginalField`` within 1e-3. ``noise_loss_weight(t)``,
    ``data_loss_weight(t)``: equal, within 1e-4, to the measured ratios ||eps_hat - x0||^2 / ||v_hat - u||^2 and
    ||x1_hat - x1||^2 / ||v_hat - u||^2 for the predictions that belong to one velocity prediction v_hat.
    ``diffusion_velocity(model, x, t)``: equal to ``diffusion.NoiseAsVelocity(model)`` within 1e-3 for t in
    [0.02, 0.98] and finite at t = 0. ``sample_from_diffusion(model, x0, n_steps)``: see ``_check_samples``.
    """
    for name, function in (("velocity_from_noise", velocity_from_noise), ("noise_loss_weight", noise_loss_weight),
                           ("data_loss_weight", data_loss_weight), ("diffusion_velocity", diffusion_velocity),
                           ("sample_from_diffusion", sample_from_diffusion)):
        require_callable(name, function)
    if not isinstance(model, DiffusionModel):
        raise TypeError(f"model must be the shipped diffusion model (a DiffusionModel), got {_short(model)}")
    _check_velocity_from_noise(velocity_from_noise)
    _check_weights(noise_loss_weight, data_loss_weight)
    _check_diffusion_velocity(diffusion_velocity, model)
    quality = _check_samples(sample_from_diffusion, diffusion_velocity, model)
    print(f"Correct: the conversion gives the exact field and the package's, the weights match the losses, and "
          f"{SAMPLE_SIZE} samples with {SAMPLE_STEPS} RK4 steps score W2 {quality.w2:.2f} (data baseline "
          f"{quality.floor:.2f}, spread {quality.floor_spread:.2f}) with {100 * quality.off_mode_fraction:.2f}% off "
          f"every mode (limit {100 * off_mode_limit(SAMPLE_SIZE):.1f}%).")


# ----------------------------------------------------------------------------- exercise 23


def _swirl(state: torch.Tensor, t) -> torch.Tensor:
    """A known nonlinear field on a 3-wide state (an augmented state) that depends on a float t."""
    a, b, c = state[:, 0], state[:, 1], state[:, 2]
    t = float(t)
    return torch.stack([-b + 0.3 * torch.sin(c) + t, a - 0.2 * b * c, 0.5 * a * b - t * t * c], dim=1)


def _check_rk4_step(rk4_step_fn) -> None:
    """The step must equal ``solvers.rk4_step`` on a nonlinear 3-wide state (on a linear field every method of
    order three gives the same step), with a negative step."""
    field = _swirl
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(24))
    t, h = 0.8, -0.4
    received = as_tensor("rk4_step", call("rk4_step", rk4_step_fn, field, x.clone(), t, h), x.shape)
    k1 = field(x, t)
    k2 = field(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = field(x + 0.5 * h * k2, t + 0.5 * h)
    k2_at_t = field(x + 0.5 * h * k1, t)
    compare("rk4_step", received, rk4_step(field, x, t, h), lambda i: f"for t = {t}, h = {h}, x = {vector(x[i])}", {
        "the four slopes weighted equally": (x + h / 4 * (k1 + k2 + k3 + field(x + h * k3, t + h)),
                                             "read the weights off the tableau's bottom row."),
        "the middle slopes taken at time t": (
            x + h / 6 * (k1 + 2 * k2_at_t + 2 * field(x + 0.5 * h * k2_at_t, t)
                         + field(x + h * field(x + 0.5 * h * k2_at_t, t), t + h)),
            "the first column of the tableau gives each stage's time, t + c_i h."),
        "the last slope taken from k2": (x + h / 6 * (k1 + 2 * k2 + 2 * k3 + field(x + h * k2, t + h)),
                                         "row four of the tableau starts from k3."),
        "Kutta's three-stage step of exercise 11": (
            x + h / 6 * (k1 + 4 * k2 + field(x + h * (2 * k2 - k1), t + h)), "this exercise asks for RK4's tableau."),
        "a plain Euler step": (x + h * k1, "RK4 combines four slopes."),
        "the step is not scaled by h": (x + (k1 + 2 * k2 + 2 * k3 + field(x + h * k3, t + h)) / 6,
                                        "the new state is x + h times the weighted slopes."),
    }, "stage i takes the slope at x + h (sum of a_ij k_j) and time t + c_i h; the step adds h (sum of b_i k_i). "
       "Use only x, t and h: the state may have any width and h may be negative.")


def _curly(x: torch.Tensor, t) -> torch.Tensor:
    """A smooth field with a known divergence and nonzero off-diagonal derivatives: (B, 2) -> (B, 2)."""
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1)
    return torch.stack([x[:, 0] * x[:, 1] + t * x[:, 0] ** 2, torch.cos(x[:, 0]) + t * x[:, 1] ** 2], dim=1)


def _check_divergence(exact_divergence, model) -> None:
    """The answer must give the known divergence of ``_curly`` and the package's divergence of ``model``."""
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(23))
    t = 0.7
    value = call("exact_divergence", exact_divergence, _curly, x.clone(), t)
    received = as_tensor("exact_divergence", value, (64,))[:, None]
    a, b = x[:, :1], x[:, 1:]
    expected = b + 2 * t * a + 2 * t * b                      # d/dx1 of v1 plus d/dx2 of v2
    off_diagonal = a - torch.sin(a)                           # d/dx2 of v1 plus d/dx1 of v2
    where = lambda i: f"for v(x) = (x1 x2 + t x1^2, cos x1 + t x2^2) at t = {t}, x = {vector(x[i])}"  # noqa: E731
    compare("exact_divergence", received, expected, where, {
        "the sum of every entry of the Jacobian": (
            expected + off_diagonal, "the gradient of the sum of v adds the cross derivatives dv1/dx2 and dv2/dx1; "
                                     "the divergence keeps only dv_i/dx_i."),
        "only dv1/dx1": (b + 2 * t * a, "there are two diagonal terms in 2-D."),
        "the off-diagonal derivatives": (off_diagonal, "take dv_i/dx_i: the same index on both."),
        "the sign is flipped": (-expected, "the divergence is the plain sum of dv_i/dx_i."),
    }, "div v = dv1/dx1 + dv2/dx2: differentiate each output coordinate on its own and keep the matching input.")
    column = torch.full((64, 1), 0.3)
    value = call("exact_divergence", exact_divergence, model, x.clone(), column)
    received = as_tensor("exact_divergence", value, (64,))[:, None]
    expected = velocity_and_divergence(model, x, column)[1].detach()[:, None]
    compare("exact_divergence", received, expected, lambda i: f"for the flow matching model at t = 0.3, "
            f"x = {vector(x[i])}", {}, "it must work on a network too: x must require gradients inside it.")


def _log_normal(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I) in 2-D: (B, 2) -> (B,)."""
    return -0.5 * (x ** 2).sum(dim=1) - math.log(2 * math.pi)


def _agrees(received: torch.Tensor, expected: torch.Tensor) -> bool:
    """Log-likelihoods equal up to NATS: the mean and the median point (a ReLU unit may switch at a point)."""
    gap = received - expected
    return bool(gap.abs().median() <= NATS) and abs(float(gap.mean())) <= NATS


def _likelihood_mistakes(model, points: torch.Tensor, n_steps: int, expected, x0) -> dict:
    """Typical wrong log-likelihoods of ``points`` with ``n_steps`` steps: {name: (values, hint)}."""
    base, change = _log_normal(x0), expected - _log_normal(x0)
    field, h = AugmentedField(model), -1.0 / n_steps
    state = torch.cat([points, torch.zeros(len(points), 1)], dim=1)
    forward = solve_ode(field, state, n_steps, "rk4").x
    wrong_times = state
    for k in range(n_steps):
        wrong_times = rk4_step(field, wrong_times, k / n_steps, h)
    return {
        "the log-density change has the wrong sign": (
            base - change, "integrating backwards, L collects +div v; log p_1(x1) = log p_0(x0) + L_0."),
        "the divergence term is missing": (base, "the flow stretches and squeezes volume: add the change L."),
        "the base density lacks its normalising constant": (
            expected + math.log(2 * math.pi), "log N(x; 0, I) in 2-D includes a constant."),
        "the normalising constant of a 1-D Gaussian": (
            expected + 0.5 * math.log(2 * math.pi), "the base is a 2-D Gaussian: count its constant once per "
                                                    "coordinate."),
        "the base density is read at x1": (
            _log_normal(points) + change, "read log p_0 where the backward solve ends, at x0."),
        "Euler steps": (log_likelihood(model, points, n_steps=n_steps, method="euler"),
                        "use your rk4_step on the augmented state."),
        "the solve runs forward, from t = 0 to t = 1": (
            _log_normal(forward[:, :2]) + forward[:, 2], "a data point sits at t = 1: integrate from t = 1 down "
                                                        "to t = 0 (negative steps)."),
        "the solve runs forward, and L enters with a minus": (
            _log_normal(forward[:, :2]) - forward[:, 2], "a data point sits at t = 1: integrate from t = 1 down "
                                                        "to t = 0 (negative steps)."),
        "the field is read at the wrong times": (
            _log_normal(wrong_times[:, :2]) + wrong_times[:, 2], "step k starts at t = 1 - k / n_steps and moves "
                                                                 "towards 0."),
    }


def _check_log_likelihood(flow_log_likelihood, model) -> None:
    """The answer must agree with ``likelihood.log_likelihood`` (RK4, same steps) within NATS on 200 points."""
    points = torch.from_numpy(create_ring_gaussians(200, seed=31)[0])
    for n_steps in (2, 8):
        value = call("flow_log_likelihood", flow_log_likelihood, model, points.clone(), n_steps)
        received = as_tensor("flow_log_likelihood", value, (len(points),))
        expected, x0 = log_likelihood(model, points, n_steps=n_steps, return_base_points=True)
        expected, x0 = expected.detach(), x0.detach()
        if _agrees(received, expected):
            continue
        with torch.no_grad():
            mistakes = _likelihood_mistakes(model, points, n_steps, expected, x0)
        mistake, hint = next(((name, hint) for name, (wrong, hint) in mistakes.items()
                              if _agrees(received, wrong.detach().float())), ("", ""))
        fail(f"flow_log_likelihood is wrong with {n_steps} steps", f"mean {float(expected.mean()):.4f} nats "
             f"(first point {float(expected[0]):.4f})", f"mean {float(received.mean()):.4f} (first point "
             f"{float(received[0]):.4f})", hint or "start at x1 with L = 0 at t = 1, take n_steps RK4 steps of "
             "size -1 / n_steps on [x, L], whose derivative is [v, div v]; then add log N(x0; 0, I).", mistake)


def _check_means(mean_by_steps, model) -> dict:
    """MEAN_LOG_LIKELIHOOD must hold the held-out means for 2, 4, 8 and 16 steps, each within NATS of the
    package's; returns the package's means, with the one for 32 steps."""
    if not isinstance(mean_by_steps, dict) or set(mean_by_steps) != set(LIKELIHOOD_STEPS):
        fail("MEAN_LOG_LIKELIHOOD has the wrong form", f"a dict with the keys {list(LIKELIHOOD_STEPS)}",
             _short(mean_by_steps), "keep the cell's dict {n_steps: mean log-likelihood}.")
    received = {n: as_number(f"MEAN_LOG_LIKELIHOOD[{n}]", mean_by_steps[n]) for n in LIKELIHOOD_STEPS}
    held_out = torch.from_numpy(create_ring_gaussians(HELD_OUT_SIZE, seed=HELD_OUT_SEED)[0])
    expected = {n: float(log_likelihood(model, held_out, n_steps=n).mean()) for n in (*LIKELIHOOD_STEPS, 32)}
    for n in LIKELIHOOD_STEPS:
        if abs(received[n] - expected[n]) > NATS:
            hint = ("that is the negative log-likelihood; the cell asks for the mean log-likelihood."
                    if abs(received[n] + expected[n]) <= NATS else
                    "that is a sum over the points; take the mean." if abs(received[n] - HELD_OUT_SIZE * expected[n])
                    <= HELD_OUT_SIZE * NATS else
                    f"score held_out, the {HELD_OUT_SIZE} ring points of seed {HELD_OUT_SEED}, with your "
                    f"flow_log_likelihood and fm_model.")
            fail(f"MEAN_LOG_LIKELIHOOD[{n}] is wrong", f"{expected[n]:.4f} nats", f"{received[n]:.4f}", hint)
    changes = [abs(received[b] - received[a]) for a, b in zip(LIKELIHOOD_STEPS, LIKELIHOOD_STEPS[1:])]
    if not all(later < earlier for earlier, later in zip(changes, changes[1:])):
        fail("MEAN_LOG_LIKELIHOOD does not converge", "smaller changes at every doubling of the steps",
             ", ".join(f"{c:.4f}" for c in changes), "check the cell's loop over the step counts.")
    return expected


@exercise_check
def check_flow_likelihood(rk4_step_fn, exact_divergence, flow_log_likelihood, mean_by_steps, trend, model) -> None:
    """Exercise 23: an RK4 step, the exact divergence, a log-likelihood with both, and its convergence.

    ``rk4_step(velocity, x, t, h)``: equal to ``solvers.rk4_step`` within 1e-4 on a 3-wide state with h < 0.
    ``exact_divergence(velocity, x, t)``: the known divergence of a smooth test field (within 1e-4) and the
    package's ``velocity_and_divergence`` on ``model``. ``flow_log_likelihood(model, x1, n_steps)``: within
    1e-3 nats of ``likelihood.log_likelihood`` (RK4, the same steps) in the mean and the median point; float32 or
    float64, grad or jacobian divergences, either way of writing the step times agree within 1e-5 in the mean
    and 3e-3 at single points, where a ReLU unit switches. ``mean_by_steps``: {2, 4, 8, 16: mean log-likelihood of
    the held-out points}, each within 1e-3 of the package's, with smaller changes at each doubling. ``trend``:
    a letter, graded by the hidden tests.
    """
    require_callable("rk4_step", rk4_step_fn)
    require_callable("exact_divergence", exact_divergence)
    require_callable("flow_log_likelihood", flow_log_likelihood)
    letter = choice("LIKELIHOOD_TREND", trend)
    _check_rk4_step(rk4_step_fn)
    _check_divergence(exact_divergence, model)
    _check_log_likelihood(flow_log_likelihood, model)
    expected = _check_means(mean_by_steps, model)
    means = ", ".join(f"{n}: {mean_by_steps[n]:.3f}" for n in LIKELIHOOD_STEPS)
    print(f"Correct: your RK4 step, divergence and log-likelihood match the package's; held-out means by steps {means} "
          f"nats (32 steps: {expected[32]:.3f}); LIKELIHOOD_TREND = '{letter}' is recorded (graded later).")
