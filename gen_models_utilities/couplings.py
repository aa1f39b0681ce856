"""Couplings: how base samples x0 are paired with data samples x1 in a training batch.

A coupling takes x0 (B, 2) and x1 (B, 2) and returns x0 re-ordered so that row i of x0 is
paired with row i of x1; x1 (and so any labels or conditions carried with it) keeps its order.
They live in one registry, ``COUPLINGS``: 'independent', 'ot' (exact OT over the whole batch),
'ot_block64' / 'ot_block128' / 'ot_block256' (exact OT inside blocks of that many rows, which
costs far less: the network simplex grows faster than B^2) and 'class_ot'. An entry's ``pair``
is what ``train`` calls every step, on batches it built, so it checks nothing; the public
functions below (``minibatch_ot_coupling``, ...) check their arguments, then pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import ot
import torch
from scipy.optimize import linear_sum_assignment

from ._checks import (MAX_PAIRWISE, _short, as_points, as_real_tensor, check_callable, check_choice, check_entry,
                      check_positive_int)

MAX_OT_ROWS = int(MAX_PAIRWISE ** 0.5)      # 10000: the B x B cost matrix stays below 800 MB


def _check_batches(x0, x1, labels=None, max_rows: int | None = None) -> torch.Tensor | None:
    """x0, x1: finite real tensors (B, D) of one shape, B <= max_rows; returns labels: None, (B,) or (B, C)."""
    if not (isinstance(x0, torch.Tensor) and isinstance(x1, torch.Tensor)):
        raise TypeError(f"x0 and x1 must be torch.Tensors of shape (B, D), got {_short(x0)} and {_short(x1)}")
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape for pairing, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if max_rows is not None and x0.dim() > 0 and len(x0) > max_rows:
        raise ValueError(f"x0 has {len(x0)} rows; exact OT pairing needs a B x B cost matrix, "
                         f"so B must be at most {max_rows}")
    dim = x0.shape[1] if x0.dim() == 2 and x0.shape[1] else 2
    as_points("x0", x0, dim=dim), as_points("x1", x1, dim=dim)
    if labels is None:
        return None
    labels = as_real_tensor("labels", labels, allow_bool=True)
    if labels.dim() not in (1, 2) or len(labels) != len(x1):
        raise ValueError(f"labels must have shape ({len(x1)},) or ({len(x1)}, C), got shape {tuple(labels.shape)}")
    return labels


def _independent(x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    return x0


def independent_coupling(x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The chapter's coupling: random pairs, i.e. x0 as drawn."""
    _check_batches(x0, x1, labels)
    return _independent(x0, x1, labels)


def ot_permutation(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Permutation p minimising sum_i |x0[p[i]] - x1[i]|^2 (exact OT between equal batches).

    With equal uniform weights the exact transport plan is a permutation matrix, found with
    POT's network-simplex solver ``ot.emd``. Returns int64 (B,).
    """
    a = x0.detach().cpu().double().numpy()
    b = x1.detach().cpu().double().numpy()
    cost = ot.dist(b, a)                      # (B, B): row i is x1[i], column j is x0[j]
    n = len(b)
    weights = np.full(n, 1.0 / n)
    plan = ot.emd(weights, weights, cost)
    return torch.from_numpy(plan.argmax(axis=1)).to(x0.device)


def _minibatch_ot(x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    return x0[ot_permutation(x0, x1)]


def minibatch_ot_coupling(x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Pair the batch by exact optimal transport (squared Euclidean cost), ignoring labels."""
    _check_batches(x0, x1, labels, max_rows=MAX_OT_ROWS)
    return _minibatch_ot(x0, x1)


SMALL_BLOCK = 64     # up to here SciPy's assignment solver beats the network simplex (0.14 vs 0.41 ms at 64)


def _assignment(cost: np.ndarray) -> np.ndarray:
    """The exact optimal assignment of a square cost matrix (rows: x1, columns: x0): int (B,)."""
    if len(cost) <= SMALL_BLOCK:
        return linear_sum_assignment(cost)[1]
    weights = np.full(len(cost), 1.0 / len(cost))
    return ot.emd(weights, weights, cost).argmax(axis=1)


def blockwise_ot_coupling(block_size: int):
    """A coupling that pairs by exact OT inside consecutive blocks of ``block_size`` rows.

    The rows of a batch are random draws, so each block is a random sub-batch: the pairing is
    the minibatch OT of ``block_size`` points. The blocks' costs come from one batched call; a
    block of at most ``SMALL_BLOCK`` points is solved by SciPy's exact assignment solver, a
    larger one by POT's network simplex: both find the permutation ``ot_permutation`` finds.
    Returns a function (x0, x1, labels=None) -> x0 re-ordered (unchecked, like an entry's ``pair``).
    """
    block_size = check_positive_int("block_size", block_size, maximum=MAX_OT_ROWS)

    def coupling(x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        n, full = len(x0), len(x0) - len(x0) % block_size
        a, b = x0.detach().cpu().double(), x1.detach().cpu().double()
        costs = [*torch.cdist(b[:full].view(-1, block_size, b.shape[1]), a[:full].view(-1, block_size, a.shape[1]))
                 .pow(2).numpy()] + ([torch.cdist(b[full:], a[full:]).pow(2).numpy()] if full < n else [])
        order = np.concatenate([start + _assignment(cost) for start, cost in zip(range(0, n, block_size), costs)])
        return x0[torch.from_numpy(order).to(x0.device)]

    coupling.__name__ = f"ot_block{block_size}"
    return coupling


def class_conditional_ot_coupling(x0: torch.Tensor, x1: torch.Tensor,
                                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """Exact OT computed separately inside each class, so no pair crosses a class.

    ``labels``: (B,) integer classes or (B, C) conditions of x1 (rows equal = same class).
    Plain minibatch OT would pair a point of one class with noise "meant" for another, which
    hurts conditional models.
    """
    return _class_ot(x0, x1, _check_batches(x0, x1, labels, max_rows=MAX_OT_ROWS))


def _class_ot(x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    if labels is None:
        return _minibatch_ot(x0, x1)
    labels = labels.to(x0.device)
    keys = labels if labels.dim() == 1 else labels.float().argmax(dim=1)
    paired = x0.clone()
    for key in torch.unique(keys):
        rows = torch.nonzero(keys == key).squeeze(1)
        paired[rows] = x0[rows][ot_permutation(x0[rows], x1[rows])]
    return paired


@dataclass(frozen=True)
class Coupling:
    """One entry of ``COUPLINGS``: name, a label for legends and widgets, and ``pair(x0, x1, labels)``
    -> x0 re-ordered (B, D), called on a trainer's own batches without checks."""

    name: str
    label: str
    pair: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


COUPLINGS: dict[str, Coupling] = {}


def register_coupling(coupling: Coupling) -> Coupling:
    """Add ``coupling`` to ``COUPLINGS`` (replacing one of the same name) and return it."""
    check_entry("coupling", coupling, Coupling)
    check_callable("coupling.pair", coupling.pair, "pair(x0, x1, labels)")
    COUPLINGS[coupling.name] = coupling
    return coupling


register_coupling(Coupling("independent", "independent", _independent))
register_coupling(Coupling("ot", "minibatch OT", _minibatch_ot))
for _size in (64, 128, 256):
    register_coupling(Coupling(f"ot_block{_size}", f"OT in blocks of {_size}", blockwise_ot_coupling(_size)))
register_coupling(Coupling("class_ot", "OT within each class", _class_ot))


def get_coupling(coupling) -> Callable:
    """What a trainer calls every step: the unchecked ``pair`` of the entry named ``coupling`` (a key
    of ``COUPLINGS``), or a callable as it is."""
    if callable(coupling):
        return coupling
    return COUPLINGS[check_choice("coupling", coupling, tuple(COUPLINGS))].pair
