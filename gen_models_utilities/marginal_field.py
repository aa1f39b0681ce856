"""The exact marginal velocity field for the Gaussian base and the ring of Gaussians.

With x0 ~ N(0, I), x1 from mode k ~ N(mu_k, s^2 I) and x_t = (1 - t) x0 + t x1, the pair
(x_t, u = x1 - x0) is Gaussian given k:
    x_t | k ~ N(t mu_k, var_t I),  var_t = (1 - t)^2 + t^2 s^2,
    Cov(u, x_t | k) = c_t I,       c_t = t s^2 - (1 - t).
So E[u | x_t = x, k] = mu_k + (c_t / var_t)(x - t mu_k), and the marginal field the network
learns is its average over the modes, weighted by how likely each mode is to have produced x:
    u_t(x) = sum_k w_k(x) E[u | x, k],   w_k(x) proportional to N(x; t mu_k, var_t I).
At t = 0 every w_k is equal and u_0(x) = -x; at t = 1, u_1(x) = x.

The loss floor is what even this exact field leaves: the spread of u given x_t.
"""
from __future__ import annotations

import numpy as np
import torch

from ._checks import as_points, check_choice, check_positive_int, check_real
from .data import RING_MODES, RING_RADIUS, RING_STD, ring_mode_centers


MAX_GRID = 1001                # grid points per side of the loss floor's integral
MAX_NODES = 1000               # quadrature nodes in t of the average loss floor


class RingMarginalField:
    """The exact u_t(x) for the Gaussian base and a ring of ``n_modes`` Gaussians (std ``std``).

    Call as ``field(x, t)`` like a velocity model (x: (B, 2), t: float or (B, 1)), so
    ``solve_ode(field, x0)`` gives exact trajectories.
    """

    dim, predicts, condition_kind, condition_dim = 2, "velocity", None, 0     # what the solvers' door reads

    def __init__(self, n_modes: int = RING_MODES, radius: float = RING_RADIUS, std: float = RING_STD):
        self.centers = torch.from_numpy(ring_mode_centers(n_modes, radius)).double()    # (K, 2)
        self.std = check_real("std", std, low=0.0, low_open=True)
        self._floors: dict[tuple, float] = {}         # loss_floor results, which the averages reuse

    def moments(self, t: torch.Tensor):
        """var_t and c_t of the module docstring, for t: (B, 1) float64."""
        return (1 - t) ** 2 + t ** 2 * self.std ** 2, t * self.std ** 2 - (1 - t)

    def mode_weights(self, x: torch.Tensor, t) -> torch.Tensor:
        """w_k(x): the probability that x_t = x came from mode k. (B, 2) -> (B, K)."""
        x, t = _as_float64(x, t)
        var, _ = self.moments(t)
        squared = ((x[:, None, :] - t[:, :, None] * self.centers[None]) ** 2).sum(dim=2)     # (B, K)
        return torch.softmax(-squared / (2 * var), dim=1)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        """u_t(x) = E[x1 - x0 | x_t = x]: (B, 2) -> (B, 2), in x's dtype."""
        x64, t64 = _as_float64(x, t)
        var, c = self.moments(t64)
        per_mode = self.centers[None] + (c / var)[:, :, None] * (x64[:, None, :] - t64[:, :, None] * self.centers[None])
        velocity = (self.mode_weights(x64, t64)[:, :, None] * per_mode).sum(dim=1)
        return velocity.to(x.device, x.dtype) if isinstance(x, torch.Tensor) else velocity.float()

    def loss_floor(self, t: float, n_grid: int = 151, limit: float = 6.0) -> float:
        """The smallest flow matching loss at time t: E ||u - u_t(x_t)||^2 / 2, the mean over the
        two coordinates that ``mse_loss`` takes. Integrated over x_t on a grid (exact to ~1e-4).

        It has two parts: the spread of u within a mode, 1 + s^2 - c_t^2 / var_t per coordinate,
        and the spread of the modes' own means E[u | x, k] around their average u_t(x).
        """
        t = check_real("t", t, low=0.0, high=1.0)
        n_grid = check_positive_int("n_grid", n_grid, minimum=2, maximum=MAX_GRID)
        limit = check_real("limit", limit, low=0.0, low_open=True)
        key = (t, n_grid, limit)
        if key not in self._floors:
            self._floors[key] = self._loss_floor(t, n_grid, limit)
        return self._floors[key]

    def _loss_floor(self, t: float, n_grid: int, limit: float) -> float:
        axis = torch.linspace(-limit, limit, n_grid, dtype=torch.float64)
        grid = torch.cartesian_prod(axis, axis)                                        # (G, 2)
        var, c = self.moments(torch.tensor(t, dtype=torch.float64))
        means = t * self.centers                                                       # (K, 2): E[x_t | k]
        squared = (grid ** 2).sum(dim=1, keepdim=True) - 2 * grid @ means.T + (means ** 2).sum(dim=1)   # (G, K)
        logits = -squared / (2 * var)
        density = torch.exp(torch.logsumexp(logits, dim=1)) / (len(means) * 2 * np.pi * var)   # p_t on the grid
        weights = torch.softmax(logits, dim=1)
        # E[u | x, k] = (1 - c t / var) mu_k + (c / var) x: around its average over k only mu_k varies
        spread_of_centres = weights @ (self.centers ** 2).sum(dim=1) - ((weights @ self.centers) ** 2).sum(dim=1)
        between = (1 - c * t / var) ** 2 * spread_of_centres                           # (G,)
        cell = float(axis[1] - axis[0]) ** 2
        within = 2 * (1 + self.std ** 2 - c ** 2 / var)
        return float(within + (density * between).sum() * cell) / 2

    def average_loss_floor(self, time_sampling: str = "uniform", n_times: int = 24) -> float:
        """The loss floor averaged over t as training draws it ('uniform' or 'logit_normal'),
        by Gauss-Legendre quadrature on [0, 1]."""
        check_choice("time_sampling", time_sampling, ("uniform", "logit_normal"))
        nodes, weights = np.polynomial.legendre.leggauss(check_positive_int("n_times", n_times, maximum=MAX_NODES))
        times, weights = (nodes + 1) / 2, weights / 2
        if time_sampling == "logit_normal":      # density of sigmoid(z), z ~ N(0, 1)
            logit = np.log(times / (1 - times))
            weights = weights * np.exp(-logit ** 2 / 2) / (np.sqrt(2 * np.pi) * times * (1 - times))
        return float(sum(w * self.loss_floor(float(t)) for t, w in zip(times, weights)))


def _as_float64(x, t) -> tuple[torch.Tensor, torch.Tensor]:
    """x as float64 (B, 2) and t as float64 (B, 1), from a float, (B,) or (B, 1) time."""
    x = as_points("x", x).double() if not isinstance(x, torch.Tensor) else x.detach().cpu().double()
    # a Python float goes straight to float64: through float32 first it would keep only ~7 digits
    t = t.detach().cpu().double() if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float64)
    t = t.reshape(-1, 1)
    return x, t.expand(x.shape[0], 1) if t.shape[0] == 1 else t
