"""Reproducibility: one call seeds every global random number generator."""
from __future__ import annotations

import random

import numpy as np
import torch

from ._checks import MAX_SEED, check_positive_int


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device) with ``seed``."""
    seed = check_positive_int("seed", seed, minimum=0, maximum=MAX_SEED)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
