"""Reproducibility: a seed (or generator) fixes every draw, and seeded calls leave global RNGs alone."""
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from gen_models_utilities import (RandomBatches, VelocityField, create_ring_gaussians, generate,
                                  load_eth_z_logo_data, make_conditional_loader_onehot,
                                  make_conditional_loader_radius, make_loader, sample_base,
                                  set_seed, train)
from gen_models_utilities.pretrained.recipes import train_recipe
from gen_models_utilities.training import sample_times


def global_states():
    """Snapshot of Python's, NumPy's and torch's global random state."""
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def assert_same_states(before, after):
    assert before[0] == after[0], "Python's random state changed"
    assert all(np.array_equal(a, b) for a, b in zip(before[1], after[1])), "NumPy's global state changed"
    assert torch.equal(before[2], after[2]), "torch's global generator changed"


def first_batches(loader, n=2):
    batches = []
    for i, batch in enumerate(loader):
        if i == n:
            break
        batches.append(torch.cat([part.reshape(len(part), -1).float() for part in batch], dim=1))
    return torch.cat(batches)


def small_model():
    """A small network with fixed initial weights (seeded inside fork_rng: global state kept)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return VelocityField(hidden_dim=32)


POINTS, LABELS = create_ring_gaussians(300, seed=5)


def _two_batches(batches):
    (x_a, c_a), (x_b, c_b) = batches.sample(), batches.sample()
    return x_a, c_a, x_b, c_b

# Each draw maps a seed to a tensor; with ``seed=None`` it must use the global torch generator.
DRAWS = {
    "create_ring_gaussians": lambda seed: torch.from_numpy(create_ring_gaussians(50, seed=seed)[0]),
    "load_eth_z_logo_data": lambda seed: torch.from_numpy(load_eth_z_logo_data(50, seed=seed)),
    "sample_base gaussian": lambda seed: sample_base("gaussian", 50, seed=seed),
    "sample_base uniform": lambda seed: sample_base("uniform", 50, seed=seed),
    "sample_base ethz_logo": lambda seed: sample_base("ethz_logo", 50, seed=seed),
    "make_loader": lambda seed: first_batches(make_loader(POINTS, 64, seed=seed)),
    "make_conditional_loader_onehot":
        lambda seed: first_batches(make_conditional_loader_onehot(POINTS, LABELS, 64, seed=seed)),
    "make_conditional_loader_radius": lambda seed: first_batches(make_conditional_loader_radius(POINTS, 64, seed=seed)),
    "RandomBatches": lambda seed: torch.cat(_two_batches(RandomBatches(POINTS, 32, LABELS, seed=seed)), dim=1),
    "generate": lambda seed: generate(small_model(), 40, n_steps=5, seed=seed).x,
    "generate logo": lambda seed: generate(small_model(), 40, base="logo", n_steps=5, seed=seed).x,
    "train losses": lambda seed: torch.tensor(
        train(small_model(), POINTS, n_steps=15, batch_size=32, seed=seed, progress=False).losses),
    "train ot losses": lambda seed: torch.tensor(
        train(small_model(), POINTS, n_steps=5, batch_size=32, coupling="ot", seed=seed,
              progress=False).losses),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_same_seed_same_bits_and_global_state_untouched(name):
    draw = DRAWS[name]
    before = global_states()
    first, second, other = draw(7), draw(7), draw(8)
    assert_same_states(before, global_states())
    assert torch.equal(first, second), f"{name}: the same seed gave different values"
    assert not torch.equal(first, other), f"{name}: a different seed gave the same values"


def test_generator_argument_matches_seed_and_is_advanced():
    gen = torch.Generator().manual_seed(11)
    a = sample_base("gaussian", 20, generator=gen)
    b = sample_base("gaussian", 20, generator=gen)
    assert torch.equal(a, sample_base("gaussian", 20, seed=11))
    assert not torch.equal(a, b), "a shared generator must move on between calls"
    gen = torch.Generator().manual_seed(4)
    batches = RandomBatches(POINTS, 16, generator=gen)
    assert not torch.equal(batches.sample()[0], batches.sample()[0])
    assert torch.equal(first_batches(make_loader(POINTS, 64, generator=torch.Generator().manual_seed(2))),
                       first_batches(make_loader(POINTS, 64, seed=2)))


def test_sample_times_with_generator_leaves_global_state():
    before = global_states()
    t1 = sample_times(30, "logit_normal", generator=torch.Generator().manual_seed(0))
    t2 = sample_times(30, "logit_normal", generator=torch.Generator().manual_seed(0))
    assert_same_states(before, global_states())
    assert torch.equal(t1, t2)


def test_unseeded_calls_follow_set_seed():
    """Without a seed the global generators are used, so set_seed makes them repeatable."""
    set_seed(21)
    first = (sample_base("gaussian", 10), random.random(), np.random.rand())
    set_seed(21)
    second = (sample_base("gaussian", 10), random.random(), np.random.rand())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


def test_train_recipe_leaves_global_state_and_repeats(monkeypatch):
    from gen_models_utilities.pretrained import recipes

    monkeypatch.setattr(recipes, "measure_quality", lambda model, base: {})   # quality is tested elsewhere
    before = global_states()
    model_a, meta_a = train_recipe("fm", "gaussian", n_steps=8)
    model_b, _ = train_recipe("fm", "gaussian", n_steps=8)
    assert_same_states(before, global_states())
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key
    assert meta_a["steps"] == 8


IMPORT_CHECK = r"""
import json, pkgutil, importlib, random
import numpy as np, torch, matplotlib
random.seed(123); np.random.seed(123); torch.manual_seed(123)
states = (random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist())
rc = {k: repr(v) for k, v in matplotlib.rcParams.items()}
import gen_models_utilities
names = []
for module in pkgutil.walk_packages(gen_models_utilities.__path__, "gen_models_utilities."):
    importlib.import_module(module.name)
    names.append(module.name.removeprefix("gen_models_utilities."))
after = (random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist())
rc_after = {k: repr(v) for k, v in matplotlib.rcParams.items()}
print(json.dumps({"modules": names, "rng_same": states == after,
                  "rc_changed": sorted(k for k in rc if rc[k] != rc_after.get(k))}))
"""


@pytest.mark.slow
def test_importing_the_package_seeds_nothing_and_styles_nothing():
    """In a fresh interpreter, importing every module leaves RNG states and rcParams as they were."""
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"pretrained.store", "baselines.diffusion", "plotting", "widgets"} <= set(report["modules"])
    assert report["rng_same"], "importing the package changed a global random state"
    assert report["rc_changed"] == [], f"importing the package changed rcParams: {report['rc_changed']}"
