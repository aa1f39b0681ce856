"""Velocity models, the straight path and its loss, and the loaders."""
import numpy as np
import pytest
import torch

from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, RandomBatches,
                                  VelocityField, class_code, conditional_velocity, flow_matching_loss, interpolate,
                                  make_conditional_loader_onehot, make_loader)


def test_chapter_architecture():
    model = VelocityField()
    linear = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [128, 128, 128, 128, 2]
    assert linear[0].in_features == 2 + 16
    assert ConditionalVelocityField(n_classes=5).net[0].in_features == 2 + 16 + 5
    assert ConditionalVelocityFieldRadius().net[0].in_features == 2 + 16 + 16


def test_time_may_be_a_float_or_a_column():
    torch.manual_seed(0)
    model = VelocityField()
    x = torch.randn(6, 2)
    column = model(x, torch.full((6, 1), 0.3))
    assert torch.allclose(model(x, 0.3), column)
    with pytest.raises(RuntimeError):                                  # (B,) times do not broadcast
        model(x, torch.full((6,), 0.3))


def test_forward_is_teaching_code():
    # The chapter prints forward: about ten lines, no checks, no in-place tricks.
    import inspect

    from gen_models_utilities import models
    source = inspect.getsource(models.VelocityModel.forward)
    body = source.split('"""')[-1].strip().splitlines()
    assert len(body) <= 6 and "raise" not in source and "inplace" not in inspect.getsource(models)


def test_class_code_refuses_a_single_unwrapped_label():
    # A 0-d array once became shape (1,) on its way to a tensor (np.ascontiguousarray does that).
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\), got shape \(\)"):
        class_code(np.array(1), 3)
    assert torch.equal(class_code(np.array([2, 0])[::-1], 3), torch.tensor([[1.0, 0, 0], [0, 0, 1]]))


def test_one_condition_row_is_shared_by_every_point():
    model = ConditionalVelocityField(n_classes=8)
    x = torch.randn(4, 2)
    code = class_code([1], 8)
    assert torch.allclose(model(x, 0.5, code), model(x, 0.5, code.repeat(4, 1)))


def test_radius_extrapolation_flag():
    model = ConditionalVelocityFieldRadius()
    assert not model.is_extrapolation(1.0)                            # unknown range: no claim
    model.trained_radius_range.copy_(torch.tensor([2.3, 3.7]))
    assert model.is_extrapolation(1.0) and model.is_extrapolation(4.0)
    assert not model.is_extrapolation(3.0)


def test_interpolation_and_target():
    x0, x1 = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, -4.0]])
    assert torch.allclose(interpolate(x0, x1, torch.tensor([[0.25]])), torch.tensor([[0.5, -1.0]]))
    assert torch.allclose(interpolate(x0, x1, torch.zeros(1, 1)), x0)
    assert torch.allclose(interpolate(x0, x1, torch.ones(1, 1)), x1)
    assert torch.allclose(conditional_velocity(x0, x1), torch.tensor([[2.0, -4.0]]))
    assert torch.allclose(interpolate(x0, x1, 0.25), torch.tensor([[0.5, -1.0]]))


def test_path_refuses_shapes_that_would_broadcast_silently():
    # With B = 2, t of shape (2,) against x0 (2, 2) would broadcast into a wrong (2, 2) answer.
    x0, x1 = torch.zeros(2, 2), torch.ones(2, 2)
    with pytest.raises(ValueError, match=r"t must be a number or have shape \(2, 1\)"):
        interpolate(x0, x1, torch.rand(2))
    with pytest.raises(ValueError, match="same shape"):
        conditional_velocity(x0, torch.ones(2, 1))
    with pytest.raises(ValueError, match="t must be finite"):
        interpolate(x0, x1, float("nan"))
    with pytest.raises(TypeError, match="model must be callable"):
        flow_matching_loss("net", x0, x1, torch.rand(2, 1))


def test_loss_is_zero_only_for_the_exact_target():
    class Exact(torch.nn.Module):
        def forward(self, x, t):
            return torch.ones_like(x)
    x0 = torch.zeros(8, 2)
    x1 = torch.ones(8, 2)
    t = torch.rand(8, 1)
    assert flow_matching_loss(Exact(), x0, x1, t).item() == 0.0
    assert flow_matching_loss(Exact(), x1, x0, t).item() == pytest.approx(4.0)


def test_loader_keeps_a_short_last_batch(ring_data):
    points, _ = ring_data
    with pytest.warns(UserWarning, match="larger than"):
        loader = make_loader(points[:10], batch_size=128)
    batches = list(loader)
    assert len(batches) == 1 and batches[0][0].shape == (10, 2)
    assert sum(b[0].shape[0] for b in make_loader(points, batch_size=300)) == len(points)


def test_onehot_loader_matches_labels(ring_data):
    points, labels = ring_data
    loader = make_conditional_loader_onehot(points, labels, batch_size=2000, n_classes=8, shuffle=False)
    x1, c = next(iter(loader))
    np.testing.assert_array_equal(c.argmax(dim=1).numpy(), labels)
    with pytest.raises(ValueError, match="labels must lie in"):
        make_conditional_loader_onehot(points, labels, batch_size=10, n_classes=4)


def test_random_batches_keep_conditions_aligned():
    points = torch.arange(20, dtype=torch.float32).reshape(10, 2)
    conditions = points[:, :1] * 10
    batches = RandomBatches(points, 32, conditions, generator=torch.Generator().manual_seed(0))
    x1, c = batches.sample()
    assert x1.shape == (32, 2) and torch.equal(c, x1[:, :1] * 10)
