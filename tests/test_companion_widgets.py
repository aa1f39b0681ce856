"""The 17a explorer: its draw function and callbacks, without a browser."""
import matplotlib
import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from gen_models_utilities.companion_widgets import draw_few_step_sampler, few_step_explorer, steps_for_budget


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"independent": VelocityField(hidden_dim=16), "one-hot": ConditionalVelocityField(n_classes=8, hidden_dim=16)}


@pytest.fixture(scope="module")
def reference():
    return torch.randn(200, 2) * 3


def test_budget_becomes_whole_steps():
    assert [steps_for_budget("euler", n) for n in (1, 2, 7)] == [1, 2, 7]
    assert [steps_for_budget("heun", n) for n in (1, 2, 5)] == [1, 1, 2]
    assert [steps_for_budget("rk4", n) for n in (2, 4, 9)] == [1, 1, 2]
    with pytest.raises(ValueError, match="nfe"):
        steps_for_budget("euler", 0)
    with pytest.raises(ValueError, match="method"):
        steps_for_budget("rk45", 2)


@pytest.mark.parametrize("method, nfe, expected", [("euler", 3, 3), ("midpoint", 4, 4), ("rk4", 2, 4)])
def test_draw_reports_the_evaluations_actually_used(models, reference, method, nfe, expected):
    fig, text = draw_few_step_sampler(models, "independent", method, nfe, n_samples=60, n_paths=5,
                                      data=reference, floor=0.5)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    assert f"= {expected} NFE" in text and "straightness" in text and "W2" in text
    # the right panel holds the accurate paths plus one line per drawn particle
    assert len(fig.axes[1].lines) == 2 * 5


def test_draw_one_hot_model_colours_by_class(models, reference):
    fig, text = draw_few_step_sampler(models, "one-hot", "heun", 2, n_samples=80, n_paths=8, data=reference, floor=0.5)
    colours = {tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
               for line in fig.axes[1].lines[8:]}
    assert len(colours) == 8


def test_draw_refuses_bad_arguments(models, reference):
    with pytest.raises(ValueError, match="coupling"):
        draw_few_step_sampler(models, "sinkhorn", data=reference, floor=0.5)
    with pytest.raises(ValueError, match="method"):
        draw_few_step_sampler(models, "independent", "leapfrog", data=reference, floor=0.5)
    with pytest.raises(TypeError, match="models"):
        draw_few_step_sampler(VelocityField(hidden_dim=8), "independent")
    with pytest.raises(TypeError, match="one-hot"):
        draw_few_step_sampler({"radius": ConditionalVelocityFieldRadius(hidden_dim=8)}, "radius", data=reference, floor=0.5)


def test_explorer_redraws_one_output_in_place(models, reference):
    explorer = few_step_explorer(models, method="euler", nfe=1, n_samples=60, data=reference, floor=0.5)
    assert explorer.controls["NFE"].continuous_update is False
    assert "= 1 NFE" in explorer.last_text and len(explorer.output.outputs) == 2
    before = explorer.n_redraws
    explorer.set(solver="rk4", NFE=8)
    explorer.controls["coupling"].value = "one-hot"           # as a user would
    assert explorer.n_redraws > before
    assert explorer.last_text.startswith("one-hot: rk4, 2 steps = 8 NFE")
    assert len(explorer.output.outputs) == 2 and explorer.last_error is None
    assert matplotlib.pyplot.get_fignums() == []                 # every figure was closed
