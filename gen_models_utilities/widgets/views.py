"""What a trained network did, as the explorers send it to the browser: small typed arrays.

A *learned view* is what the browser cannot compute: the paths of a trained model (or its field
on a grid) for one setting of the controls. Points travel as integers, decoded in explorer.js:

* fine points (start and end points, the data): int16, value = integer / FINE_SCALE (1/2048 apart,
  within +-16);
* coarse points (a path's points between start and end): int8, value = integer / COARSE_SCALE
  (0.043 apart, clipped to the plotted square [-LIMIT, LIMIT]);
* arrows: int8 scaled by the grid's largest component.

A path view keeps every particle's end point, and the points between start and end of the first
``tracked`` particles only (those whose paths the explorer draws): every solver step up to
``max_middle + 1`` steps, else ``max_middle`` steps spread evenly; the browser draws straight lines
between the points it has.
"""
from __future__ import annotations

import numpy as np
import torch

from ..plotting import LIMIT, velocity_on_grid
from ..solvers import solve_ode

FINE_SCALE = 2048.0
COARSE_SCALE = 127.0 / LIMIT
MAX_MIDDLE = 7                  # path points kept between start and end (a multiple of 8 steps: every 1/8 of t)
TRACKED = 40                    # particles whose points between start and end are kept


def _numpy(points) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    return np.asarray(points, dtype=np.float64)


def fine(points) -> bytes:
    """(..., 2) points as little-endian int16 bytes, 1/FINE_SCALE apart."""
    return np.clip(np.rint(_numpy(points) * FINE_SCALE), -32767, 32767).astype("<i2").tobytes()


def coarse(points) -> bytes:
    """(..., 2) points as int8 bytes, 1/COARSE_SCALE apart, clipped to [-LIMIT, LIMIT]."""
    return np.clip(np.rint(_numpy(points) * COARSE_SCALE), -127, 127).astype("i1").tobytes()


def unfine(raw: bytes) -> np.ndarray:
    """Inverse of ``fine``: (n, 2) float32."""
    return (np.frombuffer(raw, "<i2").astype(np.float32) / FINE_SCALE).reshape(-1, 2)


def on_fine_grid(points) -> torch.Tensor:
    """``points`` rounded as the browser will read them, so the kernel and the page start alike: (n, 2) float32."""
    return torch.from_numpy(unfine(fine(points)).copy())


def kept_steps(n_steps: int, max_middle: int = MAX_MIDDLE) -> list[int]:
    """The step indices a path view keeps: all of 0..n_steps, or 0, n_steps and max_middle between."""
    if n_steps <= max_middle + 1:
        return list(range(n_steps + 1))
    return sorted({int(round(n_steps * k / (max_middle + 1))) for k in range(max_middle + 2)})


def path_view(trajectory: torch.Tensor, max_middle: int = MAX_MIDDLE, tracked: int = TRACKED) -> dict:
    """A path view of a trajectory (S + 1, N, 2): the kept step indices, every end point, and the points
    in between of the first ``tracked`` particles.

    The start points are not stored (the browser has them: every view of a base starts from them).
    """
    n_steps = trajectory.shape[0] - 1
    kept = kept_steps(n_steps, max_middle)
    path = _numpy(trajectory)
    tracked = min(tracked, path.shape[1])
    return {"steps": n_steps, "times": kept, "tracked": tracked, "final": fine(path[-1]),
            "middle": coarse(path[kept[1:-1], :tracked])}


def read_path_view(view: dict, x0) -> tuple[np.ndarray, np.ndarray]:
    """What a path view holds, as the browser decodes it: the tracked particles' points at the kept
    times (len(times), tracked, 2) and every end point (N, 2), float32."""
    start = _numpy(x0).astype(np.float32)[:view["tracked"]]
    middle = (np.frombuffer(view["middle"], "i1").astype(np.float32) / COARSE_SCALE).reshape(-1, *start.shape)
    final = unfine(view["final"])
    return np.concatenate([start[None], middle, final[None, :view["tracked"]]]), final


def arrow_view(u, v) -> dict:
    """Arrows (u, v) on a grid, int8 relative to the largest component (``scale``)."""
    uv = np.stack([_numpy(u).ravel(), _numpy(v).ravel()], axis=1)
    scale = float(np.abs(uv).max()) or 1.0
    return {"scale": scale, "uv": np.rint(uv / scale * 127).astype("i1").tobytes()}


def read_arrow_view(view: dict) -> np.ndarray:
    """(n * n, 2) float32 velocities of an arrow view, as the browser decodes them."""
    return (np.frombuffer(view["uv"], "i1").astype(np.float32) * view["scale"] / 127).reshape(-1, 2)


def solved_paths(model, x0: torch.Tensor, n_steps: int, method: str, condition=None,
                 max_middle: int = MAX_MIDDLE, tracked: int = TRACKED) -> dict:
    """The path view of ``model`` from ``x0`` with ``method`` in ``n_steps`` steps."""
    solution = solve_ode(model, x0, n_steps=n_steps, method=method, condition=condition, return_trajectory=True)
    return path_view(solution.trajectory.cpu(), max_middle, tracked)


def grid_arrows(model, t: float, side: int, condition=None) -> dict:
    """The arrow view of ``model``'s field at time t on a side x side grid over [-LIMIT, LIMIT]^2."""
    _, _, u, v = velocity_on_grid(model, t, condition=condition, n_grid=side)
    return arrow_view(u, v)
