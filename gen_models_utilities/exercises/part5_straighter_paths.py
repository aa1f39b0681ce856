"""Checks of the exercise notebook's Part 5, straighter paths (17a): exercises 19 and 20."""
from __future__ import annotations

import math

import torch

from ..couplings import minibatch_ot_coupling
from ..data import create_ring_gaussians
from ._harness import (ATOL, RTOL, as_tensor, call, close, exercise_check, fail, require_callable)

# ----------------------------------------------------------------------------- was exercise 15


@exercise_check
def check_ot_pairing(ot_pairing, n: int = 64, seed: int = 8) -> None:
    """Exercise 15: ``ot_pairing(x0, x1)`` -> x0 re-ordered (n, 2) so row i is paired with x1[i].

    The answer must be a permutation of x0's rows whose total squared distance to x1 equals
    that of ``couplings.minibatch_ot_coupling`` (exact OT).
    """
    require_callable("ot_pairing", ot_pairing)
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=generator)
    x1 = torch.from_numpy(create_ring_gaussians(n, generator=generator)[0])
    received = as_tensor("ot_pairing", call("ot_pairing", ot_pairing, x0.clone(), x1.clone()), x0.shape)

    def cost(paired):
        return float(((paired.double() - x1.double()) ** 2).sum(dim=1).mean())

    optimal, identity = cost(minibatch_ot_coupling(x0, x1)), cost(x0)
    if close(received, x1):
        fail("ot_pairing returned x1", "the rows of x0, re-ordered", "x1 itself (each point paired with itself)",
              "return x0[permutation], where permutation[i] is the noise point assigned to x1[i].")
    distances = torch.cdist(received.double(), x0.double())
    nearest = distances.argmin(dim=1)
    if not bool((distances.min(dim=1).values < ATOL).all()) or len(torch.unique(nearest)) != n:
        fail("ot_pairing did not return a permutation of x0", f"each of the {n} rows of x0 exactly once",
              f"{len(torch.unique(nearest[distances.min(dim=1).values < ATOL]))} distinct rows of x0",
              "every noise point must be used once: a pairing is a permutation, not a nearest-neighbour lookup.")
    received_cost = cost(received)
    if not math.isclose(received_cost, optimal, rel_tol=RTOL, abs_tol=1e-6):
        hint = ("that is the unchanged order, i.e. random pairs; reorder x0 to minimise the total squared distance."
                if math.isclose(received_cost, identity, rel_tol=RTOL) else
                "solve the assignment problem exactly, e.g. with scipy.optimize.linear_sum_assignment on the "
                "(n, n) matrix of squared distances, or ot.emd; check which index belongs to x0 and which to x1.")
        fail("ot_pairing is not optimal", f"mean squared pair distance {optimal:.4f}",
              f"{received_cost:.4f} (random pairs: {identity:.4f})", hint)
    print(f"Correct: ot_pairing is optimal (mean squared distance {optimal:.3f}, random pairs {identity:.3f}).")

