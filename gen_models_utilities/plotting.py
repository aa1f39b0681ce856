"""Plots of the suite. Each function draws into ``ax`` (a new figure when None) and returns
the Figure; limits are fixed and the aspect kept square without ``axis('equal')``."""
from __future__ import annotations

import numpy as np
import torch

from ._checks import (_short, as_points, as_real_tensor, as_trajectory, check_choice, check_model, check_positive_int,
                      check_real)
from .models import call_model
from .solvers import broadcast_condition

LIMIT = 5.5                    # plots span [-LIMIT, LIMIT]^2: the ring (radius 3) and the logo
CLASS_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def new_axes(ax=None, size: float | tuple = 5.0):
    """(figure, axes): the given axes and its figure, or a new figure of ``size`` inches.

    ``size`` is the side of a square figure or a (width, height) pair. A new figure gets
    margins that fit the tick labels, axis labels and title (see ``fit_margins``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {_short(ax)}")
        return ax.figure, ax
    width, height = (size, size) if np.isscalar(size) else size
    fig, ax = plt.subplots(figsize=(width, height))
    fit_margins(fig)
    return fig, ax


def fit_margins(fig, left: float = 4.9, bottom: float = 3.7, right: float = 1.0, top: float = 2.2) -> None:
    """Set a one-axes figure's margins, measured in font sizes (rcParams['font.size']).

    Fixed margins cost nothing at draw time, unlike ``tight_layout``, a crop to the tight box
    or ``figure.autolayout``, each of which lays the figure out again on every draw. The
    defaults fit this suite's labels (two-digit tick labels, a title) in every seaborn context.
    """
    import matplotlib

    font = matplotlib.rcParams["font.size"] / 72                # inches
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left * font / width, right=1 - right * font / width,
                        bottom=bottom * font / height, top=1 - top * font / height)


def square_axes(ax, title: str | None = None, limit: float = LIMIT) -> None:
    """Fixed square limits, equal aspect, labelled axes (no axis('equal') warnings)."""
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("$x^{(1)}$")
    ax.set_ylabel("$x^{(2)}$")
    if title:
        ax.set_title(title)


def class_color(label: int) -> str:
    """The colour of class ``label`` in every plot of the suite."""
    return CLASS_COLORS[int(label) % len(CLASS_COLORS)]


def _array(name: str, points) -> np.ndarray:
    return as_points(name, points).detach().cpu().numpy()


def _dots(ax, points: np.ndarray, size: float, color, alpha: float, label: str | None = None):
    """Same-size dots (N, 2), drawn as one marker path: several times faster to render than scatter.

    Returns the Line2D, whose ``set_data`` moves the dots (animations)."""
    (line,) = ax.plot(points[:, 0], points[:, 1], linestyle="none", marker="o", markersize=size,
                      markeredgewidth=0, color=color, alpha=alpha, label=label)
    return line


def plot_samples(samples, data=None, ax=None, title: str | None = None, base=None, color: str = "tab:red"):
    """Generated samples (N, 2) over the data (grey) and, optionally, base samples (light)."""
    fig, ax = new_axes(ax)
    if base is not None:
        _dots(ax, _array("base", base), 1.8, "lightsteelblue", 0.4, "base $p_0$")
    if data is not None:
        _dots(ax, _array("data", data), 1.8, "0.6", 0.4, "data $p_1$")
    _dots(ax, _array("samples", samples), 2.0, color, 0.7, "generated")
    square_axes(ax, title)
    ax.legend(loc="upper right", fontsize="small", markerscale=3)
    return fig


def plot_pairs(x0, x1, n_lines: int = 12, ax=None, title: str | None = None):
    """Base samples x0, data x1 (both (N, 2)) and the straight lines joining the first pairs."""
    a, b = _array("x0", x0), _array("x1", x1)
    if len(a) != len(b):
        raise ValueError(f"x0 and x1 must have the same length, got {len(a)} and {len(b)}")
    n_lines = min(check_positive_int("n_lines", n_lines), len(a))
    fig, ax = new_axes(ax)
    ax.scatter(a[:, 0], a[:, 1], s=4, alpha=0.25, color="tab:blue", label="base $x_0$")
    ax.scatter(b[:, 0], b[:, 1], s=4, alpha=0.25, color="tab:red", label="data $x_1$")
    for i in range(n_lines):
        ax.plot([a[i, 0], b[i, 0]], [a[i, 1], b[i, 1]], "--", color="0.3", lw=1)
    square_axes(ax, title)
    ax.legend(loc="upper right", fontsize="small", markerscale=3)
    return fig


def plot_loss(losses, ax=None, window: int = 50, title: str = "training loss", floors: dict | None = None):
    """Per-step losses (light) and their running mean over ``window`` steps.

    ``floors`` {label: value}: horizontal dashed lines, e.g. the exact loss floor."""
    values = as_real_tensor("losses", losses).double().numpy(force=True)
    if values.ndim != 1:
        raise ValueError(f"losses must be a sequence of numbers (1-D), got shape {values.shape}")
    window = check_positive_int("window", window)
    fig, ax = new_axes(ax, size=(6, 3))
    ax.plot(values, color="tab:blue", alpha=0.25, lw=0.8, label="per step")
    if len(values) >= window:
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(values)), smooth, color="tab:blue", label=f"mean of {window}")
    for (label, value), color in zip(_labelled_values("floors", floors), ("black", "tab:green", "tab:purple")):
        ax.axhline(value, color=color, ls="--", lw=1, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("MSE loss")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def velocity_on_grid(model, t: float, condition=None, n_grid: int = 20, limit: float = LIMIT):
    """The model's velocity on an n_grid x n_grid grid: xx, yy (n, n) and u, v (n, n) arrays."""
    t = check_real("t", t, low=0.0, high=1.0)
    n_grid = check_positive_int("n_grid", n_grid, minimum=2, maximum=1000)
    limit = check_real("limit", limit, low=0.0, low_open=True)
    check_model(model, dim=2)
    if isinstance(model, torch.nn.Module):
        if next(model.parameters(), None) is None:
            raise TypeError(f"model must be a torch.nn.Module with weights, got {_short(model)}")
        device = next(model.parameters()).device
        model.eval()
    elif callable(model):                  # an exact field such as marginal_field.RingMarginalField
        device = torch.device("cpu")
    else:
        raise TypeError(f"model must be a torch.nn.Module with weights or a field(x, t), got {_short(model)}")
    axis = np.linspace(-limit, limit, n_grid)
    xx, yy = np.meshgrid(axis, axis)
    grid = torch.tensor(np.stack([xx.ravel(), yy.ravel()], axis=1), dtype=torch.float32, device=device)
    with torch.no_grad():
        times = torch.full((len(grid), 1), t, device=device)
        cond = broadcast_condition(condition, len(grid), model)
        v = call_model(model, grid, times, None if cond is None else cond.to(device)).cpu().numpy()
    return xx, yy, v[:, 0].reshape(xx.shape), v[:, 1].reshape(xx.shape)


def plot_velocity_field(model, t: float, ax=None, kind: str = "quiver", condition=None, data=None,
                        base=None, n_grid: int = 20, title: str | None = None, density: float = 0.9,
                        width: float = 0.004, grid=None):
    """The learned field at time ``t`` as arrows ('quiver') or streamlines ('stream').

    ``model`` is put in eval mode here (the model drawn, not another one); an exact field
    ``field(x, t)`` (``marginal_field.RingMarginalField``) is drawn the same way. ``density`` sets
    how closely streamlines are packed (matplotlib's streamplot density; 'stream' only);
    ``width`` the arrows' shaft width as a fraction of the plot width ('quiver' only). ``grid``:
    the field already evaluated, ``velocity_on_grid(model, t, condition, n_grid)``, drawn as is.
    """
    check_choice("kind", kind, ("quiver", "stream"))
    t = check_real("t", t, low=0.0, high=1.0)
    density = check_real("density", density, low=0.05, high=5.0)
    width = check_real("width", width, low=0.0, high=0.1, low_open=True)
    if grid is not None and not (isinstance(grid, (tuple, list)) and len(grid) == 4
                                 and len({np.shape(part) for part in grid}) == 1):
        raise ValueError(f"grid must be the four arrays (xx, yy, u, v) of velocity_on_grid, got {_short(grid)}")
    xx, yy, u, v = grid if grid is not None else velocity_on_grid(model, t, condition, n_grid)   # before a figure
    fig, ax = new_axes(ax)
    if base is not None:
        b = _array("base", base)
        ax.scatter(b[:, 0], b[:, 1], s=3, color="lightsteelblue", alpha=0.35)
    if data is not None:
        d = _array("data", data)
        ax.scatter(d[:, 0], d[:, 1], s=3, color="tab:red", alpha=0.25)
    if kind == "quiver":
        ax.quiver(xx, yy, u, v, color="tab:blue", alpha=0.8, width=width)
    else:
        speed = np.hypot(u, v)
        stream = ax.streamplot(xx, yy, u, v, color="tab:blue", density=density, num_arrows=0,
                               linewidth=0.4 + 1.6 * speed / max(float(speed.max()), 1e-9))
        _arrowheads_on_streamlines(ax, stream.lines.get_segments(), color="tab:blue")
    square_axes(ax, title if title is not None else f"velocity at t = {t:.2f}")
    return fig


def _arrowheads_on_streamlines(ax, segments: list, color: str) -> None:
    """One arrowhead at the middle of each streamline, all drawn as a single quiver.

    ``segments`` are a streamplot's line pieces, each (k, 2), consecutive along each streamline.
    matplotlib's own arrows are one FancyArrowPatch each and make a figure of eight stream
    plots several times slower to lay out and render.
    """
    if not segments:
        return
    starts = np.array([piece[0] for piece in segments])
    ends = np.array([piece[-1] for piece in segments])
    new_line = np.ones(len(segments), dtype=bool)
    new_line[1:] = np.any(starts[1:] != ends[:-1], axis=1)      # a piece not continuing the last one
    first = np.flatnonzero(new_line)
    lengths = np.diff(np.append(first, len(segments)))
    middle = first + lengths // 2
    position = (starts[middle] + ends[middle]) / 2
    direction = ends[middle] - starts[middle]
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    arrow = 0.11 * direction                                        # arrows 0.11 inch long
    ax.quiver(position[:, 0], position[:, 1], arrow[:, 0], arrow[:, 1], color=color, angles="xy",
              pivot="mid", units="inches", scale_units="inches", scale=1, width=0.018, headwidth=4.5,
              headlength=5, headaxislength=4.5)


def plot_trajectories(trajectory, ax=None, n_paths: int = 100, data=None, title: str | None = None,
                      color: str = "tab:blue", label: str | None = None):
    """Paths of the first ``n_paths`` particles from a (S + 1, B, 2) trajectory.

    ``color`` and ``label`` name the paths, so two sets can share one axes."""
    path = as_trajectory("trajectory", trajectory, dim=2).numpy()
    n_paths = min(check_positive_int("n_paths", n_paths), path.shape[1])
    fig, ax = new_axes(ax)
    if data is not None:
        d = _array("data", data)
        ax.scatter(d[:, 0], d[:, 1], s=3, color="0.7", alpha=0.4)
    lines = ax.plot(path[:, :n_paths, 0], path[:, :n_paths, 1], color=color, lw=0.6, alpha=0.6)
    if label is not None:
        lines[0].set_label(label)
    first = "start" not in {artist.get_label() for artist in ax.collections}     # label start/end once per axes
    ax.scatter(path[0, :n_paths, 0], path[0, :n_paths, 1], s=6, color="tab:blue", label="start" if first else None)
    ax.scatter(path[-1, :n_paths, 0], path[-1, :n_paths, 1], s=6, color="tab:red", label="end" if first else None)
    square_axes(ax, title)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def plot_conditional_samples_discrete(samples_by_label: dict, real_data=None, real_labels=None,
                                      title: str | None = None, ax=None, legend: bool = True):
    """Samples generated per class, each in its class colour, over the real data (faint, same colours).

    Args:
        samples_by_label: {class index: (n, 2) samples generated for that class}.
        real_data: (N, 2) data; real_labels: (N,) its classes.
        legend: name each class in a legend (an explorer of one class says it in the title).
    """
    if not isinstance(samples_by_label, dict) or not samples_by_label:
        raise TypeError("samples_by_label must be a non-empty dict {label: (n, 2) samples}")
    fig, ax = new_axes(ax, 6)
    if real_data is not None:
        d = _array("real_data", real_data)
        labels = (np.zeros(len(d), dtype=int) if real_labels is None
                  else as_real_tensor("real_labels", real_labels).numpy(force=True))
        if labels.shape != (len(d),):
            raise ValueError(f"real_labels must have shape ({len(d)},), got {labels.shape}")
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise ValueError("real_labels must hold whole-number class indices")
        ax.scatter(d[:, 0], d[:, 1], s=4, alpha=0.12, c=[class_color(k) for k in labels])
    for label in samples_by_label:
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise TypeError(f"samples_by_label keys must be integer class indices, got {_short(label)}")
    for label, samples in samples_by_label.items():
        s = _array(f"samples_by_label[{label}]", samples)
        ax.scatter(s[:, 0], s[:, 1], s=10, color=class_color(label), edgecolors="black",
                   linewidths=0.3, alpha=0.9, label=f"class {label}")
    square_axes(ax, title)
    if legend:
        ax.legend(loc="center", fontsize="x-small", ncol=2, markerscale=1.2, framealpha=0.6)
    return fig


def plot_conditional_samples_continuous(samples_by_value: dict, real_data=None, title: str | None = None,
                                        trained_range=None, ax=None, legend: bool = True):
    """Samples generated per radius, coloured by the radius, with a circle at each requested radius.

    ``trained_range`` (low, high): radii outside it are labelled "extrapolation" and drawn with
    hollow markers and a dashed circle, so nobody mistakes them for what the model learned.
    ``legend``: name each radius in a legend (an explorer of one radius says it in the title).
    """
    import matplotlib as mpl

    if not isinstance(samples_by_value, dict) or not samples_by_value:
        raise TypeError("samples_by_value must be a non-empty dict {value: (n, 2) samples}")
    fig, ax = new_axes(ax, 6)
    if real_data is not None:
        d = _array("real_data", real_data)
        ax.scatter(d[:, 0], d[:, 1], s=3, color="0.7", alpha=0.3)
    values = [check_real("samples_by_value keys", v, low=-1e6, high=1e6) for v in samples_by_value]
    if trained_range is not None:
        trained_range = as_real_tensor("trained_range", trained_range).double().numpy(force=True)
        if trained_range.shape != (2,):
            raise ValueError(f"trained_range must be (low, high), got shape {trained_range.shape}")
        if np.isnan(trained_range).any():
            trained_range = None          # an untrained model's range is unknown
    norm = mpl.colors.Normalize(min(values), max(values) if max(values) > min(values) else min(values) + 1)
    cmap = mpl.colormaps["viridis"]
    angle = np.linspace(0, 2 * np.pi, 200)
    for value, samples in samples_by_value.items():
        s = _array(f"samples_by_value[{value}]", samples)
        color = cmap(norm(float(value)))
        outside = trained_range is not None and not (trained_range[0] <= float(value) <= trained_range[1])
        label = f"r = {float(value):.2f}" + (" (extrapolation)" if outside else "")
        ax.scatter(s[:, 0], s[:, 1], s=10, label=label, alpha=0.8,
                   facecolors="none" if outside else [color], edgecolors=[color])
        ax.plot(value * np.cos(angle), value * np.sin(angle), "--" if outside else "-", color=color, lw=0.8)
    square_axes(ax, title)
    if legend:
        ax.legend(loc="upper right", fontsize="x-small")
    return fig


def _labelled_values(name: str, values: dict | None) -> list[tuple[str, float]]:
    """{label: number} as a checked list of (label, float)."""
    if values is None:
        return []
    if not isinstance(values, dict):
        raise TypeError(f"{name} must be a dict {{label: number}} or None, got {_short(values)}")
    return [(str(label), check_real(f"{name}[{label!r}]", value)) for label, value in values.items()]


def plot_pair_velocities(point, velocities, arrows: dict, ax=None, scale: float = 0.5, n_shown: int = 200,
                         span: float = 2.5, title: str | None = None):
    """Per-pair velocities x1 - x0 of pairs passing near ``point`` and a few summary arrows.

    Args:
        point: (2,) where the pairs pass at time t.
        velocities: (N, 2) their per-pair velocities; the first ``n_shown`` are drawn as thin
            grey arrows from ``point``.
        arrows: {label: (2,) velocity}, each drawn as a thick arrow from ``point`` (at most 4).
        scale: every arrow is drawn ``scale`` times its velocity long.
        span: the axes show ``point`` +- ``span``.
    """
    where = as_real_tensor("point", point).double().reshape(-1).numpy(force=True)
    if where.shape != (2,):
        raise ValueError(f"point must hold 2 numbers, got shape {where.shape}")
    fan = _array("velocities", velocities)[:check_positive_int("n_shown", n_shown)]
    if not isinstance(arrows, dict) or not 1 <= len(arrows) <= 4:
        raise TypeError(f"arrows must be a dict of 1 to 4 {{label: (2,) velocity}}, got {_short(arrows)}")
    scale = check_real("scale", scale, low=0.0, low_open=True)
    span = check_real("span", span, low=0.0, low_open=True)
    fig, ax = new_axes(ax)
    ax.quiver(np.full(len(fan), where[0]), np.full(len(fan), where[1]), scale * fan[:, 0], scale * fan[:, 1],
              angles="xy", scale_units="xy", scale=1, color="0.55", alpha=0.35, width=0.003,
              label=f"{len(fan)} per-pair velocities")
    for (label, velocity), color, width in zip(arrows.items(), ("black", "tab:red", "tab:green", "tab:purple"),
                                               (0.022, 0.014, 0.007, 0.004)):    # narrower on top: all stay visible
        v = as_real_tensor(f"arrows[{label!r}]", velocity).double().reshape(-1).numpy(force=True)
        if v.shape != (2,):
            raise ValueError(f"arrows[{label!r}] must hold 2 numbers, got shape {v.shape}")
        ax.quiver(where[0], where[1], scale * v[0], scale * v[1], angles="xy", scale_units="xy", scale=1,
                  color=color, width=width, label=label)
    ax.plot(*where, "o", color="black", markersize=5)
    square_axes(ax, title)
    ax.set_xlim(where[0] - span, where[0] + span)
    ax.set_ylim(where[1] - span, where[1] + span)
    ax.legend(loc="lower left", fontsize="x-small")
    return fig


def plot_loss_floor(times, floor, losses: dict | None = None, ax=None, title: str = "loss at each time t"):
    """The exact loss floor against t (a line) and models' losses at some times (markers).

    Args:
        times, floor: (T,) times in [0, 1] and the floor at each.
        losses: {label: (times (M,), losses (M,))} measured per t, e.g. for a model.
    """
    t = as_real_tensor("times", times).double().reshape(-1).numpy(force=True)
    f = as_real_tensor("floor", floor).double().reshape(-1).numpy(force=True)
    if t.shape != f.shape:
        raise ValueError(f"times and floor must have the same length, got {len(t)} and {len(f)}")
    fig, ax = new_axes(ax, size=(6, 3.4))
    ax.plot(t, f, color="black", lw=1.5, label="exact floor (no model does better in expectation)")
    for (label, (at, value)), marker in zip((losses or {}).items(), "osD^v"):
        at = as_real_tensor(f"losses[{label!r}] times", at).double().reshape(-1).numpy(force=True)
        value = as_real_tensor(f"losses[{label!r}] values", value).double().reshape(-1).numpy(force=True)
        if at.shape != value.shape:
            raise ValueError(f"losses[{label!r}] needs as many times as values, got {len(at)} and {len(value)}")
        ax.plot(at, value, marker=marker, linestyle="none", markersize=5, label=label)
    ax.set_xlabel("time t")
    ax.set_ylabel("MSE loss at t")
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="x-small")
    return fig


def plot_field_error(model, field, t: float, ax=None, points=None, n_grid: int = 41, vmax: float | None = None,
                     title: str | None = None):
    """Heat map of |model(x, t) - field(x, t)|: where a learned field departs from an exact one.

    ``points`` (N, 2), e.g. samples of x_t, are drawn on top, to show where the error matters.
    ``vmax`` fixes the colour scale (share it between panels). Returns the Figure.
    """
    check_model(field, "field", dim=2)
    xx, yy, u, v = velocity_on_grid(model, t, n_grid=n_grid)
    _, _, u_exact, v_exact = velocity_on_grid(field, t, n_grid=n_grid)
    error = np.hypot(u - u_exact, v - v_exact)
    if vmax is not None:
        vmax = check_real("vmax", vmax, low=0.0, low_open=True)
    fig, ax = new_axes(ax)
    mesh = ax.pcolormesh(xx, yy, error, cmap="magma", vmin=0.0, vmax=vmax, shading="nearest")
    if points is not None:
        d = _array("points", points)
        ax.plot(d[:, 0], d[:, 1], linestyle="none", marker="o", markersize=1.2, markeredgewidth=0,
                color="tab:cyan", alpha=0.5)
    square_axes(ax, title if title is not None else f"|v_theta - u_t| at t = {t:.2f}")
    fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.03)
    return fig
