"""Every explorer of the suite: plain draw functions, and explorers whose callbacks redraw one Output area.

The models are tiny and trained for a few steps: these tests check the plumbing (a redraw
changes the image, figures are closed, bad values give a message), not sample quality.
"""
import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
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
    """(png bytes or None, all text) the explorer shows: its Image widget and its Output area."""
    text = "".join(output["text"] for output in explorer.output.outputs)
    return explorer.image.value or None, text


@pytest.fixture(autouse=True)
def no_settle_timer(monkeypatch):
    """Quick pictures stay until a test calls settle(): no timer thread races the assertions."""
    monkeypatch.setattr(widgets.Explorer, "SETTLE_SECONDS", None)


# ---------------------------------------------------------------- plain draw functions

def test_draw_samples_returns_figure_and_quality_line(fm_models):
    fig, text = widgets.draw_samples(fm_models, "gaussian", n_steps=5, method="euler", n_samples=200)
    assert isinstance(fig, plt.Figure)
    assert "5 network evaluations" in text and "W2 " in text and "off every mode" in text
    plt.close(fig)


def test_draw_samples_changes_with_each_setting(fm_models):
    kwargs = dict(n_samples=200)
    images = {_png(widgets.draw_samples(fm_models, "gaussian", 5, "euler", **kwargs)[0]),
              _png(widgets.draw_samples(fm_models, "gaussian", 6, "euler", **kwargs)[0]),
              _png(widgets.draw_samples(fm_models, "gaussian", 5, "rk4", **kwargs)[0]),
              _png(widgets.draw_samples(fm_models, "uniform", 5, "euler", **kwargs)[0])}
    assert len(images) == 4


def test_draw_samples_is_reproducible(fm_models):
    first = widgets.draw_samples(fm_models, "gaussian", 3, "heun", n_samples=100)
    second = widgets.draw_samples(fm_models, "gaussian", 3, "heun", n_samples=100)
    assert first[1] == second[1]
    assert _png(first[0]) == _png(second[0])


def test_rk4_costs_four_evaluations_per_step(fm_models):
    fig, text = widgets.draw_samples(fm_models, "gaussian", n_steps=3, method="rk4", n_samples=50)
    plt.close(fig)
    assert "12 network evaluations" in text


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_steps=0), "n_steps"), (dict(n_steps=501), "n_steps"), (dict(n_steps=2.5), "n_steps"),
    (dict(method="rk5"), "method"), (dict(base="moon"), "base"), (dict(base="ethz_logo"), "base"),
])
def test_draw_samples_refuses_bad_values(fm_models, kwargs, match):
    arguments = dict(base="gaussian", n_steps=5, method="euler", n_samples=50) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        widgets.draw_samples(fm_models, **arguments)
    assert plt.get_fignums() == []


def test_draw_samples_refuses_a_conditional_model(onehot_model):
    with pytest.raises(TypeError, match="unconditional"):
        widgets.draw_samples(onehot_model, "gaussian", 5, "euler", n_samples=50)


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
    assert "(extrapolation)" in outside[0].axes[0].get_title() and "extrapolation" not in inside[0].axes[0].get_title()
    assert _png(inside[0]) != _png(outside[0])
    plt.close("all")


def test_pixels_png_decodes_to_the_pixels_drawn():
    from PIL import Image

    rgba = np.random.default_rng(0).integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(widgets.pixels_png(rgba))))
    assert decoded.shape == (37, 53, 3) and np.array_equal(decoded, rgba[..., :3])


@pytest.mark.parametrize("radius", [0.0, -1.0, 100.0, float("inf")])
def test_draw_radius_refuses_radii_off_the_plot(radius_model, radius):
    with pytest.raises(ValueError, match="radius"):
        widgets.draw_radius(radius_model, radius=radius)


# ---------------------------------------------------------------- explorers and callbacks

def test_sample_explorer_controls_have_stable_descriptions(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100)
    assert {name: c.description for name, c in explorer.controls.items()} == {
        "base": "base", "steps": "steps", "solver": "solver"}
    assert (explorer.controls["steps"].min, explorer.controls["steps"].max) == (1, 500)
    assert explorer.controls["steps"].continuous_update is True
    assert list(explorer.controls["base"].options) == ["gaussian", "uniform"]


def test_each_callback_redraws_the_one_output_area(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100)
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
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100)
    message = explorer.set(steps=10_000)
    assert explorer.controls["steps"].value == 500
    assert "outside the allowed range" in message and "500" in message
    assert "outside the allowed range" in _shown(explorer)[1]


def test_wrong_type_is_refused_with_a_message_not_a_traceback(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100)
    before = _shown(explorer)[0]
    message = explorer.set(steps="many")
    assert "refused" in message
    png, text = _shown(explorer)
    assert "refused" in text and png == before
    assert explorer.controls["steps"].value == 5


def test_a_refused_value_shows_as_a_message_and_keeps_the_picture():
    import ipywidgets

    def draw(n, scale):
        if n > 3:
            raise ValueError(f"n must be at most 3, got {n}")
        fig = plt.figure()
        fig.suptitle(str(n * scale))
        return fig, f"n = {n}"

    explorer = widgets.Explorer(draw, {"n": ipywidgets.IntSlider(min=0, max=9, description="count")}, n=1, scale=2)
    assert list(explorer.controls) == ["count"] and explorer.last_text == "n = 1"
    picture = explorer.last_png
    explorer.controls["count"].value = 5
    assert explorer.last_error == "Refused: n must be at most 3, got 5"
    png, text = _shown(explorer)
    assert "Refused: n must be at most 3" in text and "n = 1" not in text and png == picture
    explorer.set(count=2)
    assert explorer.last_error is None and _shown(explorer)[1] == "n = 2\n" and explorer.last_png != picture
    assert explorer.n_redraws == 3 and plt.get_fignums() == []


@pytest.mark.parametrize("builder, kwargs, match", [
    ("sample_explorer", dict(n_steps=1000), "n_steps must be between 1 and 500, got 1000"),
    ("sample_explorer", dict(n_steps=2.5), "n_steps must be between"),
    ("sample_explorer", dict(method="rk5"), r"method must be one of \['euler', 'midpoint', 'heun', 'rk4'\]"),
    ("sample_explorer", dict(base="ethz_logo"), r"base must be one of \['gaussian', 'uniform'\]"),
    ("field_explorer", dict(t=float("nan")), "t must be between 0.0 and 1.0"),
])
def test_builders_refuse_bad_starting_values(fm_models, builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(widgets, builder)(fm_models, **kwargs)


def test_choices_come_from_the_registries_at_call_time(fm_models, monkeypatch):
    from gen_models_utilities import base_distributions, solvers

    explorer = widgets.sample_explorer(fm_models["gaussian"], n_steps=2, n_samples=50)
    assert list(explorer.controls["base"].options) == list(base_distributions.BASES)
    assert list(explorer.controls["solver"].options) == list(solvers.solver_names(adaptive=False))
    def three_thirds(velocity, x, t, h):      # three Euler steps of h / 3: 3 evaluations a step
        for i in range(3):
            x = solvers.euler_step(velocity, x, t + i * h / 3, h / 3)
        return x

    monkeypatch.setitem(solvers.SOLVERS, "euler2", solvers.Solver("euler2", 1, 3, three_thirds))
    assert "euler2" in widgets.sample_explorer(fm_models, n_steps=2, n_samples=50).controls["solver"].options
    few = widgets.few_step_explorer({"independent": fm_models["gaussian"]}, nfe=7, n_samples=50)
    assert list(few.controls["solver"].options) == list(solvers.solver_names())
    few.set(solver="euler2")                  # 7 evaluations at 3 a step: 2 steps
    assert few.last_text.startswith("independent: euler2, 2 steps = 6 NFE")


def test_repeated_redraws_close_their_figures(fm_models):
    explorer = widgets.field_explorer(fm_models, t=0.0)
    for i in range(12):
        explorer.controls["t"].value = round(0.05 * (i % 7), 2)
    assert plt.get_fignums() == []
    assert explorer.controls["t"].continuous_update is True


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
    assert explorer.controls["radius"].continuous_update is True
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

def test_pretrained_models_offer_the_bases_with_a_checkpoint(monkeypatch, tmp_path, fm_models):
    from gen_models_utilities.pretrained import catalogue as checkpoints
    from gen_models_utilities.pretrained import save_checkpoint

    save_checkpoint(fm_models["gaussian"], tmp_path / "fm_gaussian.pt")
    save_checkpoint(fm_models["uniform"], tmp_path / "fm_uniform.pt")
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)      # no logo checkpoint here
    models = checkpoints.PretrainedModels("fm")
    explorer = widgets.field_explorer(models, t=0.5)
    assert list(explorer.controls["base"].options) == ["gaussian", "uniform"]
    assert list(models._loaded) == ["gaussian"]                       # the other loads when chosen
    explorer.controls["base"].value = "uniform"
    assert explorer.last_error is None and list(models._loaded) == ["gaussian", "uniform"]
    with pytest.raises(ValueError, match="base must be one of"):
        widgets.field_explorer(models, base="ethz_logo")


# ---------------------------------------------------------------- 17a: few steps, couplings

@pytest.fixture(scope="module")
def coupling_models():
    torch.manual_seed(0)
    return {"independent": VelocityField(hidden_dim=16),
            "one-hot": ConditionalVelocityField(n_classes=8, hidden_dim=16)}


@pytest.fixture(scope="module")
def reference():
    return torch.randn(200, 2) * 3


@pytest.mark.parametrize("method, nfe, expected", [
    ("euler", 3, "3 steps = 3 NFE"), ("heun", 1, "1 step = 2 NFE"), ("heun", 5, "2 steps = 4 NFE"),
    ("midpoint", 4, "2 steps = 4 NFE"), ("rk4", 2, "1 step = 4 NFE"), ("rk4", 9, "2 steps = 8 NFE")])
def test_few_step_draw_reports_the_evaluations_actually_used(coupling_models, reference, method, nfe, expected):
    fig, text = widgets.draw_few_step(coupling_models, "independent", method, nfe, n_samples=60, n_paths=5,
                                      data=reference)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2
    assert f"{method}, {expected}" in text and "straightness" in text and "W2" in text
    # the right panel: the accurate paths, then the solver's path of each drawn particle, one point a step
    fine, steps = (c for c in fig.axes[1].collections if isinstance(c, LineCollection))
    n_steps = int(expected.split()[0])
    assert len(fine.get_segments()) == len(steps.get_segments()) == 5
    assert {len(path) for path in fine.get_segments()} == {widgets.FINE_STEPS + 1}
    assert {len(path) for path in steps.get_segments()} == {n_steps + 1}
    plt.close(fig)


def test_few_step_draw_colours_one_hot_samples_by_class(coupling_models, reference):
    fig, _ = widgets.draw_few_step(coupling_models, "one-hot", "heun", 2, n_samples=80, n_paths=8,
                                   data=reference)
    _, steps = (c for c in fig.axes[1].collections if isinstance(c, LineCollection))
    assert len({tuple(colour) for colour in steps.get_colors()}) == 8
    plt.close(fig)


def test_few_step_draw_refuses_bad_arguments(coupling_models, reference):
    with pytest.raises(ValueError, match="coupling"):
        widgets.draw_few_step(coupling_models, "sinkhorn", data=reference)
    with pytest.raises(ValueError, match="method"):
        widgets.draw_few_step(coupling_models, "independent", "leapfrog", data=reference)
    with pytest.raises(ValueError, match="nfe"):
        widgets.draw_few_step(coupling_models, "independent", "euler", 0, data=reference)
    with pytest.raises(TypeError, match="models"):
        widgets.draw_few_step(VelocityField(hidden_dim=8), "independent")
    with pytest.raises(TypeError, match="one-hot"):
        widgets.draw_few_step({"radius": ConditionalVelocityFieldRadius(hidden_dim=8)}, "radius",
                              data=reference)
    assert plt.get_fignums() == []


def test_few_step_explorer_redraws_one_output_in_place(coupling_models, reference):
    explorer = widgets.few_step_explorer(coupling_models, method="euler", nfe=1, n_samples=60, data=reference)
    assert list(explorer.controls) == ["coupling", "solver", "NFE"]
    assert explorer.controls["NFE"].continuous_update is True
    assert "= 1 NFE" in explorer.last_text and len(explorer.output.outputs) == 1
    before = explorer.n_redraws
    explorer.set(solver="rk4", NFE=8)                         # two quick pictures, then the full one
    assert explorer.n_redraws == before + 3 and "W2 " in explorer.last_text
    explorer.controls["coupling"].value = "one-hot"           # as a user would: a quick picture
    assert explorer.n_redraws == before + 4 and "W2 when they rest" in explorer.last_text
    explorer.settle()
    assert explorer.n_redraws == before + 5 and "W2 when they rest" not in explorer.last_text
    assert explorer.last_text.startswith("one-hot: rk4, 2 steps = 8 NFE")
    assert len(explorer.output.outputs) == 1 and explorer.last_error is None
    assert plt.get_fignums() == []                             # every figure was closed
    with pytest.raises(TypeError, match="models must be a non-empty dict"):
        widgets.few_step_explorer({})


# ---------------------------------------------------------------- 17b: classifier-free guidance

def test_draw_guidance_returns_figure_and_hit_share(onehot_model):
    fig, text = widgets.draw_guidance(onehot_model, 0.0, label=0, n_samples=20, n_steps=2)
    assert fig.axes and text.startswith("w = 0.0:") and "mode 0" in text
    plt.close(fig)
    with pytest.raises(ValueError, match="guidance_scale"):
        widgets.draw_guidance(onehot_model, -1.0)
    with pytest.raises(ValueError, match="label"):
        widgets.draw_guidance(onehot_model, 1.0, label=8)


def test_guidance_explorer_redraws_in_place(onehot_model):
    explorer = widgets.guidance_explorer(onehot_model, label=1, n_samples=40, n_steps=3)
    slider = explorer.controls["w"]
    assert slider.continuous_update is True and (slider.min, slider.max) == widgets.GUIDANCE_LIMITS
    assert explorer.last_text.startswith("w = 1.0")
    first = _shown(explorer)[0]
    slider.value = 5.0                         # what the user does: the callback redraws in place
    png, text = _shown(explorer)
    assert explorer.n_redraws == 2 and text.startswith("w = 5.0") and png != first
    assert "outside the allowed range" in explorer.set(w=20.0) and slider.value == 8.0
    assert plt.get_fignums() == []             # every figure was closed


# ---------------------------------------------------------------- answering at once

def test_a_moved_control_shows_a_quick_picture_then_the_full_one(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=400)
    assert "W2 " in explorer.last_text                        # the first picture is the full one
    explorer.controls["steps"].value = 6                      # a drag: fewer samples, no exact OT
    assert "64 samples while the controls move" in explorer.last_text
    quick = explorer.last_png
    explorer.settle()
    assert "W2 " in explorer.last_text and "while the controls move" not in explorer.last_text
    assert explorer.last_png != quick
    explorer.controls["steps"].value = 5                      # back to a cached full picture: no quick one
    assert "W2 " in explorer.last_text
    explorer.settle()                                         # nothing pending: no redraw
    assert explorer.n_redraws == 4


def test_the_settle_timer_replaces_the_quick_picture(fm_models, monkeypatch):
    import time

    monkeypatch.setattr(widgets.Explorer, "SETTLE_SECONDS", 0.05)
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=200)
    explorer.controls["steps"].value = 9
    deadline = time.monotonic() + 60
    while "while the controls move" in explorer.last_text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "W2 " in explorer.last_text and explorer.n_redraws == 3


def test_an_explorer_redraws_one_figure_in_place(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_steps=5, n_samples=100)
    figure, builds = explorer.canvas.figure, explorer.canvas.n_builds
    for steps in (6, 7, 8):
        explorer.set(steps=steps)
    assert explorer.canvas.figure is figure and explorer.canvas.n_builds == builds   # the fixed layer stays
    assert len(figure.axes[0].lines) == 3                    # base, data and one layer of samples
    explorer.set(base="uniform")                              # another base: the fixed layer is rebuilt
    assert explorer.canvas.n_builds == builds + 1 and plt.get_fignums() == []


def test_a_canvas_picture_equals_the_standalone_figure(fm_models):
    """The in-place picture (fixed layer pasted, moving layer drawn) looks like the plain figure."""
    import io

    import numpy as np
    from PIL import Image

    explorer = widgets.sample_explorer(fm_models, n_steps=4, n_samples=150)
    explorer.set(steps=3)
    fig, _ = widgets.draw_samples(fm_models, "gaussian", n_steps=3, n_samples=150)
    try:
        png = widgets.figure_png(fig, dpi=explorer.canvas.figure.dpi)
    finally:
        plt.close(fig)
    plain = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    live = np.asarray(Image.open(io.BytesIO(explorer.last_png)).convert("RGB"), dtype=float)
    assert plain.shape == live.shape
    assert np.abs(plain - live).mean() < 2.0, "the in-place picture differs from the figure it stands for"


# ---------------------------------------------------------------- live training

@pytest.fixture
def trainer_explorer():
    points, _ = create_ring_gaussians(400, seed=0)
    explorer = widgets.training_explorer(points, batch_size=64, n_preview=100)
    yield explorer
    explorer.pause()


def test_training_explorer_trains_and_redraws(trainer_explorer):
    explorer = trainer_explorer
    assert set(explorer.buttons) == {"Start", "Pause", "Reset"}
    assert set(explorer.settings) == {"base", "coupling", "learning rate", "batch size"}
    assert explorer.settings["coupling"]._options_labels == ("independent", "minibatch OT")
    first = explorer.last_png
    explorer.train_steps(30)
    assert explorer.trainer.n_steps == 30 and explorer.last_text.startswith("step 30 ")
    assert explorer.last_png != first and plt.get_fignums() == []
    model = explorer.model                                    # a copy: training on leaves it
    weights = [p.clone() for p in model.parameters()]
    explorer.train_steps(5)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    assert widgets.sample_explorer(model, n_steps=3, n_samples=50).last_error is None


def test_training_settings_apply(trainer_explorer):
    explorer = trainer_explorer
    explorer.train_steps(10)
    explorer.settings["learning rate"].value = 3e-3           # applies from the next step
    assert explorer.trainer.optimizer.param_groups[0]["lr"] == 3e-3 and explorer.trainer.n_steps == 10
    explorer.settings["batch size"].value = 128
    explorer.train_steps(2)
    assert explorer.trainer.n_steps == 12 and "batch 128" in explorer.last_text
    explorer.settings["coupling"].value = "ot"                # a new coupling starts afresh
    assert explorer.trainer.n_steps == 0 and "minibatch OT" in explorer.last_text
    explorer.train_steps(3)
    explorer.settings["base"].value = "uniform"
    assert explorer.trainer.n_steps == 0 and "uniform base" in explorer.last_text
    explorer.train_steps(3)
    explorer.reset()
    assert explorer.trainer.n_steps == 0


def test_reset_gives_the_same_training_again(trainer_explorer):
    explorer = trainer_explorer
    explorer.train_steps(20)
    losses = list(explorer.trainer.losses)
    explorer.reset()
    explorer.train_steps(20)
    assert explorer.trainer.losses == losses                 # seeded: the same run again


def test_background_training_pauses_and_keeps_the_model(trainer_explorer):
    import time

    explorer = trainer_explorer
    explorer.start()
    assert explorer.trainer.running
    deadline = time.monotonic() + 60
    while explorer.trainer.n_steps < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    explorer.pause()
    assert not explorer.trainer.running and explorer.status.value.startswith("paused")
    steps = explorer.trainer.n_steps
    time.sleep(0.2)
    assert explorer.trainer.n_steps == steps >= 20           # nothing trains after Pause
    assert explorer.last_text.startswith(f"step {steps} ")


def test_one_trainer_at_a_time():
    from gen_models_utilities import live_training

    points, _ = create_ring_gaussians(300, seed=0)
    first = widgets.training_explorer(points, batch_size=64, n_preview=50)
    first.start()
    second = widgets.training_explorer(points, batch_size=64, n_preview=50)    # re-running the cell
    assert not first.trainer.running
    second.start()
    first.start()                                              # starting one pauses the other
    assert first.trainer.running and not second.trainer.running
    assert live_training.pause_all() == 1 and not first.trainer.running


def test_an_interrupted_cell_pauses_the_trainers():
    from types import SimpleNamespace

    from gen_models_utilities import live_training

    points, _ = create_ring_gaussians(300, seed=0)
    explorer = widgets.training_explorer(points, batch_size=64, n_preview=50)
    explorer.start()
    live_training._pause_after_interrupt(SimpleNamespace(error_in_exec=ValueError("not an interrupt")))
    assert explorer.trainer.running
    live_training._pause_after_interrupt(SimpleNamespace(error_in_exec=KeyboardInterrupt()))
    assert not explorer.trainer.running


def test_training_explorer_refuses_bad_settings():
    with pytest.raises(ValueError, match="coupling"):
        widgets.training_explorer(coupling="sinkhorn")
    with pytest.raises(ValueError, match="learning rate must be one of"):
        widgets.training_explorer(lr=0.5)
    with pytest.raises(ValueError, match="base"):
        widgets.training_explorer(base="moon")


def test_the_live_trainer_takes_the_steps_train_takes():
    """train() and the live trainer share one step: same seed, weights and batches, same losses."""
    from gen_models_utilities.live_training import LiveTrainer

    points, _ = create_ring_gaussians(300, seed=0)
    trainer = LiveTrainer(points, batch_size=64, lr=1e-3, seed=3)
    trainer.step(5)
    torch.manual_seed(3)                       # the trainer's model is VelocityField() seeded with its seed
    result = train(VelocityField(), points, n_steps=5, batch_size=64, lr=1e-3, seed=3, schedule="constant",
                   progress=False)
    assert len(result.losses) == 5 and trainer.losses == result.losses

