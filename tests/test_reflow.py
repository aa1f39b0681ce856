"""Reflow: pairs made by a model, and retraining on a fixed coupling."""
import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, VelocityField
from gen_models_utilities.reflow import ReflowPairs, reflow_pairs, train_on_pairs
from gen_models_utilities.solvers import solve_ode


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return VelocityField(hidden_dim=32)


def test_reflow_pairs_are_the_models_own_ode_solutions(small_model):
    pairs = reflow_pairs(small_model, 50, method="rk4", n_steps=5, seed=3)
    assert pairs.x0.shape == pairs.x1.shape == (50, 2) and len(pairs) == 50 and pairs.conditions is None
    torch.testing.assert_close(pairs.x1, solve_ode(small_model, pairs.x0, n_steps=5, method="rk4").x)
    again = reflow_pairs(small_model, 50, method="rk4", n_steps=5, seed=3)
    assert torch.equal(pairs.x0, again.x0) and torch.equal(pairs.x1, again.x1)


def test_conditional_pairs_carry_one_condition_per_pair():
    torch.manual_seed(0)
    model = ConditionalVelocityField(n_classes=3, hidden_dim=16)
    codes = torch.eye(3)[torch.tensor([0, 1, 2, 2])]
    pairs = reflow_pairs(model, 4, n_steps=2, conditions=codes, seed=0)
    assert torch.equal(pairs.conditions, codes)
    shared = reflow_pairs(model, 4, n_steps=2, conditions=torch.tensor([0.0, 1.0, 0.0]), seed=0)
    assert shared.conditions.shape == (4, 3)


def test_training_on_a_fixed_coupling_learns_it(small_model):
    # Pairs joined by one constant shift: the straight-line field is that shift everywhere,
    # so after training a single Euler step must carry x0 to its own partner.
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    shift = torch.tensor([2.0, -1.0])
    pairs = ReflowPairs(x0, x0 + shift)
    before = (solve_ode(small_model, x0[:200], n_steps=1).x - (x0[:200] + shift)).norm(dim=1).mean()
    result = train_on_pairs(small_model, pairs, n_steps=150, batch_size=64, lr=1e-2, seed=0)
    after = (solve_ode(small_model, x0[:200], n_steps=1).x - (x0[:200] + shift)).norm(dim=1).mean()
    assert len(result.losses) == 150 and result.recipe["coupling"] == "reflow"
    assert after < 0.1 < before
    assert sum(result.losses[-20:]) < 0.1 * sum(result.losses[:20])


def test_training_on_conditional_pairs_uses_the_conditions():
    # Class 0 moves right and class 1 moves left from the same base points: only a model
    # that reads the condition can fit both.
    torch.manual_seed(0)
    model = ConditionalVelocityField(n_classes=2, hidden_dim=32)
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    right, left = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.0])
    pairs = ReflowPairs(torch.cat([x0, x0]), torch.cat([x0 + right, x0 + left]),
                        torch.eye(2)[torch.tensor([0] * 1000 + [1] * 1000)])
    train_on_pairs(model, pairs, n_steps=150, batch_size=64, lr=1e-2, seed=0)
    for code, shift in ((torch.tensor([1.0, 0.0]), right), (torch.tensor([0.0, 1.0]), left)):
        moved = solve_ode(model, x0[:100], n_steps=1, condition=code).x - x0[:100]
        assert (moved.mean(dim=0) - shift).norm() < 0.3


def test_bad_arguments_are_refused(small_model):
    pairs = ReflowPairs(torch.randn(10, 2), torch.randn(10, 2))
    with pytest.raises(TypeError, match="pairs"):
        train_on_pairs(small_model, (pairs.x0, pairs.x1))
    with pytest.raises(ValueError, match="n_steps"):
        train_on_pairs(small_model, pairs, n_steps=0)
    with pytest.raises(ValueError, match="same shape"):
        train_on_pairs(small_model, ReflowPairs(torch.randn(10, 2), torch.randn(9, 2)))
    with pytest.raises(ValueError, match="conditions"):
        train_on_pairs(ConditionalVelocityField(n_classes=2, hidden_dim=8), pairs)
    with pytest.raises(ValueError, match="n_pairs"):
        reflow_pairs(small_model, 0)
    with pytest.raises(ValueError, match="method"):
        reflow_pairs(small_model, 5, method="leapfrog")


def test_reflow_training_draws_times_as_asked(small_model, monkeypatch):
    from gen_models_utilities import reflow

    drawn = []
    real = reflow._times                 # the trainers' per-step draw (sample_times is its checked door)
    monkeypatch.setattr(reflow, "_times", lambda n, how, rng: drawn.append(how) or real(n, how, rng))
    pairs = ReflowPairs(torch.randn(40, 2), torch.randn(40, 2))
    result = train_on_pairs(small_model, pairs, n_steps=3, batch_size=8, time_sampling="logit_normal", seed=0)
    assert drawn == ["logit_normal"] * 3 and result.recipe["time_sampling"] == "logit_normal"
    assert train_on_pairs(small_model, pairs, n_steps=2, batch_size=8, seed=0).recipe["time_sampling"] == "uniform"
    with pytest.raises(ValueError, match="time_sampling"):
        train_on_pairs(small_model, pairs, n_steps=2, time_sampling="beta")
