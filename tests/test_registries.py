"""One table per concept: a base or a solver registered at run time is offered everywhere."""
import math

import pytest
import torch

from gen_models_utilities import VelocityField, base_distributions, solvers
from gen_models_utilities.base_distributions import BASES, BaseDistribution, get_base, register_base, sample_base
from gen_models_utilities.baselines.likelihood import base_log_density, log_likelihood
from gen_models_utilities.solvers import SOLVERS, Solver, register_solver, solve_ode, solver_names, solver_sweep


def ring_sample(n, generator):
    """Points on the unit circle: a base with no density formula."""
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    return torch.stack([angle.cos(), angle.sin()], dim=1)


def wide_gaussian_log_density(x):
    return -0.125 * (x ** 2).sum(dim=1) - math.log(8 * math.pi)


def ralston_step(velocity, x, t, h):
    """Ralston's second-order step: the velocity two thirds of the way along an Euler step."""
    k1 = velocity(x, t)
    k2 = velocity(x + 2 / 3 * h * k1, t + 2 / 3 * h)
    return x + h * (0.25 * k1 + 0.75 * k2)


@pytest.fixture
def circle_base():
    base = register_base(BaseDistribution("circle", "unit circle", ring_sample, aliases=("ring",)))
    yield base
    del BASES["circle"]


@pytest.fixture
def wide_base():
    base = register_base(BaseDistribution("wide", "N(0, 4 I)", lambda n, g: 2 * torch.randn(n, 2, generator=g),
                                          wide_gaussian_log_density))
    yield base
    del BASES["wide"]


@pytest.fixture
def ralston():
    solver = register_solver(Solver("ralston", 2, 2, ralston_step))
    yield solver
    del SOLVERS["ralston"]


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return VelocityField(hidden_dim=16)


def test_a_registered_base_is_sampled_by_name_and_alias(circle_base):
    points = sample_base("ring", 64, seed=0)
    assert points.shape == (64, 2) and points.dtype == torch.float32
    assert torch.allclose(points.norm(dim=1), torch.ones(64), atol=1e-5)
    assert torch.equal(points, sample_base("circle", 64, seed=0))
    assert get_base("ring") is circle_base


def test_a_registered_base_is_generated_from(circle_base):
    def zero_field(x, t):                      # the flow is the identity: generate returns its start
        return torch.zeros_like(x)

    solution = solvers.generate(zero_field, 32, base="circle", n_steps=1, seed=3)
    assert torch.equal(solution.x, sample_base("circle", 32, seed=3))
    assert torch.allclose(solution.x.norm(dim=1), torch.ones(32), atol=1e-5)


def test_unknown_bases_name_every_registered_one(circle_base):
    with pytest.raises(ValueError, match="circle") as error:
        sample_base("moon", 5)
    assert "gaussian" in str(error.value) and "'moon'" in str(error.value)


def test_a_registered_density_is_used_by_the_likelihood(wide_base):
    x = torch.randn(5, 2)
    assert torch.allclose(base_log_density("wide", x), wide_gaussian_log_density(x))

    def zero_field(x, t):
        return torch.zeros_like(x)

    # Under a zero field the flow is the identity, so log p_1 is the base's own density.
    assert torch.allclose(log_likelihood(zero_field, x, "wide", n_steps=2), wide_gaussian_log_density(x), atol=1e-5)


def test_a_base_without_density_is_refused_by_the_likelihood(circle_base):
    with pytest.raises(ValueError, match="known density"):
        base_log_density("circle", torch.zeros(1, 2))


def test_a_registered_solver_is_accepted_by_solve_ode(ralston):
    def linear(x, t):
        return -x

    x0 = torch.ones(3, 2, dtype=torch.float64)
    solution = solve_ode(linear, x0, n_steps=8, method="ralston")
    assert solution.nfe == 16
    error = float((solution.x - math.exp(-1)).abs().max())
    euler_error = float((solve_ode(linear, x0, n_steps=8, method="euler").x - math.exp(-1)).abs().max())
    assert error < 2e-3 < 2e-2 < euler_error          # second order: about 1e-3 against Euler's 2.4e-2
    assert "ralston" in solver_names() and solver_names()[-1] == "dopri5"


def test_a_registered_solver_joins_the_sweep(ralston, small_model):
    sweep = solver_sweep(small_model, torch.zeros(4, 2), budgets=(1, 2, 4))
    assert list(sweep) == list(solver_names(adaptive=False)) and "ralston" in sweep
    assert [s.nfe for s in sweep["ralston"]] == [2, 4]            # budget 1 fits no step of 2 evaluations
    assert [s.nfe for s in sweep["euler"]] == [1, 2, 4]


def test_registering_bad_entries_is_refused():
    with pytest.raises(TypeError, match="BaseDistribution"):
        register_base("circle")
    with pytest.raises(TypeError, match="solver must be a Solver"):
        register_solver("ralston")
    with pytest.raises(TypeError, match="step"):
        register_solver(Solver("ralston", 2, 2, 3))
    with pytest.raises(ValueError, match="evaluations"):
        register_solver(Solver("ralston", 2, 0, ralston_step))
    with pytest.raises(ValueError, match="order"):
        register_solver(Solver("ralston", 0, 2, ralston_step))
    assert "ralston" not in SOLVERS and base_distributions.BASES.keys() >= {"gaussian", "uniform", "ethz_logo"}


# ---------------------------------------------------------------- one registry shape for every table

def _tables():
    from gen_models_utilities import couplings, models, pretrained

    return {"bases": (BASES, base_distributions.register_base), "solvers": (SOLVERS, register_solver),
            "couplings": (couplings.COUPLINGS, couplings.register_coupling),
            "model classes": (models.MODEL_CLASSES, models.register_model_class),
            "model kinds": (pretrained.MODEL_KINDS, pretrained.register_model_kind)}


@pytest.mark.parametrize("table", ["bases", "solvers", "couplings", "model classes", "model kinds"])
def test_every_table_holds_frozen_entries_under_their_names(table):
    import dataclasses

    entries, _ = _tables()[table]
    assert entries, table
    for name, entry in entries.items():
        assert dataclasses.is_dataclass(entry) and entry.name == name, (table, name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.name = "changed"


def test_every_table_is_filled_by_its_register_function_and_refuses_other_entries():
    from gen_models_utilities.couplings import Coupling
    from gen_models_utilities.pretrained import ModelKind

    new = {"bases": BaseDistribution("spot", "a point", lambda n, g: torch.zeros(n, 2)),
           "solvers": Solver("ralston", 2, 2, ralston_step),
           "couplings": Coupling("reversed", "reversed rows", lambda x0, x1, labels=None: x0.flip(0)),
           "model kinds": ModelKind("fm_small", {"model": "VelocityField", "n_steps": 10}, "gaussian")}
    for table, entry in new.items():
        entries, register = _tables()[table]
        try:
            assert register(entry) is entry and entries[entry.name] is entry
        finally:
            del entries[entry.name]
        with pytest.raises(TypeError):
            register(entry.name)                   # a bare name is not an entry
    classes, register = _tables()["model classes"]

    class Tiny(torch.nn.Module):
        pass

    try:
        assert register(Tiny) is Tiny and classes["Tiny"].cls is Tiny
    finally:
        del classes["Tiny"]
    with pytest.raises(TypeError, match="nn.Module class"):
        register(len)


def test_a_registered_coupling_is_used_by_train_and_labelled():
    from gen_models_utilities import couplings, train

    calls = []

    def reversed_pairs(x0, x1, labels=None):
        calls.append(len(x0))
        return x0.flip(0)

    couplings.register_coupling(couplings.Coupling("reversed", "reversed rows", reversed_pairs))
    try:
        train(VelocityField(hidden_dim=8), torch.randn(64, 2), n_steps=3, batch_size=16, coupling="reversed",
              seed=0, progress=False)
        assert calls == [16, 16, 16] and couplings.COUPLINGS["reversed"].label == "reversed rows"
    finally:
        del couplings.COUPLINGS["reversed"]


def test_solvers_record_order_and_evaluations_adaptive_ones_included():
    assert {name: (s.order, s.evaluations, s.adaptive) for name, s in SOLVERS.items()} == {
        "euler": (1, 1, False), "midpoint": (2, 2, False), "heun": (2, 2, False), "rk4": (4, 4, False),
        "dopri5": (5, 6, True)}
    assert solver_names(adaptive=True) == ("dopri5",) and SOLVERS["rk4"].steps_for_budget(10) == 2


def test_every_shipped_checkpoint_loads_in_a_fresh_interpreter():
    """Model classes register where they are defined: no import before load_pretrained is needed."""
    import json
    import subprocess
    import sys

    from gen_models_utilities.pretrained import shipped

    script = ("import json\nfrom gen_models_utilities.pretrained import load_pretrained, shipped\n"
              "print(json.dumps([type(load_pretrained(k, b)[0]).__name__ for k, b in shipped()]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    names = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(names) == len(shipped()) and "DiffusionModel" in names
