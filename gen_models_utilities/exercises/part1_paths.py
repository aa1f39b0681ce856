"""Checks of the exercise notebook's Part 1, paths and the field (17.2, 17.3): exercises 1 to 4."""
from __future__ import annotations

import math

import torch

from ..base_distributions import sample_base
from ..data import RING_RADIUS, RING_STD, create_ring_gaussians, ring_mode_centers
from ..marginal_field import RingMarginalField
from ..solvers import solve_ode
from ._harness import (as_tensor, call, choice, close, compare, exercise_check, fail, fixed_pairs, require_callable,
                       vector)

__all__ = ['check_path', 'check_field_ends', 'check_marginal_velocity', 'check_encode']

VELOCITY_ATOL = 1e-2    # exercise 1: a central or forward difference with step 1e-4 to 1e-3 is off by at most 5e-3
FIELD_ATOL = 1e-3       # exercise 3: float32 or float64, either of the three ways of writing E[x1 - x0 | x_t, k]


# ----------------------------------------------------------------------------- exercise 1


def _trig(x0, x1, t):
    """The path of exercise 1 and its velocity: x_t = cos(a) x0 + sin(a) x1 with a = pi t / 2."""
    a = math.pi * t / 2
    return torch.cos(a) * x0 + torch.sin(a) * x1, math.pi / 2 * (torch.cos(a) * x1 - torch.sin(a) * x0)


@exercise_check
def check_path(trig_point, trig_velocity) -> None:
    """Exercise 1: ``trig_point(x0, x1, t)`` and ``trig_velocity(x0, x1, t)`` for the path
    x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1. x0, x1: (B, 2), t: (B, 1) -> (B, 2).

    Compared on 256 fixed pairs: the point within 1e-4; the velocity within ``VELOCITY_ATOL``, so that an
    exact derivative (by hand, autograd or ``torch.func.jvp``; float32 or float64) and a central or forward
    difference with a step of 1e-4 to 1e-3 all pass (their largest error, measured: 5e-3).
    """
    require_callable("trig_point", trig_point)
    require_callable("trig_velocity", trig_velocity)
    x0, x1, t = fixed_pairs()
    point, velocity = _trig(x0, x1, t)
    a = math.pi * t / 2
    where = lambda i: f"at t = {float(t[i]):.3f}, x0 = {vector(x0[i])}, x1 = {vector(x1[i])}"  # noqa: E731
    received = as_tensor("trig_point", call("trig_point", trig_point, x0.clone(), x1.clone(), t.clone()), x0.shape)
    compare("trig_point", received, point, where, {
        "the straight path": ((1 - t) * x0 + t * x1, "that is the chapter's straight line; this path weights x0 "
                              "and x1 by a cosine and a sine of the angle pi t / 2."),
        "the path run backwards": (torch.sin(a) * x0 + torch.cos(a) * x1, "at t = 0 the point must be the noise "
                                   "x0 and at t = 1 the data x1: which weight is 1 at t = 0?"),
        "the angle pi t instead of pi t / 2": (torch.cos(2 * a) * x0 + torch.sin(2 * a) * x1,
                                               "at t = 1 your point is not x1; check the angle at t = 1."),
    }, "at t = 0 the point is x0, at t = 1 it is x1, and in between x0 and x1 are weighted by cos(pi t / 2) "
       "and sin(pi t / 2).")
    received = as_tensor("trig_velocity", call("trig_velocity", trig_velocity, x0.clone(), x1.clone(), t.clone()),
                         x0.shape)
    compare("trig_velocity", received, velocity, where, {
        "the straight path's velocity": (x1 - x0, "x1 - x0 is the velocity of the straight line only; "
                                         "differentiate this path's x_t with respect to t."),
        "the chain rule's factor left out": (velocity * 2 / math.pi, "the direction is right but the length is "
                                             "not: the angle is pi t / 2, so the chain rule brings its derivative."),
        "the sign of the derivative of the cosine": (math.pi / 2 * (torch.cos(a) * x1 + torch.sin(a) * x0),
                                                     "what is the derivative of cos, and its sign?"),
        "the derivatives of sine and cosine swapped": (math.pi / 2 * (torch.sin(a) * x1 - torch.cos(a) * x0),
                                                       "differentiate each weight on its own: d/da sin a and "
                                                       "d/da cos a."),
        "the straight path's (x1 - x_t) / (1 - t)": ((x1 - point) / (1 - t), "(x1 - x_t) / (1 - t) is the "
                                                     "velocity of a straight path; this one bends."),
    }, "differentiate x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1 with respect to t (a central difference "
       "is a good way to test your formula).", atol=VELOCITY_ATOL)
    speed = velocity.norm(dim=1)
    ends = _trig(x0, x1, torch.zeros_like(t))[1].norm(dim=1), _trig(x0, x1, torch.ones_like(t))[1].norm(dim=1)
    print(f"Correct: trig_point and trig_velocity match the path on 256 pairs; its speed changes along it "
          f"(mean {float(ends[0].mean()):.2f} at t = 0, {float(ends[1].mean()):.2f} at t = 1, "
          f"{float(speed.mean()):.2f} at the pairs' random times).")


# ----------------------------------------------------------------------------- exercise 2


def _angle_and_ratio(received: torch.Tensor, expected: torch.Tensor) -> str:
    """How a received vector sits against the expected one, without giving the expected one away."""
    length, norm = float(received.norm()), float(expected.norm())
    if length == 0 or norm == 0:
        return f"{vector(received)} (length {length:.2f})"
    cosine = max(-1.0, min(1.0, float(received @ expected) / (length * norm)))
    return f"{vector(received)}, {math.degrees(math.acos(cosine)):.0f} degrees off the exact direction and " \
           f"{length / norm:.2f} times its length"


@exercise_check
def check_field_ends(field_at_0, field_at_1, model) -> None:
    """Exercise 2: ``field_at_0(x)`` and ``field_at_1(x)``, predictions of the exact marginal field
    u_t(x) = E[x1 - x0 | x_t = x] at t = 0 and t = 1: (B, 2) -> (B, 2).

    Compared (within 1e-4) with ``RingMarginalField`` at 256 points of the square [-2, 2]^2: both means the
    answer needs are exactly 0, so a right answer is exact up to rounding (a mean estimated from samples is
    off by a constant vector, about 0.1 long at 2000 points, and is named as a mistake). A failure
    says how far the prediction's direction and length are from the exact field's, not the field itself.
    The line printed on success says how far the trained ``model`` is from it where it is used (base
    points at t = 0, data at t = 1).
    """
    require_callable("field_at_0", field_at_0)
    require_callable("field_at_1", field_at_1)
    exact = RingMarginalField()
    x = 4 * torch.rand(256, 2, generator=torch.Generator().manual_seed(20)) - 2          # a square around 0
    centers = torch.from_numpy(ring_mode_centers()).float()
    nearest = centers[torch.cdist(x, centers).argmin(dim=1)]
    on_ring = RING_RADIUS * x / x.norm(dim=1, keepdim=True)
    ends = {0.0: "x is the start x0 of every pair through it", 1.0: "x is the end x1 of every pair through it"}
    for name, fn, t in (("field_at_0", field_at_0, 0.0), ("field_at_1", field_at_1, 1.0)):
        received = as_tensor(name, call(name, fn, x.clone()), x.shape)
        expected = exact(x, t)
        if close(received, expected):
            continue
        i = int(torch.nonzero(((received - expected).abs() > 1e-4).any(dim=1))[0, 0])
        mistakes = {
            "pointing at the nearest mode": (nearest - x, f"at t = {t:.0f}, {ends[t]}: does it say which mode "
                                             f"the other end of the pair lies in?"),
            "pointing at the ring": (on_ring - x, "does x say in which direction around the ring the other end "
                                     "of its pair lies? Average over every pair through x."),
            "the direction reversed": (-expected, "the velocity x1 - x0 points from the start to the end of the "
                                       "pair; which end is x here?"),
            "zero everywhere": (torch.zeros_like(x), f"{ends[t]}, so one end of x1 - x0 is known exactly; "
                                "only the other is averaged."),
            "a sample mean for an exact mean": (expected + (received - expected).mean(dim=0),
                                                "your field is the exact one shifted by the same small vector "
                                                "at every x, as when a mean is estimated from samples. The "
                                                "Gaussian base and the ring are both centred at the origin, so "
                                                "the mean you need is known exactly."),
        }
        mistake, hint = next(((m, h) for m, (v, h) in mistakes.items() if close(received, v)), ("", ""))
        fail(f"{name} is wrong at x = {vector(x[i])}", f"the exact u_{t:.0f}(x) there",
             _angle_and_ratio(received[i], expected[i]),
             hint or f"u_t(x) averages x1 - x0 over the pairs whose path is at x at time t; at t = {t:.0f}, "
                     f"{ends[t]}, and the other end is drawn independently of it.", mistake)
    with torch.no_grad():
        x0 = sample_base("gaussian", 2000, seed=21)
        x1 = torch.from_numpy(create_ring_gaussians(2000, seed=22)[0])
        off_0 = float((model(x0, 0.0) - exact(x0, 0.0)).norm(dim=1).mean())
        off_1 = float((model(x1, 1.0) - exact(x1, 1.0)).norm(dim=1).mean())
    print(f"Correct: both predictions match the exact field; the trained model is off by {off_0:.2f} at t = 0 "
          f"(|x| averages {float(x0.norm(dim=1).mean()):.2f}) and by {off_1:.2f} at t = 1 "
          f"(|x| averages {float(x1.norm(dim=1).mean()):.2f}).")


# ----------------------------------------------------------------------------- exercise 3


def _blob_mean(x, t, mu, s, var=None, cov=None, centre=None):
    """mu + (cov / var)(x - centre), E[x1 - x0 | x_t = x] for one blob; the defaults are the right moments."""
    var = (1 - t) ** 2 + t ** 2 * s ** 2 if var is None else var
    cov = t * s ** 2 - (1 - t) if cov is None else cov
    return mu + cov / var * (x - (t * mu if centre is None else centre))


@exercise_check
def check_marginal_velocity(marginal_velocity, blob_velocity=None, times=(0.1, 0.5, 0.9)) -> None:
    """Exercise 3: ``blob_velocity(x, t, mu, s)`` = E[x1 - x0 | x_t = x] for data from one blob N(mu, s^2 I)
    (x: (B, 2), t a float, mu: (2,), s a float -> (B, 2)), then ``marginal_velocity(x, t)`` -> u_t(x) for
    the ring. ``blob_velocity`` may be left out (None).

    Both within ``FIELD_ATOL`` at 128 points and times 0.1, 0.5, 0.9 (away from t = 0 and t = 1, where
    the forms (E[x1 | x_t] - x) / (1 - t) and (x - E[x0 | x_t]) / t divide by zero): the blob on two blobs
    that are not the ring's, the marginal against ``marginal_field.RingMarginalField``.
    """
    require_callable("marginal_velocity", marginal_velocity)
    x = 8 * torch.rand(128, 2, generator=torch.Generator().manual_seed(30)) - 4
    if blob_velocity is not None:
        require_callable("blob_velocity", blob_velocity)
        for mu, s in ((torch.tensor([1.5, -2.0]), 0.4), (torch.tensor([-0.5, 3.0]), 0.8)):
            for t in times:
                var = (1 - t) ** 2 + t ** 2 * s ** 2
                x1_mean = mu + t * s ** 2 / var * (x - t * mu)                       # E[x1 | x_t = x]
                received = as_tensor("blob_velocity", call("blob_velocity", blob_velocity, x.clone(), t, mu.clone(),
                                                           s), x.shape)
                compare("blob_velocity", received, _blob_mean(x, t, mu, s),
                        lambda i: f"at t = {t}, x = {vector(x[i])}, mu = {vector(mu)}, s = {s}", {
                    "the blob's mean velocity alone": (mu.expand_as(x), "that is E[x1 - x0] before x_t is seen; "
                                                       "seeing x_t moves the mean."),
                    "E[x1 | x_t] returned": (x1_mean, "that is where x1 is expected to be; the exercise asks "
                                             "for the velocity x1 - x0."),
                    "E[x1 | x_t] - x_t, not divided by 1 - t": (x1_mean - x, "x_t = (1 - t) x0 + t x1, so x0 is "
                                                                "(x_t - t x1) / (1 - t): write x1 - x0 with it."),
                    "the variance of x1 - x0 in the denominator": (_blob_mean(x, t, mu, s, var=1 + s ** 2),
                                                                   "condition on x_t: divide by its variance."),
                    "the weights of x_t not squared in its variance": (_blob_mean(x, t, mu, s, var=1 - t + t * s ** 2),
                                                                       "Var(a x0 + b x1) for independent x0, x1 "
                                                                       "is a^2 Var(x0) + b^2 Var(x1)."),
                    "the sign of the covariance": (_blob_mean(x, t, mu, s, cov=t * s ** 2 + 1 - t),
                                                   "in Cov(x1 - x0, (1 - t) x0 + t x1) the x0 terms carry a minus "
                                                   "sign."),
                    "x_t compared with mu": (_blob_mean(x, t, mu, s, centre=mu), "what is the mean of x_t, given "
                                             "the blob?"),
                }, "for jointly Gaussian a, b: E[a | b] = E[a] + Cov(a, b) / Var(b) (b - E[b]), per coordinate.",
                        atol=FIELD_ATOL)
    exact = RingMarginalField()
    mu = exact.centers.float()                                                       # (K, 2)

    def variant(t, weight_var, centre_scale, normalise=True):
        squared = ((x[:, None] - centre_scale * mu[None]) ** 2).sum(dim=2)
        if weight_var is None:
            weights = torch.full_like(squared, 1 / len(mu))
        elif normalise:
            weights = torch.softmax(-squared / (2 * weight_var), dim=1)
        else:
            weights = torch.exp(-squared / (2 * weight_var))
        per_mode = _blob_mean(x[:, None], t, mu[None], RING_STD)
        return (weights[:, :, None] * per_mode).sum(dim=1)

    for t in times:
        received = as_tensor("marginal_velocity", call("marginal_velocity", marginal_velocity, x.clone(), t),
                             x.shape)
        var = (1 - t) ** 2 + t ** 2 * RING_STD ** 2
        compare("marginal_velocity", received, exact(x, t).float(), lambda i: f"at t = {t}, x = {vector(x[i])}", {
            "equal weights for every blob": (variant(t, None, t), "a blob far from x is unlikely to have put a point "
                                             "there; weight each blob by how likely it makes x_t = x."),
            "weights with variance 1": (variant(t, 1.0, t), "the likelihood of x under blob k is the density of "
                                        "x_t given k: which variance does it have?"),
            "weights around mu_k": (variant(t, var, 1.0), "the likelihood of x under blob k is the density of x_t "
                                    "given k: where is it centred at time t?"),
            "the factor 1/2 of the Gaussian's exponent left out": (variant(t, var / 2, t),
                                                                   "write out the Gaussian density of x_t given k."),
            "weights that do not sum to 1": (variant(t, var, t, normalise=False), "Bayes' rule divides by the "
                                             "total over the blobs."),
        }, "u_t(x) = sum over the blobs of P(blob k | x_t = x) E[x1 - x0 | x_t = x, blob k], with equal prior "
           "probabilities.", atol=FIELD_ATOL)
    checked = "blob_velocity (on two blobs) and marginal_velocity match" if blob_velocity is not None else \
        "marginal_velocity matches"
    print(f"Correct: {checked} the exact field at 128 points and t = {list(times)}.")


# ----------------------------------------------------------------------------- exercise 4


@exercise_check
def check_encode(encode, answer, model, n_samples: int = 200, n_steps: int = 20, seed: int = 50) -> None:
    """Exercise 4: ``encode(velocity, x1, n_steps)`` -> x0: (B, 2), Euler from t = 1 back to t = 0,
    compared with ``solve_ode(..., t0=1, t1=0)`` (within 1e-4); ``answer``: the letter chosen for the
    diffusion question, only read here (a hidden test grades it)."""
    require_callable("encode", encode)
    letter = choice("DIFFUSION_ANSWER", answer)
    x1 = torch.from_numpy(create_ring_gaussians(n_samples, seed=seed)[0])
    h = 1.0 / n_steps
    with torch.no_grad():
        received = as_tensor("encode", call("encode", encode, model, x1.clone(), n_steps), x1.shape)
        expected = solve_ode(model, x1, n_steps=n_steps, t0=1.0, t1=0.0).x
    if not close(received, expected):                    # only then the typical mistakes are worth computing
        with torch.no_grad():
            forwards = solve_ode(model, x1, n_steps=n_steps).x
            wrong_times, end_times, uphill = x1.clone(), x1.clone(), x1.clone()
            for k in range(n_steps):
                wrong_times = wrong_times - h * model(wrong_times, k * h)
                end_times = end_times - h * model(end_times, 1.0 - (k + 1) * h)
                uphill = uphill + h * model(uphill, 1.0 - k * h)
        compare("encode", received, expected, lambda i: f"for x1 = {vector(x1[i])}", {
            "integrating forwards": (forwards, "encoding starts from the data at t = 1 and ends at t = 0."),
            "the field read at the forward times": (wrong_times, "the steps go backwards; at which time is the "
                                                    "field read at the first step?"),
            "the field read at the end of each step": (end_times, "read the field where each step starts: "
                                                       "t = 1, 1 - h, ..., h."),
            "steps taken along the field": (uphill, "going back in time, each step goes against the velocity."),
            "x1 returned unchanged": (x1, "take n_steps steps."),
        }, "start at x1, t = 1 and take n_steps Euler steps of size -h, h = 1 / n_steps.")
    with torch.no_grad():
        back = solve_ode(model, expected, n_steps=n_steps).x
    print(f"Correct: encode runs the flow backwards (decoding its x0 again lands "
          f"{float((back - x1).norm(dim=1).mean()):.3f} from x1 on average, {n_steps} Euler steps each way); "
          f"DIFFUSION_ANSWER = {letter!r} is recorded (graded later).")
