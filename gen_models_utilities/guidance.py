"""Classifier-free guidance for the one-hot conditional flow.

Train the conditional model with its label dropped (replaced by the all-zero code, the "null"
class) some of the time: ``training.train(..., condition_dropout=0.2)``. The one network then
knows two fields, the conditional v(x, t, c) and the unconditional v(x, t, 0). Sampling follows

    v_w = v_uncond + w (v_cond - v_uncond)

w = 0 is the unconditional model, w = 1 the conditional one, and w > 1 pushes further along the
direction that separates the class from the rest: samples crowd into the requested mode and,
for large w, overshoot it. ``widgets.guidance_explorer`` puts w on a slider.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._checks import MAX_SAMPLES, MAX_SEED, as_list, as_real_tensor, check_model, check_positive_int, check_real
from .data import RING_MODES, RING_STD
from .metrics import distance_to_nearest_mode
from .models import class_code
from .solvers import ODESolution, broadcast_condition, generate


class GuidedVelocity(nn.Module):
    """v_uncond + w (v_cond - v_uncond) for a one-hot model and a fixed condition.

    model: a one-hot model (``condition_kind == 'onehot'``) trained with condition dropout.
    condition: (C,), (1, C) or (B, C) one-hot codes. guidance_scale: w >= 0.
    Call as ``field(x, t)``, x: (B, D), t: (B, 1); both fields come from one batched pass.
    """

    condition_kind = None         # what the solvers' door reads: an unconditional velocity (its width: dim)
    condition_dim = 0

    def __init__(self, model: nn.Module, condition, guidance_scale: float):
        super().__init__()
        self.model = check_model(model, kinds=("onehot",))
        self.dim = getattr(model, "dim", 2)       # the width of the points: 2 on the ring, 64 for 8 x 8 digits
        code = as_real_tensor("condition", condition, allow_bool=True)
        self.condition = broadcast_condition(code, code.shape[0] if code.dim() == 2 else 1, model)
        self.guidance_scale = check_real("guidance_scale", guidance_scale, low=0.0)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        batch = x.shape[0]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(batch, 1)
        code = self.condition.to(x.device).expand(batch, -1)
        both = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([code, torch.zeros_like(code)]))
        v_cond, v_uncond = both[:batch], both[batch:]
        return v_uncond + self.guidance_scale * (v_cond - v_uncond)


def sample_guided(model: nn.Module, label: int, guidance_scale: float, n_samples: int = 500,
                  base: str = "gaussian", n_steps: int = 50, method: str = "euler", seed=None,
                  return_trajectory: bool = False) -> ODESolution:
    """Samples of class ``label`` with guidance scale w, by ``solvers.generate`` on the guided field."""
    n_classes = check_model(model, kinds=("onehot",)).condition_dim
    field = GuidedVelocity(model, class_code(check_positive_int("label", label, minimum=0, maximum=n_classes - 1),
                                             n_classes), guidance_scale)
    return generate(field, n_samples, base=base, n_steps=n_steps, method=method, seed=seed,
                    return_trajectory=return_trajectory)


def requested_mode_fraction(samples, label: int, n_std: float = 3.0) -> float:
    """Fraction of samples (N, 2) within ``n_std`` ring std of the centre of mode ``label``."""
    label = check_positive_int("label", label, minimum=0, maximum=RING_MODES - 1)
    distance, nearest = distance_to_nearest_mode(samples)
    return float(np.mean((nearest == label) & (distance <= check_real("n_std", n_std, low=0.0) * RING_STD)))


def guidance_sweep(model: nn.Module, scales=(0.0, 1.0, 3.0), n_samples: int = 400, base: str = "gaussian",
                   n_steps: int = 50, seed: int = 0) -> dict:
    """Mean fraction of samples in the requested mode over all classes, for each w: {w: fraction}."""
    n_classes = check_model(model, kinds=("onehot",)).condition_dim
    n_samples = check_positive_int("n_samples", n_samples, minimum=n_classes, maximum=MAX_SAMPLES)
    scales = [check_real("scales entry", w, low=0.0) for w in as_list("scales", scales, "guidance scales")]
    check_positive_int("seed", seed, minimum=0, maximum=MAX_SEED - n_classes)      # seed + label seeds each class
    result = {}
    for w in scales:
        hits = [requested_mode_fraction(sample_guided(model, label, w, n_samples // n_classes, base, n_steps,
                                                      seed=seed + label).x, label)
                for label in range(n_classes)]
        result[float(w)] = float(np.mean(hits))
    return result
