"""`make checkpoints` (tools.retrain_checkpoints): one checkpoint per model kind and base, listed or retrained."""
import pytest

from gen_models_utilities import checkpoints, recipes
from gen_models_utilities.base_distributions import BASES
from tools import retrain_checkpoints as retrain


def test_names_cover_every_kind_and_base():
    expected = {f"{kind}_{base}": (kind, base) for kind in recipes.MODEL_KINDS for base in BASES}
    assert retrain.checkpoint_names() == expected


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
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    assert retrain.main(["--retrain", "--only", "fm_uniform"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fm_uniform.pt"]
    model, metadata = checkpoints.load_pretrained("fm", "uniform")
    assert metadata["steps"] == 5 and metadata["base"] == "uniform"
    assert capsys.readouterr().out.startswith("fm_uniform")
