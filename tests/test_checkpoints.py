"""Checkpoints: round trips, atomic writes, refusal of unsafe or mismatched files, shipped models."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gen_models_utilities
from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField,
                                  w2_floor)
from gen_models_utilities.base_distributions import BASES
from gen_models_utilities.couplings import COUPLINGS
from gen_models_utilities.metrics import ring_quality
from gen_models_utilities.pretrained import (MODEL_KINDS, CheckpointError, load_checkpoint, load_pretrained,
                                             save_checkpoint, shipped)
from gen_models_utilities.pretrained.catalogue import PRETRAINED_DIR
from gen_models_utilities.pretrained.recipes import measure_quality, recipe, train_recipe
from gen_models_utilities.pretrained.store import FORMAT_VERSION


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on a loaded two-core machine this is many times faster for tiny nets."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(cls, **config):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return cls(**config)


MODELS = {
    "VelocityField": lambda: make_model(VelocityField, hidden_dim=32),
    "ConditionalVelocityField": lambda: make_model(ConditionalVelocityField, n_classes=5, hidden_dim=24),
    "ConditionalVelocityFieldRadius": lambda: make_model(ConditionalVelocityFieldRadius, radius_emb_dim=8),
}
METADATA = {"base": "uniform", "recipe": {"n_steps": 10, "lr": 0.002, "schedule": "cosine"}, "steps": 10,
            "quality": {"w2": 0.31, "off_mode_fraction": 0.02}, "notes": ["a", "b"], "flag": True}


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_keeps_weights_config_outputs_and_metadata(tmp_path, name):
    model = MODELS[name]()
    if name == "ConditionalVelocityFieldRadius":
        model.trained_radius_range.copy_(torch.tensor([2.3, 3.7]))
    path = save_checkpoint(model, tmp_path / "model.pt", **METADATA)
    loaded, metadata = load_checkpoint(path, expected_class=name)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert metadata == {**METADATA, "package_version": gen_models_utilities.__version__}
    x, t = torch.randn(7, 2), torch.rand(7, 1)
    condition = None if model.condition_dim == 0 else torch.rand(7, model.condition_dim)
    model.eval()
    assert torch.equal(model(x, t, condition), loaded(x, t, condition))
    assert leftovers(tmp_path) == []


def test_save_refuses_unknown_models_and_bad_paths(tmp_path):
    with pytest.raises(TypeError, match="model must be one of"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="path must end in .pt"):
        save_checkpoint(MODELS["VelocityField"](), tmp_path / "x.pth")


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, interruption):
    path = save_checkpoint(MODELS["VelocityField"](), tmp_path / "model.pt", steps=1)
    good_bytes = path.read_bytes()
    real_save = torch.save

    def crash_half_way(obj, file, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])   # part of the file is written
        raise interruption

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(type(interruption)):
        save_checkpoint(MODELS["ConditionalVelocityField"](), path, steps=2)
    monkeypatch.undo()
    assert path.read_bytes() == good_bytes
    assert leftovers(tmp_path) == []
    model, metadata = load_checkpoint(path)
    assert type(model) is VelocityField and metadata["steps"] == 1


class RunsCode:
    """Unpickling this calls os.system, which writes a marker file: what a malicious file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"echo pwned > '{self.marker}'",)


def crafted_payload(marker):
    good = MODELS["VelocityField"]()
    return {"format_version": FORMAT_VERSION, "model_class": "VelocityField", "model_config": good.config,
            "state_dict": good.state_dict(), "metadata": {"innocent": RunsCode(marker)}}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_crafted_checkpoint_that_runs_code_is_refused(tmp_path, writer):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    payload = crafted_payload(marker)
    with open(path, "wb") as file:
        torch.save(payload, file) if writer == "torch.save" else pickle.dump(payload, file)
    with pytest.raises(CheckpointError, match="refused") as error:
        load_checkpoint(path)
    assert "evil.pt" in str(error.value)
    assert not marker.exists(), "loading the crafted checkpoint ran its code"
    # Control: the file really does run code when unpickled without weights_only.
    control = tmp_path / "control.txt"
    with open(tmp_path / "control.pt", "wb") as file:
        torch.save(crafted_payload(control), file)
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()


def write_payload(path, **changes):
    model = MODELS["VelocityField"]()
    payload = {"format_version": FORMAT_VERSION, "model_class": "VelocityField", "model_config": model.config,
               "state_dict": model.state_dict(), "metadata": {"steps": 3}}
    payload.update(changes)
    for key in [k for k, v in changes.items() if v is KeyError]:
        del payload[key]
    torch.save(payload, path)
    return path


def test_other_architecture_is_refused_with_what_it_holds_and_expects(tmp_path):
    path = save_checkpoint(MODELS["VelocityField"](), tmp_path / "fm.pt")
    with pytest.raises(CheckpointError, match="holds a VelocityField, expected a ConditionalVelocityField"):
        load_checkpoint(path, expected_class=ConditionalVelocityField)
    with pytest.raises(CheckpointError, match="expected a ConditionalVelocityFieldRadius"):
        load_checkpoint(path, expected_class="ConditionalVelocityFieldRadius")


def test_weights_of_the_wrong_shape_are_refused(tmp_path):
    wide = make_model(VelocityField, hidden_dim=64)
    path = write_payload(tmp_path / "shapes.pt", model_config={"time_emb_dim": 16, "hidden_dim": 32},
                         state_dict=wide.state_dict())
    with pytest.raises(CheckpointError, match=r"weights do not fit VelocityField\(.*'hidden_dim': 32"):
        load_checkpoint(path)


@pytest.mark.parametrize("changes, message", [
    ({"format_version": FORMAT_VERSION + 1}, f"format version {FORMAT_VERSION + 1}; this package reads version "
                                             f"{FORMAT_VERSION}"),
    ({"format_version": "1"}, "format version 1; this package reads"),
    ({"model_class": "UNet"}, "holds a 'UNet'; known model classes"),
    ({"model_class": ["VelocityField"]}, "names its model class with list"),
    ({"model_config": {"hidden_dim": -3}}, "weights do not fit"),
    ({"model_config": {"depth": 9}}, "weights do not fit"),
    ({"model_config": [1, 2]}, "not a dict"),
    ({"state_dict": KeyError}, r"lacks the entries \['state_dict'\]"),
    ({"metadata": KeyError, "model_config": KeyError}, "lacks the entries"),
])
def test_malformed_payloads_are_refused_with_a_clear_message(tmp_path, changes, message):
    path = write_payload(tmp_path / "odd.pt", **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_not_a_checkpoint_truncated_empty_and_missing_files(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds list, not a checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    good = save_checkpoint(MODELS["ConditionalVelocityFieldRadius"](), tmp_path / "good.pt").read_bytes()
    for cut in (len(good) // 2, 100, 0):
        (tmp_path / "cut.pt").write_bytes(good[:cut])
        with pytest.raises(CheckpointError, match="cut.pt"):
            load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path)                                   # a folder is not a checkpoint


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), zipped=st.booleans())
def test_random_bytes_are_refused_as_checkpoint_errors(tmp_path, data, zipped):
    path = tmp_path / "random.pt"
    if zipped:      # a zip archive like torch's, with random content
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", data)
    else:
        path.write_bytes(data)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


# ---------------------------------------------------------------- recipes and shipped checkpoints

@pytest.mark.slow
def test_short_fm_gaussian_recipe_still_reaches_its_quality():
    """1500 of the recipe's steps (8000 at the time of writing; about 1.5 minutes on one loaded core).

    The shipped model must reach off-mode fraction <= 0.025; this short run is held to <= 0.08
    (measured 0.031). W2 saturates early, so it keeps the shipped bound: <= 1.5x the floor that
    real data of the same size scores (``metrics.w2_floor``).
    """
    model, metadata = train_recipe("fm", "gaussian", n_steps=1500)
    quality = metadata["quality"]
    assert metadata["steps"] == 1500 and metadata["recipe"]["base"] == "gaussian"
    # The loss keeps a floor well above 0 (2.7 to 2.85 measured for short and full runs).
    assert np.isfinite(metadata["final_loss"]) and metadata["final_loss"] < 3.0
    assert quality == measure_quality(model, "gaussian")                # the stored figures are reproducible
    assert quality["off_mode_fraction"] <= 0.08, quality
    assert quality["w2"] <= 1.5 * w2_floor(2000)[0], quality


CHAPTER_KINDS = ("fm", "onehot", "radius")
KINDS_AND_BASES = shipped()
SHIPPED = [(kind, base) for kind, base in KINDS_AND_BASES if (PRETRAINED_DIR / f"{kind}_{base}.pt").is_file()]


def test_the_catalogue_lists_every_chapter_kind_on_every_base_and_each_companion_once():
    assert [pair for pair in KINDS_AND_BASES if pair[0] in CHAPTER_KINDS] == \
        [(kind, base) for kind in CHAPTER_KINDS for base in BASES]
    companions = [pair for pair in KINDS_AND_BASES if pair[0] not in CHAPTER_KINDS]
    assert companions == [(kind, "gaussian") for kind in MODEL_KINDS if kind not in CHAPTER_KINDS]
    assert KINDS_AND_BASES.index(("fm", "gaussian")) < KINDS_AND_BASES.index(("fm_reflow", "gaussian"))  # teacher first


def test_every_catalogued_checkpoint_is_shipped_and_nothing_else_is():
    assert SHIPPED == KINDS_AND_BASES
    on_disk = sorted(path.stem for path in PRETRAINED_DIR.glob("*.pt"))
    assert on_disk == sorted(f"{kind}_{base}" for kind, base in KINDS_AND_BASES)


def test_companions_change_only_their_coupling_or_teacher():
    base_recipe = recipe("fm", "gaussian")
    for kind, base in KINDS_AND_BASES:
        if kind in CHAPTER_KINDS:
            continue
        spec = recipe(kind, base)
        if "trainer" in spec:                     # 17b's diffusion model and CNF: their own trainer
            assert spec["trainer"] == kind and spec["base"] == base, kind
            continue
        changes = {key: spec[key] for key in set(spec) - set(base_recipe)}
        assert {key: spec[key] for key in base_recipe} == base_recipe, kind            # the same budget
        assert changes.get("coupling", "ot") in COUPLINGS and ("teacher" in changes) != ("coupling" in changes)
    with pytest.raises(ValueError, match="base must be 'gaussian' for the model kind 'fm_ot_block128', got 'unif"):
        recipe("fm_ot_block128", "uniform")
    with pytest.raises(ValueError, match="base must be 'gaussian' for the model kind 'fm_reflow'"):
        load_pretrained("fm_reflow", "ethz_logo")


def test_a_reflow_companion_starts_from_its_teacher(monkeypatch):
    import copy

    from gen_models_utilities.pretrained import recipes

    teacher, _ = load_pretrained("fm", "gaussian")
    model, metadata = train_recipe("fm_reflow", "gaussian", n_steps=1)
    moved = [float((a - b).detach().abs().max()) for a, b in zip(model.parameters(), teacher.parameters())]
    assert 0 < max(moved) < 0.05                                 # one small step away from the teacher
    assert metadata["recipe"]["teacher"] == "fm_gaussian" and metadata["steps"] == 1
    fresh = copy.deepcopy(teacher)
    for p in fresh.parameters():
        torch.nn.init.zeros_(p)
    monkeypatch.setattr(recipes, "load_pretrained", lambda kind, base: (fresh, {}))
    other, _ = recipes.train_recipe("fm_reflow", "gaussian", n_steps=1)
    assert max(float(p.detach().abs().max()) for p in other.parameters()) < 0.05   # the loaded teacher


@pytest.mark.slow
@pytest.mark.parametrize("kind, base", KINDS_AND_BASES)
def test_shipped_checkpoint_quality_matches_a_fresh_measurement(kind, base):
    if (kind, base) not in SHIPPED:
        pytest.skip(f"checkpoint {kind}_{base} is not built (run `make checkpoints`)")
    model, metadata = load_pretrained(kind, base)
    expected = recipe(kind, base)
    assert metadata["recipe_name"] == f"{kind}_{base}" and metadata["base"] == base
    assert metadata["recipe"] == expected and metadata["steps"] == expected["n_steps"]
    assert type(model).__name__ == expected["model"]
    if "trainer" in expected:                 # diffusion and the CNF: 17b measures them itself
        assert "quality" not in metadata
        return
    fresh = measure_quality(model, metadata["base"])
    assert set(fresh) == set(metadata["quality"])
    for key, stored in metadata["quality"].items():
        # Same seeds, so only floating-point differences between machines and thread counts remain.
        assert fresh[key] == pytest.approx(stored, rel=0.03, abs=0.005), (key, fresh[key], stored)


@pytest.mark.slow
def test_shipped_fm_gaussian_meets_its_targets():
    """The shipped unconditional model: off-mode fraction <= 0.025 and W2 <= 1.5x the data floor."""
    if ("fm", "gaussian") not in SHIPPED:
        pytest.skip("checkpoint fm_gaussian is not built (run `make checkpoints`)")
    model, metadata = load_pretrained("fm", "gaussian")
    samples = gen_models_utilities.generate(model, 1000, n_steps=100, seed=7).x
    fresh = ring_quality(samples)
    assert fresh.off_mode_fraction <= 0.025 and fresh.as_good_as_data, fresh
    assert fresh.w2 <= 1.5 * fresh.floor, fresh
    assert metadata["quality"]["off_mode_fraction"] <= 0.025
    assert metadata["quality"]["w2"] <= 1.5 * w2_floor(2000)[0]


def test_load_pretrained_names_the_bad_kind_or_base():
    with pytest.raises(ValueError, match=r"kind must be one of \['fm', 'onehot', 'radius', 'fm_ot_block256', "
                                         r".*got 'fm_gaussian'"):
        load_pretrained("fm_gaussian")
    with pytest.raises(ValueError, match="base must be one of .*got 'moon'"):
        load_pretrained("fm", "moon")


def test_pretrained_models_offer_the_bases_with_a_checkpoint(monkeypatch, tmp_path):
    from gen_models_utilities.base_distributions import BaseDistribution, register_base
    from gen_models_utilities.pretrained import catalogue as checkpoints

    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    save_checkpoint(VelocityField(hidden_dim=8), tmp_path / "fm_uniform.pt", base="uniform")
    models = checkpoints.PretrainedModels("fm")
    assert list(models) == ["uniform"] and "gaussian" not in models and len(models) == 1
    register_base(BaseDistribution("spot", "a point", lambda n, g: torch.zeros(n, 2)))
    try:
        save_checkpoint(VelocityField(hidden_dim=8), tmp_path / "fm_spot.pt", base="spot")
        assert list(models) == ["uniform", "spot"]           # a new base appears with its checkpoint
        assert models["spot"] is models["spot"] and models["spot"].config["hidden_dim"] == 8
    finally:
        del BASES["spot"]
    with pytest.raises(KeyError):
        models["gaussian"]
