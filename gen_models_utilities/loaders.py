"""Mini-batches of data: the chapter's DataLoaders and a fast in-memory sampler for training."""
from __future__ import annotations

import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset

from ._checks import (MAX_SAMPLES, MAX_WIDTH, as_conditions, as_labels, as_points, check_device, check_flag,
                      check_positive_int, make_generator)
from .models import class_code


def _loader(tensors, batch_size, shuffle: bool, seed, generator) -> DataLoader:
    """A DataLoader that keeps the last, smaller batch, so any non-empty data yields batches."""
    batch_size = check_positive_int("batch_size", batch_size, maximum=MAX_SAMPLES)
    shuffle = check_flag("shuffle", shuffle)
    generator = make_generator(seed, generator)
    n_points = tensors[0].shape[0]
    if n_points < batch_size:
        warnings.warn(f"batch_size={batch_size} is larger than the {n_points} points; "
                      f"each epoch yields one batch of {n_points}", stacklevel=3)
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle,
                      drop_last=False, generator=generator)


def make_loader(data, batch_size: int = 1000, shuffle: bool = True, seed=None,
                generator: torch.Generator | None = None) -> DataLoader:
    """DataLoader over points; each batch is a 1-tuple ``(x1,)`` with x1: float32 (B, 2).

    ``seed`` or ``generator`` fix the shuffling without touching the global random state.
    """
    return _loader((as_points("data", data),), batch_size, shuffle, seed, generator)


def make_conditional_loader_onehot(data, labels, batch_size: int = 128, n_classes: int = 8,
                                   shuffle: bool = True, seed=None,
                                   generator: torch.Generator | None = None) -> DataLoader:
    """DataLoader of ``(x1, c)``: x1 float32 (B, 2), c float32 one-hot (B, n_classes)."""
    points = as_points("data", data)
    n_classes = check_positive_int("n_classes", n_classes, maximum=MAX_WIDTH)
    codes = class_code(as_labels("labels", labels, len(points), n_classes), n_classes)
    return _loader((points, codes), batch_size, shuffle, seed, generator)


def radius_of(points: torch.Tensor) -> torch.Tensor:
    """Distance of each point from the origin: (N, 2) -> (N, 1)."""
    return points.norm(dim=1, keepdim=True)


def make_conditional_loader_radius(data, batch_size: int = 128, shuffle: bool = True, seed=None,
                                   generator: torch.Generator | None = None) -> DataLoader:
    """DataLoader of ``(x1, r)``: x1 float32 (B, 2), r float32 (B, 1) the distance of x1 from 0."""
    points = as_points("data", data)
    return _loader((points, radius_of(points)), batch_size, shuffle, seed, generator)


class RandomBatches:
    """Draws random mini-batches from tensors held in memory, with no DataLoader overhead.

    Each call to :meth:`sample` picks ``batch_size`` rows uniformly with replacement, the same
    rows from every tensor, so conditions stay aligned with their points.

    Args:
        points: (N, 2) data.
        batch_size: rows per batch, >= 1 (may exceed N).
        conditions: optional (N, C) tensor drawn alongside the points.
        generator, seed: a ``torch.Generator`` or a seed for reproducible batches (neither: the
            global torch generator).
    """

    def __init__(self, points, batch_size: int, conditions=None, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, seed=None):
        points = as_points("data", points)
        self.points = points.to(check_device("device", device) or points.device)
        self.batch_size = check_positive_int("batch_size", batch_size, maximum=MAX_SAMPLES)
        self.conditions = None if conditions is None else \
            as_conditions("conditions", conditions, len(points)).to(self.points.device)
        self.generator = make_generator(seed, generator)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch: x1 (B, 2) and its conditions (B, C), or None when there are none."""
        index = torch.randint(0, len(self.points), (self.batch_size,), generator=self.generator).to(self.points.device)
        return self.points[index], None if self.conditions is None else self.conditions[index]
