"""Small inline animations (a few frames at low resolution, so notebooks stay light)."""
from __future__ import annotations

import numpy as np

from ._checks import as_real_tensor, as_trajectory, check_positive_int
from .plotting import _dots, square_axes, velocity_on_grid


MAX_FRAMES = 500               # frames of one animation (the notebooks show about a dozen)


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

    path = as_trajectory("trajectory", trajectory, dim=2).numpy()
    n_frames = check_positive_int("n_frames", n_frames, maximum=MAX_FRAMES)
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

    n_frames = check_positive_int("n_frames", n_frames, maximum=MAX_FRAMES)
    times = np.linspace(0, 1, n_frames) if times is None else \
        as_real_tensor("times", times).double().reshape(-1).numpy(force=True)
    if len(times) == 0 or not (np.all(times >= 0) and np.all(times <= 1)):
        raise ValueError(f"times must be at least one time in [0, 1], got "
                         f"{f'values from {times.min()} to {times.max()}' if len(times) else 'none'}")
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
