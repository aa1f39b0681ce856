"""Small inline animations (a few frames at low resolution, so notebooks stay light)."""
from __future__ import annotations

import numpy as np
import torch

from ._checks import check_positive_int
from .plotting import _dots, square_axes, velocity_on_grid


def _frame_indices(n_available: int, n_frames: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_available - 1, min(n_frames, n_available)).round().astype(int))


def _bare_square_axes(ax, title: str | None = None) -> None:
    """The suite's square limits without ticks or axis labels: text dominates a frame's draw time."""
    square_axes(ax, title)
    ax.set(xticks=[], yticks=[], xlabel="", ylabel="")


def _to_html(fig, update, frames, interval: int):
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    animation = FuncAnimation(fig, update, frames=frames, interval=interval, repeat=False)
    html = animation.to_jshtml(default_mode="once")
    plt.close(fig)
    return HTML(html)


def animate_particles(trajectory, data=None, n_frames: int = 12, dpi: int = 50, size: float = 4.0,
                      title: str = "samples"):
    """Animate particles along a (S + 1, B, 2) trajectory over the data; returns an HTML object.

    The axes are drawn once; each frame only moves the particles and changes the title.
    """
    import matplotlib.pyplot as plt

    path = torch.as_tensor(trajectory).detach().cpu().numpy()
    if path.ndim != 3 or path.shape[2] != 2:
        raise ValueError(f"trajectory must have shape (S + 1, B, 2), got {path.shape}")
    n_frames = check_positive_int("n_frames", n_frames)
    fig, ax = plt.subplots(figsize=(size, size), dpi=dpi)
    if data is not None:
        _dots(ax, np.asarray(data), 1.4, "0.75", 0.5)
    particles = _dots(ax, path[0], 1.7, "tab:red", 0.8)
    _bare_square_axes(ax, title)
    steps = path.shape[0] - 1

    def update(frame):
        particles.set_data(path[frame, :, 0], path[frame, :, 1])
        ax.set_title(f"{title}: t = {frame / max(steps, 1):.2f}")

    return _to_html(fig, update, _frame_indices(path.shape[0], n_frames), interval=150)


def animate_velocity_field(model, times=None, data=None, condition=None, n_frames: int = 11,
                           dpi: int = 50, size: float = 4.0, n_grid: int = 15):
    """Animate the model's velocity field over t; returns an HTML object.

    The axes are drawn once; each frame only changes the arrows and the title.
    """
    import matplotlib.pyplot as plt

    times = np.linspace(0, 1, n_frames) if times is None else np.asarray(times, dtype=float)
    fig, ax = plt.subplots(figsize=(size, size), dpi=dpi)
    if data is not None:
        _dots(ax, np.asarray(data), 1.4, "tab:red", 0.25)
    xx, yy, u, v = velocity_on_grid(model, float(times[0]), condition, n_grid)
    arrows = ax.quiver(xx, yy, u, v, color="tab:blue", width=0.005)
    _bare_square_axes(ax)

    def update(i):
        _, _, u, v = velocity_on_grid(model, float(times[i]), condition, n_grid)
        arrows.set_UVC(u, v)
        ax.set_title(f"velocity at t = {times[i]:.2f}")

    return _to_html(fig, update, _frame_indices(len(times), n_frames), interval=200)
