"""`make checkpoints` (tools.retrain_checkpoints): one checkpoint per model kind and base, listed or retrained."""
import pytest
import torch

from gen_models_utilities import VelocityField
from gen_models_utilities import pretrained as checkpoints
from gen_models_utilities.base_distributions import BASES
from gen_models_utilities.pretrained import catalogue, recipes
from tools import retrain_checkpoints as retrain


def test_names_cover_every_kind_and_base():
    expected = {f"{kind}_{base}": (kind, base) for kind in ("fm", "onehot", "radius") for base in BASES}
    expected.update({f"{kind}_gaussian": (kind, "gaussian") for kind in catalogue.MODEL_KINDS
                     if kind not in ("fm", "onehot", "radius")})
    assert retrain.checkpoint_names() == expected
    names = list(expected)
    assert names.index("fm_gaussian") < names.index("fm_reflow_gaussian")     # the teacher is trained first


def test_listing_shows_the_shipped_checkpoints(capsys):
    assert retrain.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(retrain.checkpoint_names())
    assert "fm_gaussian" in [line.split()[0] for line in lines if line.split()[1] == "present"]


def test_only_without_retrain_is_refused():
    with pytest.raises(SystemExit):
        retrain.main(["--only", "fm_gaussian"])


def test_unknown_checkpoint_is_refused():
    with pytest.raises(SystemExit):
        retrain.main(["--retrain", "--only", "fm_moon"])


def test_retrain_only_writes_the_named_checkpoint(tmp_path, monkeypatch, capsys):
    real_train_recipe = recipes.train_recipe
    monkeypatch.setattr(recipes, "train_recipe", lambda kind, base: real_train_recipe(kind, base, n_steps=5))
    monkeypatch.setattr(catalogue, "PRETRAINED_DIR", tmp_path)
    assert retrain.main(["--retrain", "--only", "fm_uniform"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fm_uniform.pt"]
    model, metadata = checkpoints.load_pretrained("fm", "uniform")
    assert metadata["steps"] == 5 and metadata["base"] == "uniform"
    assert capsys.readouterr().out.startswith("fm_uniform")


def test_radius_range_is_what_train_stores_and_is_written_with_metadata(tmp_path, monkeypatch, capsys):
    from gen_models_utilities import ConditionalVelocityFieldRadius, create_ring_gaussians, train

    points, _ = create_ring_gaussians(recipes.DATA_SIZE, seed=recipes.DATA_SEED)
    fresh = ConditionalVelocityFieldRadius()
    train(fresh, points, n_steps=1, batch_size=8, seed=0, progress=False)
    expected = retrain.training_radius_range()
    assert torch.equal(fresh.trained_radius_range, expected)           # the tool and train agree
    radii = torch.as_tensor(points).norm(dim=1)
    assert expected[0] > radii.min() and expected[1] < radii.max()     # not the extremes
    assert abs((radii < expected[0]).float().mean().item() - 0.01) < 1e-3
    assert abs((radii > expected[1]).float().mean().item() - 0.01) < 1e-3

    stale = ConditionalVelocityFieldRadius()
    stale.trained_radius_range.copy_(torch.tensor([radii.min(), radii.max()]))
    monkeypatch.setattr(catalogue, "PRETRAINED_DIR", tmp_path)
    checkpoints.save_checkpoint(stale, checkpoints.pretrained_path("radius", "uniform"), steps=7, base="uniform")
    checkpoints.save_checkpoint(VelocityField(), checkpoints.pretrained_path("fm", "uniform"), steps=3)
    fm_before = checkpoints.pretrained_path("fm", "uniform").read_bytes()
    assert retrain.main(["--radius-range", "--only", "radius_uniform", "fm_uniform"]) == 0
    model, metadata = checkpoints.load_pretrained("radius", "uniform")
    assert torch.equal(model.trained_radius_range, expected)
    assert metadata["steps"] == 7 and metadata["base"] == "uniform"
    for name, value in stale.state_dict().items():
        if name != "trained_radius_range":
            assert torch.equal(model.state_dict()[name], value)
    assert checkpoints.pretrained_path("fm", "uniform").read_bytes() == fm_before   # other kinds untouched
    assert capsys.readouterr().out.startswith("radius_uniform")
