"""Side-by-side measurements of notebook 17b (gen_models_utilities.baselines.comparison)."""
import math

import numpy as np
import pytest
import torch

from gen_models_utilities import create_ring_gaussians, ring_quality
from gen_models_utilities.baselines import comparison
from gen_models_utilities.pretrained import load_checkpoint, load_pretrained, save_checkpoint
from gen_models_utilities.pretrained.recipes import recipe
from gen_models_utilities.baselines.diffusion import DiffusionModel
from gen_models_utilities.models import VelocityField


def test_diverged_counts_blow_ups_and_rising_losses_only():
    assert not comparison.diverged([5.0] * 10 + [3.0] * 90)
    assert comparison.diverged([1.0, 0.5, math.nan, 0.4])
    assert comparison.diverged([1.0, 0.5, math.inf])
    assert comparison.diverged([1.0] * 50 + [2.0] * 50)          # ends above where it started
    with pytest.raises(ValueError, match="losses"):
        comparison.diverged([])


def test_fewest_steps_like_data_needs_every_larger_count_to_be_good():
    data = create_ring_gaussians(1000, seed=1)[0]
    good, blurred = ring_quality(data), ring_quality(data + np.random.default_rng(0).normal(0, 0.3, data.shape))
    assert good.as_good_as_data and not blurred.as_good_as_data
    sweep = {n: {"quality": q} for n, q in ((4, blurred), (8, good), (16, blurred), (32, good), (64, good))}
    assert comparison.fewest_steps_like_data(sweep) == 32
    assert comparison.fewest_steps_like_data({4: {"quality": blurred}}) is None
    assert comparison.short_verdict(good) == "like data"
    assert comparison.short_verdict(blurred).startswith("unlike:") and "off-mode" in comparison.short_verdict(blurred)
    assert comparison.quality_cell(good).endswith(" *") and not comparison.quality_cell(blurred).endswith("*")


def test_quality_by_steps_scores_each_step_count():
    data = torch.as_tensor(create_ring_gaussians(500, seed=2)[0])
    sweep = comparison.quality_by_steps(lambda n: data * (1 + 1 / n), (1, 100))
    assert list(sweep) == [1, 100]
    assert sweep[1]["quality"].w2 > sweep[100]["quality"].w2
    with pytest.raises(ValueError, match="step_grid"):
        comparison.quality_by_steps(lambda n: data, (0,))


def test_format_table_lines_up_columns():
    table = comparison.format_table({"a": {"x": "1"}, "longer": {"x": "22"}}, ["x"])
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[2].startswith("a      |")
    with pytest.raises(ValueError, match="rows"):
        comparison.format_table({}, ["x"])


@pytest.mark.parametrize("name, cls", [("diffusion", DiffusionModel), ("cnf", VelocityField)])
def test_shipped_companions_load_with_their_recipe(name, cls):
    model, metadata = load_pretrained(name, "gaussian")
    assert isinstance(model, cls) and not model.training
    assert metadata["recipe"] == recipe(name, "gaussian")
    if name == "cnf":
        assert model.config["activation"] == recipe("cnf", "gaussian")["activation"]
        assert isinstance(model.net[1], torch.nn.SiLU)
    with pytest.raises(ValueError, match="kind"):
        load_pretrained("gan", "gaussian")
    with pytest.raises(ValueError, match="base must be 'gaussian'"):
        load_pretrained(name, "uniform")


def test_a_smooth_model_and_a_diffusion_model_round_trip_through_a_checkpoint(tmp_path):
    for model in (VelocityField(activation="softplus"), DiffusionModel(beta_max=10.0)):
        save_checkpoint(model, tmp_path / "m.pt")
        loaded, _ = load_checkpoint(tmp_path / "m.pt")
        assert loaded.config == model.config
        x = torch.randn(5, 2)
        torch.testing.assert_close(loaded(x, 0.3), model(x, 0.3))
    assert "activation" not in VelocityField().config                   # ReLU models keep the chapter's config
    with pytest.raises(ValueError, match="activation"):
        VelocityField(activation="gelu")
