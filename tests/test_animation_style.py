"""Animations stay small and well-formed; the book style is applied only when asked."""
import matplotlib
import pytest
import torch

from gen_models_utilities import VelocityField, set_seed, use_book_style
from gen_models_utilities.animation import animate_particles, animate_velocity_field


def test_particle_animation_has_the_requested_frames():
    trajectory = torch.linspace(0, 1, 51)[:, None, None] * torch.ones(1, 30, 2)
    html = animate_particles(trajectory, n_frames=6).data
    assert html.count("data:image/png;base64") == 6
    assert len(html) < 300_000                                  # a light notebook output


def test_field_animation_and_bad_trajectory():
    torch.manual_seed(0)
    html = animate_velocity_field(VelocityField(hidden_dim=8), n_frames=3, n_grid=5).data
    assert html.count("data:image/png;base64") == 3
    with pytest.raises(ValueError, match="trajectory must have shape"):
        animate_particles(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="n_frames"):
        animate_particles(torch.zeros(2, 3, 2), n_frames=2.5)


def test_book_style_only_when_asked():
    before = matplotlib.rcParams["axes.grid"]
    import gen_models_utilities  # noqa: F401  (already imported: importing changes nothing)
    assert matplotlib.rcParams["axes.grid"] == before
    with matplotlib.rc_context():
        use_book_style("talk")
        assert matplotlib.rcParams["axes.grid"] is True
    with pytest.raises(ValueError, match="context must be one of"):
        use_book_style("huge")


@pytest.mark.parametrize("context", ["paper", "notebook", "talk", "poster"])
def test_book_style_matches_seaborn_context(context):
    seaborn = pytest.importorskip("seaborn")
    with matplotlib.rc_context():
        use_book_style(context)
        expected = seaborn.plotting_context(context)
        assert {key: matplotlib.rcParams[key] for key in expected} == pytest.approx(dict(expected))


def test_set_seed_repeats_draws_and_checks_its_argument():
    set_seed(3)
    a = torch.rand(3)
    set_seed(3)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="seed"):
        set_seed(-1)


@pytest.mark.parametrize("context", ["paper", "notebook"])
def test_new_figures_fit_their_labels_without_a_crop(context):
    """The inline backend shows these contexts uncropped: every label must lie inside the canvas."""
    import matplotlib.pyplot as plt
    import numpy as np

    from gen_models_utilities import create_ring_gaussians, plot_loss, plot_samples

    points, _ = create_ring_gaussians(200, seed=0)
    with matplotlib.rc_context():
        use_book_style(context)
        figures = [plot_samples(points, data=points, title="100 Euler steps from the gaussian base"),
                   plot_loss(np.linspace(5, 3, 300), title="flow matching loss, gaussian base")]
        for fig in figures:
            fig.canvas.draw()
            content = fig.get_tightbbox(fig.canvas.get_renderer())          # inches
            width, height = fig.get_size_inches()
            assert content.x0 >= 0 and content.y0 >= 0, (context, content)
            assert content.x1 <= width and content.y1 <= height, (context, content)
            plt.close(fig)
