"""The widget layer: plain draw functions, and explorers whose callbacks redraw one Output area.

The models are tiny and trained for a few steps: these tests check the plumbing (a redraw
changes the image, figures are closed, bad values give a message), not sample quality.
"""
import base64

import matplotlib.pyplot as plt
import pytest
import torch

from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField,
                                  create_ring_gaussians, train)
from gen_models_utilities import widgets


def _quick(model_class, **train_kwargs):
    torch.manual_seed(0)
    model = model_class()
    points, labels = create_ring_gaussians(600, seed=0)
    if model_class is ConditionalVelocityField:
        train_kwargs["labels"] = labels
    train(model, points, n_steps=30, batch_size=64, seed=0, progress=False, **train_kwargs)
    return model


@pytest.fixture(scope="module")
def fm_models():
    return {"gaussian": _quick(VelocityField), "uniform": _quick(VelocityField, base="uniform")}


@pytest.fixture(scope="module")
def onehot_model():
    return _quick(ConditionalVelocityField)


@pytest.fixture(scope="module")
def radius_model():
    return _quick(ConditionalVelocityFieldRadius)


def _png(fig) -> bytes:
    try:
        return widgets.figure_png(fig)
    finally:
        plt.close(fig)


def _shown(explorer):
    """(png bytes or None, all text) currently in the explorer's Output area."""
    png, text = None, ""
    for output in explorer.output.outputs:
        if output["output_type"] == "display_data":
            png = base64.b64decode(output["data"]["image/png"])
        else:
            text += output["text"]
    return png, text


# ---------------------------------------------------------------- plain draw functions

def test_draw_samples_returns_figure_and_quality_line(fm_models):
    fig, text = widgets.draw_samples(fm_models, "gaussian", n_steps=5, method="euler", n_samples=200, floor=0.5)
    assert isinstance(fig, plt.Figure)
    assert "5 network evaluations" in text and "W2 to data" in text and "off every mode" in text
    plt.close(fig)


def test_draw_samples_changes_with_each_setting(fm_models):
    kwargs = dict(n_samples=200, floor=0.5)
    images = {_png(widgets.draw_samples(fm_models, "gaussian", 5, "euler", **kwargs)[0]),
              _png(widgets.draw_samples(fm_models, "gaussian", 6, "euler", **kwargs)[0]),
              _png(widgets.draw_samples(fm_models, "gaussian", 5, "rk4", **kwargs)[0]),
              _png(widgets.draw_samples(fm_models, "uniform", 5, "euler", **kwargs)[0])}
    assert len(images) == 4


def test_draw_samples_is_reproducible(fm_models):
    first = widgets.draw_samples(fm_models, "gaussian", 3, "heun", n_samples=100, floor=0.5)
    second = widgets.draw_samples(fm_models, "gaussian", 3, "heun", n_samples=100, floor=0.5)
    assert first[1] == second[1]
    assert _png(first[0]) == _png(second[0])


def test_rk4_costs_four_evaluations_per_step(fm_models):
    fig, text = widgets.draw_samples(fm_models, "gaussian", n_steps=3, method="rk4", n_samples=50, floor=0.5)
    plt.close(fig)
    assert "12 network evaluations" in text


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_steps=0), "n_steps"), (dict(n_steps=501), "n_steps"), (dict(n_steps=2.5), "n_steps"),
    (dict(method="rk5"), "method"), (dict(base="moon"), "base"), (dict(base="ethz_logo"), "base"),
])
def test_draw_samples_refuses_bad_values(fm_models, kwargs, match):
    arguments = dict(base="gaussian", n_steps=5, method="euler", n_samples=50, floor=0.5) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        widgets.draw_samples(fm_models, **arguments)
    assert plt.get_fignums() == []


def test_draw_samples_refuses_a_conditional_model(onehot_model):
    with pytest.raises(TypeError, match="unconditional"):
        widgets.draw_samples(onehot_model, "gaussian", 5, "euler", n_samples=50, floor=0.5)


def test_draw_field_changes_with_time(fm_models):
    (fig_a, text_a), (fig_b, text_b) = (widgets.draw_field(fm_models, t, "gaussian") for t in (0.0, 1.0))
    assert text_a.startswith("t = 0.00") and text_b.startswith("t = 1.00")
    assert _png(fig_a) != _png(fig_b)


@pytest.mark.parametrize("t", [-0.1, 1.5, float("nan"), "half"])
def test_draw_field_refuses_times_outside_zero_one(fm_models, t):
    with pytest.raises((ValueError, TypeError), match="t must"):
        widgets.draw_field(fm_models, t, "gaussian")


def test_draw_mode_reports_the_requested_mode(onehot_model):
    fig, text = widgets.draw_mode(onehot_model, mode=3, n_samples=80, n_steps=10)
    assert text.startswith("mode 3:")
    assert len(fig.axes) == 2
    other = _png(widgets.draw_mode(onehot_model, mode=4, n_samples=80, n_steps=10)[0])
    assert _png(fig) != other


@pytest.mark.parametrize("mode", [-1, 8, 2.0, "3"])
def test_draw_mode_refuses_modes_that_do_not_exist(onehot_model, mode):
    with pytest.raises((ValueError, TypeError), match="mode"):
        widgets.draw_mode(onehot_model, mode=mode, n_samples=20, n_steps=5)


def test_draw_mode_needs_a_one_hot_model(radius_model):
    with pytest.raises(TypeError, match="onehot"):
        widgets.draw_mode(radius_model, mode=0)


def test_draw_radius_flags_extrapolation(radius_model):
    low, high = radius_model.trained_radius_range.tolist()
    inside = widgets.draw_radius(radius_model, radius=(low + high) / 2, n_samples=50, n_steps=5)
    outside = widgets.draw_radius(radius_model, radius=high + 1.0, n_samples=50, n_steps=5)
    assert "inside the trained radii" in inside[1]
    assert "extrapolation" in outside[1] and "extrapolation" not in inside[1]
    assert _png(inside[0]) != _png(outside[0])


@pytest.mark.parametrize("radius", [0.0, -1.0, 100.0, float("inf")])
def test_draw_radius_refuses_radii_off_the_plot(radius_model, radius):
    with pytest.raises(ValueError, match="radius"):
        widgets.draw_radius(radius_model, radius=radius)


# ---------------------------------------------------------------- explorers and callbacks

def test_sample_explorer_controls_have_stable_descriptions(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100, floor=0.5)
    assert {name: c.description for name, c in explorer.controls.items()} == {
        "base": "base", "steps": "steps", "solver": "solver"}
    assert (explorer.controls["steps"].min, explorer.controls["steps"].max) == (1, 500)
    assert explorer.controls["steps"].continuous_update is False
    assert list(explorer.controls["base"].options) == ["gaussian", "uniform"]


def test_each_callback_redraws_the_one_output_area(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100, floor=0.5)
    seen = [_shown(explorer)[0]]
    for name, value in [("steps", 7), ("solver", "midpoint"), ("base", "uniform"), ("steps", 1)]:
        explorer.controls[name].value = value          # what a user's click does
        png, text = _shown(explorer)
        assert png is not None and png not in seen, f"changing {name} did not change the image"
        assert "network evaluations" in text
        seen.append(png)
    assert explorer.n_redraws == 5
    assert plt.get_fignums() == []


def test_out_of_range_value_is_clamped_with_a_message(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100, floor=0.5)
    message = explorer.set(steps=10_000)
    assert explorer.controls["steps"].value == 500
    assert "outside the allowed range" in message and "500" in message
    assert "outside the allowed range" in _shown(explorer)[1]


def test_wrong_type_is_refused_with_a_message_not_a_traceback(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100, floor=0.5)
    before = _shown(explorer)[0]
    message = explorer.set(steps="many")
    assert "refused" in message
    png, text = _shown(explorer)
    assert "refused" in text and png == before
    assert explorer.controls["steps"].value == 5


def test_a_draw_error_shows_as_a_message(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100, floor=0.5)
    explorer._arguments = lambda values: dict(models=fm_models, base="gaussian", n_steps=0, method="euler")
    explorer._cache.clear()
    explorer.redraw()
    assert explorer.last_error.startswith("Refused: n_steps")
    assert "Refused: n_steps" in _shown(explorer)[1]


def test_repeated_redraws_close_their_figures(fm_models):
    explorer = widgets.field_explorer(fm_models, t=0.0)
    for i in range(12):
        explorer.controls["t"].value = round(0.05 * (i % 7), 2)
    assert plt.get_fignums() == []
    assert explorer.controls["t"].continuous_update is False


def test_field_explorer_clamps_time(fm_models):
    explorer = widgets.field_explorer(fm_models, t=0.5)
    message = explorer.set(t=3.0)
    assert explorer.controls["t"].value == 1.0 and "outside" in message
    assert _shown(explorer)[1].count("t = 1.00") == 1


def test_mode_explorer_redraws_per_mode(onehot_model):
    explorer = widgets.mode_explorer(onehot_model, mode=0, n_samples=60)
    assert explorer.controls["mode"].description == "mode"
    first = _shown(explorer)[0]
    explorer.controls["mode"].value = 5
    png, text = _shown(explorer)
    assert png != first and text.startswith("mode 5:")
    assert "refused" in explorer.set(mode=9)


def test_radius_explorer_marks_extrapolation(radius_model):
    explorer = widgets.radius_explorer(radius_model, radius=3.0, n_samples=60)
    assert explorer.controls["radius"].description == "radius"
    assert explorer.controls["radius"].continuous_update is False
    first = _shown(explorer)[0]
    explorer.controls["radius"].value = 4.8
    png, text = _shown(explorer)
    assert png != first and "extrapolation" in text
    assert "outside the allowed range" in explorer.set(radius=50.0)
    assert explorer.controls["radius"].value == widgets.RADIUS_LIMITS[1]


def test_explorer_displays_as_its_widget(fm_models):
    import ipywidgets

    explorer = widgets.field_explorer(fm_models)
    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert explorer.output in explorer.widget.children


# ---------------------------------------------------------------- shipped checkpoints, lazily

def test_pretrained_models_lists_every_base_without_loading(monkeypatch, tmp_path):
    from gen_models_utilities import checkpoints

    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)      # nothing built here
    models = widgets.PretrainedModels("fm")
    assert list(models) == ["gaussian", "uniform", "ethz_logo"] and len(models) == 3
    with pytest.raises(FileNotFoundError, match="fm_uniform"):
        models["uniform"]
    with pytest.raises(KeyError):
        models["moon"]
    with pytest.raises(ValueError, match="kind"):
        widgets.PretrainedModels("gan")


def test_missing_checkpoint_shows_a_message(monkeypatch, tmp_path, fm_models):
    from gen_models_utilities import checkpoints

    checkpoints.save_checkpoint(fm_models["gaussian"], tmp_path / "fm_gaussian.pt")
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)      # only the Gaussian one
    explorer = widgets.field_explorer(widgets.PretrainedModels("fm"), t=0.5)
    assert explorer.last_error is None and explorer.last_png is not None
    explorer.controls["base"].value = "uniform"
    png, text = _shown(explorer)
    assert "fm_uniform" in text and "make checkpoints" in text and "Traceback" not in text
    assert png == explorer.last_png
