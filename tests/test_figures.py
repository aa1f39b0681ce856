"""`make figures` (tools.export_figures): every key figure is written as a PNG, deterministically, with
figures closed."""
import matplotlib.pyplot as plt
import pytest
import torch

from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField,
                                  create_ring_gaussians, train)
from tools import export_figures as figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_models():
    """Models trained for a few steps: enough to draw every figure, quick to make."""
    points, labels = create_ring_gaussians(600, seed=0)
    models = {}
    for kind, model_class in [("fm", VelocityField), ("onehot", ConditionalVelocityField),
                              ("radius", ConditionalVelocityFieldRadius)]:
        torch.manual_seed(0)
        models[kind] = model_class()
        train(models[kind], points, n_steps=20, batch_size=64, seed=0, progress=False,
              labels=labels if kind == "onehot" else None)
    return models


@pytest.fixture(scope="module")
def drawn(tmp_path_factory, quick_models):
    """make_figures run once: (paths, rcParams before, rcParams after, figures left open)."""
    before = dict(plt.rcParams)
    paths = figures.make_figures(tmp_path_factory.mktemp("figures"), models=quick_models)
    return paths, before, dict(plt.rcParams), plt.get_fignums()


def test_every_figure_is_written_as_png(drawn):
    paths, _, _, left_open = drawn
    assert sorted(p.stem for p in paths) == sorted(figures.FIGURE_NAMES)
    for path in paths:
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE), path.name
        assert 5_000 < len(content) < 400_000, f"{path.name}: {len(content)} bytes"
    assert left_open == []


def test_plot_style_is_restored_after_drawing(drawn):
    _, before, after, _ = drawn
    assert after == before


def test_figures_are_identical_when_redrawn(tmp_path, drawn, quick_models):
    again = figures.make_figures(tmp_path, models=quick_models)
    for a, b in zip(drawn[0], again):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two runs"


def test_figures_follow_the_models(quick_models):
    torch.manual_seed(1)
    untrained = VelocityField()
    for draw in (figures.samples_figure, figures.field_figure):
        images = []
        for model in (quick_models["fm"], untrained):
            fig = draw(model)
            images.append(figures.figure_png(fig))
            plt.close(fig)
        assert images[0] != images[1], draw.__name__


def test_radius_figure_marks_extrapolation(quick_models):
    fig = figures.radius_figure(quick_models["radius"], radii=(3.0, 5.0), n_per_radius=20, n_steps=5)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert any("5.00 (extrapolation)" in label for label in labels)
    assert not any("3.00 (extrapolation)" in label for label in labels)


def test_missing_models_are_named(tmp_path, quick_models):
    with pytest.raises(ValueError, match="onehot"):
        figures.make_figures(tmp_path, models={"fm": quick_models["fm"], "radius": quick_models["radius"]})


def test_pairs_figure_has_a_panel_per_registered_base():
    from gen_models_utilities.base_distributions import BASES

    fig = figures.pairs_figure(n_points=50)
    assert [ax.get_title() for ax in fig.axes] == [base.label for base in BASES.values()]


def test_command_line_refuses_unknown_base(tmp_path):
    with pytest.raises(SystemExit):
        figures.main([str(tmp_path), "--base", "moon"])
