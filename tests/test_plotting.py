"""The chapter's plot helpers (gen_models_utilities.plotting): what they draw, and what they refuse."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from gen_models_utilities import plotting  # noqa: E402
from gen_models_utilities.marginal_field import RingMarginalField  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


class ShiftedField(nn.Module):
    """The exact field plus a constant velocity: a 'learned' model whose error is known."""

    def __init__(self, shift):
        super().__init__()
        self.shift = nn.Parameter(torch.tensor(shift, dtype=torch.float32))
        self.exact = RingMarginalField()

    def forward(self, x, t):
        return self.exact(x, t) + self.shift


def test_velocity_on_grid_takes_an_exact_field():
    field = RingMarginalField()
    xx, yy, u, v = plotting.velocity_on_grid(field, 0.0, n_grid=5)
    assert np.allclose(u, -xx, atol=1e-6) and np.allclose(v, -yy, atol=1e-6)      # u_0(x) = -x
    _, _, u, v = plotting.velocity_on_grid(field, 1.0, n_grid=5)
    assert np.allclose(u, xx, atol=1e-6) and np.allclose(v, yy, atol=1e-6)        # u_1(x) = x
    with pytest.raises(TypeError, match="model"):
        plotting.velocity_on_grid("not a field", 0.5)
    with pytest.raises(TypeError, match="with weights"):
        plotting.velocity_on_grid(nn.Sequential(), 0.5)


@pytest.mark.parametrize("shift, expected", [((0.0, 0.0), 0.0), ((3.0, 4.0), 5.0)])
def test_field_error_maps_the_distance_between_the_fields(shift, expected):
    fig = plotting.plot_field_error(ShiftedField(shift), RingMarginalField(), 0.5, n_grid=7,
                                    points=torch.zeros(10, 2))
    mesh = fig.axes[0].collections[0]
    assert np.allclose(np.asarray(mesh.get_array()), expected, atol=1e-5)
    assert len(fig.axes) == 2                                            # the map and its colour bar


def test_field_error_refuses_a_bad_scale():
    with pytest.raises(ValueError, match="vmax"):
        plotting.plot_field_error(ShiftedField((0.0, 0.0)), RingMarginalField(), 0.5, n_grid=5, vmax=-1.0)


def test_pair_velocities_draws_the_fan_and_each_summary_arrow():
    point, fan = torch.tensor([1.0, 0.5]), torch.randn(300, 2)
    arrows = {"mean": fan.mean(dim=0), "exact": torch.tensor([2.0, 0.0])}
    fig = plotting.plot_pair_velocities(point, fan, arrows, n_shown=50, span=2.0)
    ax = fig.axes[0]
    quivers = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert len(quivers) == 1 + len(arrows)
    assert len(quivers[0].U) == 50                                       # only n_shown pairs drawn
    assert quivers[2].U[0] == pytest.approx(0.5 * 2.0)                  # drawn scale (0.5) times the velocity
    assert ax.get_xlim() == pytest.approx((-1.0, 3.0)) and ax.get_ylim() == pytest.approx((-1.5, 2.5))
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["50 per-pair velocities", "mean", "exact"]


@pytest.mark.parametrize("point, arrows, error", [
    (torch.zeros(3), {"a": torch.zeros(2)}, ValueError),                # a point in 3-D
    (torch.zeros(2), {}, TypeError),                                    # no summary arrow
    (torch.zeros(2), [torch.zeros(2)], TypeError),                      # not a dict
    (torch.zeros(2), {"a": torch.zeros(3)}, ValueError),                # a 3-D arrow
])
def test_pair_velocities_refuses_bad_input(point, arrows, error):
    with pytest.raises(error):
        plotting.plot_pair_velocities(point, torch.randn(10, 2), arrows)


def test_loss_floor_draws_the_curve_and_the_models():
    times = np.linspace(0, 1, 5)
    fig = plotting.plot_loss_floor(times, times + 1, {"model": ([0.5], [2.0]), "other": ([0.2, 0.8], [1.0, 3.0])})
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    assert np.allclose(lines[0].get_ydata(), times + 1)
    assert np.allclose(lines[2].get_xdata(), [0.2, 0.8]) and lines[2].get_linestyle() == "None"


@pytest.mark.parametrize("floor, losses", [(np.ones(4), None), (np.ones(5), {"m": ([0.1, 0.2], [1.0])})])
def test_loss_floor_refuses_mismatched_lengths(floor, losses):
    with pytest.raises(ValueError, match="same length|as many"):
        plotting.plot_loss_floor(np.linspace(0, 1, 5), floor, losses)


def test_loss_draws_floors_as_labelled_lines():
    fig = plotting.plot_loss(np.linspace(5, 3, 100), window=10, floors={"floor A": 2.8, "floor B": 2.7})
    ax = fig.axes[0]
    flat = [line for line in ax.get_lines() if np.ptp(line.get_ydata()) == 0]
    assert sorted(line.get_ydata()[0] for line in flat) == [2.7, 2.8]
    assert {"floor A", "floor B"} <= {text.get_text() for text in ax.get_legend().get_texts()}
    with pytest.raises(TypeError, match="floors"):
        plotting.plot_loss(np.ones(10), floors=[2.8])
    with pytest.raises(ValueError, match="floors"):
        plotting.plot_loss(np.ones(10), floors={"bad": float("nan")})


def test_two_sets_of_trajectories_share_one_axes():
    path = torch.cumsum(torch.randn(11, 20, 2) * 0.1, dim=0)
    ax = plotting.plot_trajectories(path, n_paths=5, color="black", label="exact").axes[0]
    plotting.plot_trajectories(path + 0.1, ax=ax, n_paths=5, color="tab:cyan", label="learned")
    labels = [handle.get_label() for handle in ax.get_legend_handles_labels()[0]]
    assert labels.count("start") == 1 and labels.count("end") == 1
    assert "exact" in labels and "learned" in labels
    assert matplotlib.colors.same_color(ax.get_lines()[0].get_color(), "black")
    assert matplotlib.colors.same_color(ax.get_lines()[-1].get_color(), "tab:cyan")
