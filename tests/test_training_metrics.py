"""The training routine and the quality metrics."""
import numpy as np
import pytest
import torch

from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField,
                                  create_ring_gaussians, generate, off_mode_fraction, path_straightness,
                                  ring_quality, samples_per_mode, train, wasserstein2)


def test_training_lowers_the_loss_and_is_reproducible(ring_data):
    points, _ = ring_data

    def run():
        torch.manual_seed(0)
        model = VelocityField(hidden_dim=32)
        return model, train(model, points, n_steps=300, batch_size=128, lr=3e-3, seed=1, progress=False)

    model, result = run()
    assert len(result.losses) == 300
    assert np.mean(result.losses[-50:]) < 0.8 * np.mean(result.losses[:20])
    assert run()[1].losses == result.losses
    assert not model.training                                   # left in eval mode for sampling
    assert result.steps_per_second > 0


@pytest.mark.parametrize("base", ["uniform", "ethz_logo"])
def test_training_draws_from_the_chosen_base(ring_data, base):
    points, _ = ring_data
    model = VelocityField(hidden_dim=16)
    result = train(model, points, base=base, n_steps=20, batch_size=64, seed=0, progress=False)
    assert result.base == base and np.all(np.isfinite(result.losses))


def test_conditional_models_train(ring_data):
    points, labels = ring_data
    onehot = ConditionalVelocityField(hidden_dim=16)
    train(onehot, points, labels=labels, n_steps=10, batch_size=32, seed=0, condition_dropout=0.2, progress=False)
    radius = ConditionalVelocityFieldRadius(hidden_dim=16)
    train(radius, points, n_steps=10, batch_size=32, seed=0, progress=False)
    low, high = radius.trained_radius_range.tolist()
    norms = np.linalg.norm(points, axis=1)
    # the radii seen often: 1st to 99th percentile, strictly inside the extremes
    assert low == pytest.approx(np.quantile(norms, 0.01), rel=1e-5)
    assert high == pytest.approx(np.quantile(norms, 0.99), rel=1e-5)
    assert norms.min() < low < high < norms.max()
    with pytest.raises(ValueError, match="needs labels"):
        train(ConditionalVelocityField(), points, n_steps=1, progress=False)


def test_ema_leaves_averaged_weights(ring_data):
    points, _ = ring_data
    torch.manual_seed(0)
    plain, averaged = VelocityField(hidden_dim=16), VelocityField(hidden_dim=16)
    averaged.load_state_dict(plain.state_dict())
    train(plain, points, n_steps=50, seed=0, progress=False)
    train(averaged, points, n_steps=50, seed=0, ema_decay=0.9, progress=False)
    assert not torch.equal(plain.net[0].weight, averaged.net[0].weight)


def test_bad_training_arguments(ring_data):
    points, _ = ring_data
    model = VelocityField(hidden_dim=8)
    for kwargs, message in [({"n_steps": 0}, "n_steps"), ({"batch_size": -1}, "batch_size"),
                            ({"lr": 0}, "lr"), ({"base": "moon"}, "base"), ({"schedule": "step"}, "schedule"),
                            ({"coupling": "greedy"}, "coupling"), ({"condition_dropout": 2}, "condition_dropout")]:
        with pytest.raises(ValueError, match=message):
            train(model, points, progress=False, **kwargs)
    with pytest.raises(TypeError, match="model"):
        train("not a model", points)


def test_wasserstein2_on_known_shifts():
    x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    assert wasserstein2(x, x) == pytest.approx(0.0, abs=1e-6)
    assert wasserstein2(x, x + np.array([3.0, 4.0], dtype=np.float32)) == pytest.approx(5.0, rel=1e-5)
    assert wasserstein2(x, x[::-1]) == pytest.approx(0.0, abs=1e-6)   # order does not matter


def test_ring_figures_on_data_and_on_garbage():
    points, _ = create_ring_gaussians(20000, seed=4)
    assert off_mode_fraction(points) == pytest.approx(np.exp(-4.5), abs=0.003)
    counts = samples_per_mode(points)
    assert counts.sum() == pytest.approx(20000 * (1 - np.exp(-4.5)), rel=0.01)
    origin = np.zeros((100, 2))
    assert off_mode_fraction(origin) == 1.0 and samples_per_mode(origin).sum() == 0


def test_straightness():
    line = torch.linspace(0, 1, 11)[:, None, None] * torch.tensor([[[1.0, 2.0]]])
    assert path_straightness(line) == pytest.approx(1.0)
    zigzag = torch.tensor([[[0.0, 0.0]], [[1.0, 1.0]], [[2.0, 0.0]]])
    assert path_straightness(zigzag) == pytest.approx(2 / (2 * np.sqrt(2)))


def test_trained_model_quality(trained_fm):
    samples = generate(trained_fm, 1000, n_steps=100, seed=3).x
    quality = ring_quality(samples)
    assert quality.off_mode_fraction < 0.05 and quality.n_samples == 1000
    assert str(quality).startswith(f"W2 {quality.w2:.2f} (data: {quality.floor:.2f}")
