"""Checks of the exercise notebook's Part 1, paths and the field (17.2, 17.3): exercises 1 to 4."""
from __future__ import annotations


import torch

from ..base_distributions import sample_base
from ..data import RING_RADIUS, RING_STD, create_ring_gaussians, ring_mode_centers
from ..marginal_field import RingMarginalField
from ..paths import conditional_velocity, interpolate
from ..solvers import solve_ode
from ._harness import (as_tensor, call, close, compare, exercise_check, fail, fixed_pairs, grade_choice,
                       require_callable, vector)

# ----------------------------------------------------------------------------- was exercise 1


@exercise_check
def check_path(interpolate_point, target_velocity) -> None:
    """Exercise 1: ``interpolate_point(x0, x1, t)`` and ``target_velocity(x0, x1)``.

    x0, x1: (B, 2), t: (B, 1) -> (B, 2). Compared with ``paths.interpolate`` and
    ``paths.conditional_velocity`` on 256 fixed pairs.
    """
    require_callable("interpolate_point", interpolate_point)
    require_callable("target_velocity", target_velocity)
    x0, x1, t = fixed_pairs()
    received = as_tensor("interpolate_point", call("interpolate_point", interpolate_point, x0.clone(), x1.clone(),
                                                     t.clone()), x0.shape)
    compare("interpolate_point", received, interpolate(x0, x1, t),
             lambda i: f"at t = {float(t[i]):.3f}, x0 = {vector(x0[i])}, x1 = {vector(x1[i])}", {
                 "this is t*x0 + (1-t)*x1, the path run backwards: at t = 0 the point must be x0 (noise).":
                     t * x0 + (1 - t) * x1,
                 "at t = 0.5 the point should be halfway, not the sum; use the weights (1 - t) and t.":
                     x0 + t * x1,
                 "the point should move from x0 towards x1 as t grows: x0 + t (x1 - x0).": x0 + t * (x0 - x1),
             }, "x_t = (1 - t) x0 + t x1 equals x0 at t = 0 and x1 at t = 1.")
    received = as_tensor("target_velocity", call("target_velocity", target_velocity, x0.clone(), x1.clone()),
                          x0.shape)
    compare("target_velocity", received, conditional_velocity(x0, x1),
             lambda i: f"for x0 = {vector(x0[i])}, x1 = {vector(x1[i])}", {
                 "x0 - x1 points from the data back to the noise; the velocity is d x_t / dt.": x0 - x1,
                 "that is the midpoint of the pair, not its velocity: differentiate x_t with respect to t.":
                     0.5 * (x0 + x1),
                 "that is the data point itself; the velocity is the difference of the two end points.": x1,
             }, "differentiate x_t = (1 - t) x0 + t x1 with respect to t.")
    print("Correct: interpolate_point and target_velocity match the straight path on 256 pairs.")


# ----------------------------------------------------------------------------- was exercise 2


@exercise_check
def check_field_ends(field_at_0, field_at_1, model) -> None:
    """Exercise 2: ``field_at_0(x)`` and ``field_at_1(x)``, predictions of the exact marginal field
    u_t(x) = E[x1 - x0 | x_t = x] at t = 0 and t = 1: (B, 2) -> (B, 2).

    Compared with ``RingMarginalField`` (-x and x for this data); the line printed on success says
    how far the trained ``model`` is from them where it is used (base points at t = 0, data at t = 1).
    """
    require_callable("field_at_0", field_at_0)
    require_callable("field_at_1", field_at_1)
    exact = RingMarginalField()
    x = 4 * torch.rand(256, 2, generator=torch.Generator().manual_seed(20)) - 2          # a square around 0
    centers = torch.from_numpy(ring_mode_centers()).float()
    nearest = centers[torch.cdist(x, centers).argmin(dim=1)]
    on_ring = RING_RADIUS * x / x.norm(dim=1, keepdim=True)
    for name, fn, t in (("field_at_0", field_at_0, 0.0), ("field_at_1", field_at_1, 1.0)):
        received = as_tensor(name, call(name, fn, x.clone()), x.shape)
        compare(name, received, exact(x, t), lambda i: f"at x = {vector(x[i])}", {
            "that points from x to the nearest mode; at t = 0 x says nothing about which mode x1 is in, "
            "so the field averages over all modes.": nearest - x,
            "that points at the ring, radially; but the average over the eight modes of x1 is the centre, "
            "E[x1] = 0.": on_ring - x,
            "the sign is flipped: at t = 0 the field is E[x1] - x, at t = 1 it is x - E[x0].": -exact(x, t),
            "that is zero everywhere; average x1 - x0 given x_t = x: one of the two is known (x), the other "
            "averages to 0.": torch.zeros_like(x),
        }, "at t = 0, x_t = x0 = x and x1 is unknown (average E[x1]); at t = 1, x_t = x1 = x and x0 is unknown.")
    with torch.no_grad():
        x0 = sample_base("gaussian", 2000, seed=21)
        x1 = torch.from_numpy(create_ring_gaussians(2000, seed=22)[0])
        off_0 = float((model(x0, 0.0) + x0).norm(dim=1).mean())
        off_1 = float((model(x1, 1.0) - x1).norm(dim=1).mean())
    print(f"Correct: u_0(x) = -x and u_1(x) = x; the trained model is off by {off_0:.2f} at t = 0 "
          f"(|x| averages {float(x0.norm(dim=1).mean()):.2f}) and by {off_1:.2f} at t = 1 "
          f"(|x| averages {float(x1.norm(dim=1).mean()):.2f}).")


# ----------------------------------------------------------------------------- was exercise 3


@exercise_check
def check_marginal_velocity(marginal_velocity, times=(0.1, 0.5, 0.9)) -> None:
    """Exercise 3: ``marginal_velocity(x, t)`` -> u_t(x): x (B, 2), t a float -> (B, 2).

    Compared (within 1e-3) with ``marginal_field.RingMarginalField`` at 128 points and three times.
    """
    require_callable("marginal_velocity", marginal_velocity)
    exact = RingMarginalField()
    mu = exact.centers.float()                                                       # (K, 2)
    s2 = RING_STD ** 2
    x = 8 * torch.rand(128, 2, generator=torch.Generator().manual_seed(30)) - 4

    def variant(t, var, weight_var, centre_scale, slope):
        squared = ((x[:, None] - centre_scale * mu[None]) ** 2).sum(dim=2)
        weights = torch.softmax(-squared / (2 * weight_var), dim=1) if weight_var else torch.full_like(squared, 1 / 8)
        per_mode = mu[None] + slope * (x[:, None] - t * mu[None])
        return (weights[:, :, None] * per_mode).sum(dim=1)

    for t in times:
        received = as_tensor("marginal_velocity", call("marginal_velocity", marginal_velocity, x.clone(), t), x.shape)
        var, c = (1 - t) ** 2 + t ** 2 * s2, t * s2 - (1 - t)
        expected = exact(x, t).float()
        mistakes = {
            "the weights are equal for every mode; weight mode k by how likely it is to have produced x, "
            "w_k proportional to exp(-|x - t mu_k|^2 / (2 var_t)).": variant(t, var, 0, t, c / var),
            "the weights use variance 1; x_t given mode k has variance var_t = (1 - t)^2 + t^2 s^2.":
                variant(t, var, 1.0, t, c / var),
            "the weights compare x with mu_k; at time t mode k sits at t mu_k.": variant(t, var, var, 1.0, c / var),
            "each mode's velocity is mu_k + (c_t / var_t)(x - t mu_k); you left out the correction term.":
                variant(t, var, var, t, 0.0),
            "the softmax lost the factor 1/2: w_k proportional to exp(-|x - t mu_k|^2 / (2 var_t)).":
                variant(t, var / 2, var / 2, t, c / var),
        }
        if not close(received, expected, atol=1e-3):
            i = int(torch.nonzero(((received - expected).abs() > 1e-3).any(dim=1))[0, 0])
            hint = next((h for h, v in mistakes.items() if close(received, v, atol=1e-3)),
                        "u_t(x) = sum_k w_k(x) [mu_k + (c_t / var_t)(x - t mu_k)] with softmax weights w_k.")
            fail(f"marginal_velocity is wrong at t = {t}, x = {vector(x[i])}", vector(expected[i]),
                  vector(received[i]), hint)
    print(f"Correct: marginal_velocity equals the exact u_t(x) at 128 points and t = {list(times)}.")


# ----------------------------------------------------------------------------- was exercise 11


_INVERSION_HINTS = {
    "a": "the ancestral sampler draws fresh noise at every step, so the sample does not determine the start.",
    "c": "more steps do not help: the injected noise is not stored in the sample.",
    "d": "the trouble is not the network: randomness is added along the way, not only at the start.",
}


@exercise_check
def check_encode(encode, answer, model, n_samples: int = 200, n_steps: int = 20, seed: int = 50) -> None:
    """Exercise 11: ``encode(velocity, x1, n_steps)`` -> x0: (B, 2), Euler from t = 1 back to t = 0,
    compared with ``solve_ode(..., t0=1, t1=0)``; ``answer``: why a diffusion sample cannot be encoded."""
    require_callable("encode", encode)
    x1 = torch.from_numpy(create_ring_gaussians(n_samples, seed=seed)[0])
    with torch.no_grad():
        received = as_tensor("encode", call("encode", encode, model, x1.clone(), n_steps), x1.shape)
        expected = solve_ode(model, x1, n_steps=n_steps, t0=1.0, t1=0.0).x
        h = 1.0 / n_steps
        forwards = solve_ode(model, x1, n_steps=n_steps).x
        wrong_times = x1.clone()
        for k in range(n_steps):
            wrong_times = wrong_times - h * model(wrong_times, k * h)
    compare("encode", received, expected, lambda i: f"for x1 = {vector(x1[i])}", {
        "that integrates forwards from t = 0 to 1 again; encoding runs from t = 1 back to t = 0.": forwards,
        "the steps go backwards but the field is read at t = 0, h, 2h, ...; read it at t = 1, 1 - h, ...":
            wrong_times,
        "that is x1 unchanged: take n_steps steps of size -1 / n_steps.": x1,
    }, "start at x1, t = 1 and take n_steps Euler steps x <- x - h v(x, t), t <- t - h, with h = 1 / n_steps.")
    grade_choice("DIFFUSION_ANSWER", answer, "b", _INVERSION_HINTS)
    with torch.no_grad():
        back = solve_ode(model, expected, n_steps=n_steps).x
    print(f"Correct: encode runs the flow backwards; decoding its x0 again lands "
          f"{float((back - x1).norm(dim=1).mean()):.3f} from x1 on average ({n_steps} Euler steps each way).")

