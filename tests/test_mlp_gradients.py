"""The hand-written backward pass must give autograd's loss and gradients exactly, and train
must reach the same weights whichever of the two it uses."""
import pytest
import torch
from torch import nn

from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField,
                                  create_ring_gaussians, diffusion, reflow, train)
from gen_models_utilities.mlp_gradients import VelocityModelGradients, linear_relu_layers


def _model_and_condition(kind: str, batch: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "plain":
            return VelocityField(), None
        if kind == "onehot":
            labels = torch.randint(0, 8, (batch,), generator=generator)
            return ConditionalVelocityField(), nn.functional.one_hot(labels, 8).float()
        return ConditionalVelocityFieldRadius(), torch.rand(batch, 1, generator=generator) * 4


def _autograd_loss_and_grads(model, x, t, condition, target):
    model.zero_grad(set_to_none=True)
    prediction = model(x, t) if condition is None else model(x, t, condition)
    loss = nn.functional.mse_loss(prediction, target)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("kind", ["plain", "onehot", "radius"])
@pytest.mark.parametrize("batch", [1, 7, 256])
def test_loss_and_gradients_equal_autograds_bit_for_bit(kind, batch):
    model, condition = _model_and_condition(kind, batch)
    generator = torch.Generator().manual_seed(1)
    x, target = torch.randn(batch, 2, generator=generator), torch.randn(batch, 2, generator=generator)
    t = torch.rand(batch, 1, generator=generator)
    expected_loss, expected = _autograd_loss_and_grads(model, x, t, condition, target)
    model.zero_grad(set_to_none=True)
    loss = VelocityModelGradients(model).mse_backward(x, t, condition, target)
    assert torch.equal(loss, expected_loss)
    for (name, parameter), grad in zip(model.named_parameters(), expected):
        assert parameter.grad is not None, name
        assert parameter.grad.is_contiguous(), name         # fused AdamW reads .grad as flat memory
        assert torch.equal(parameter.grad, grad), name


def _forced_autograd(model):
    """Any forward hook sends train down the autograd path."""
    model.register_forward_hook(lambda module, inputs, output: None)
    assert not VelocityModelGradients.supports(model)
    return model


@pytest.mark.parametrize("kind", ["plain", "onehot", "radius"])
def test_train_reaches_the_same_weights_with_either_backward(kind):
    data, labels = create_ring_gaussians(300, seed=0)
    runs = []
    for force_autograd in (False, True):
        model, _ = _model_and_condition(kind, 1)
        assert VelocityModelGradients.supports(model)
        if force_autograd:
            _forced_autograd(model)
        extra = {"labels": labels, "condition_dropout": 0.3} if kind == "onehot" else {}
        result = train(model, data, n_steps=25, batch_size=64, seed=3, progress=False, **extra)
        runs.append((result.losses, [p.detach().clone() for p in model.parameters()]))
    (fast_losses, fast_weights), (autograd_losses, autograd_weights) = runs
    assert fast_losses == autograd_losses
    assert all(torch.equal(a, b) for a, b in zip(fast_weights, autograd_weights))


@pytest.mark.parametrize("trainer", ["diffusion", "reflow"])
def test_the_other_trainers_reach_the_same_weights_with_either_backward(trainer):
    data = create_ring_gaussians(300, seed=0)[0]
    runs = []
    for force_autograd in (False, True):
        torch.manual_seed(0)
        model = VelocityField()
        pairs = reflow.reflow_pairs(VelocityField(), 128, seed=0) if trainer == "reflow" else None
        if force_autograd:
            _forced_autograd(model)
        if trainer == "diffusion":
            result = diffusion.train_diffusion(model, data, n_steps=20, batch_size=64, seed=3, progress=False)
        else:
            result = reflow.train_on_pairs(model, pairs, n_steps=20, batch_size=64, seed=3, progress=False)
        runs.append((result.losses, [p.detach().clone() for p in model.parameters()]))
    (fast_losses, fast_weights), (autograd_losses, autograd_weights) = runs
    assert fast_losses == autograd_losses
    assert all(torch.equal(a, b) for a, b in zip(fast_weights, autograd_weights))


def test_a_missing_or_unexpected_condition_is_refused():
    batch = torch.zeros(4, 2), torch.zeros(4, 1)
    with pytest.raises(ValueError, match=r"ConditionalVelocityField takes a condition of width 8, got none"):
        VelocityModelGradients(ConditionalVelocityField()).mse_backward(*batch, None, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"VelocityField takes a condition of width 0, got \(4, 1\)"):
        VelocityModelGradients(VelocityField()).mse_backward(*batch, torch.zeros(4, 1), torch.zeros(4, 2))


def test_a_model_it_cannot_differentiate_is_refused_clearly():
    class Doubled(VelocityField):
        def forward(self, x, t, condition=None):
            return 2 * super().forward(x, t, condition)

    model = Doubled()
    assert not VelocityModelGradients.supports(model)
    with pytest.raises(ValueError, match="cannot differentiate Doubled"):
        VelocityModelGradients(model)


@pytest.mark.parametrize("change", ["double", "frozen", "extra_child", "tanh", "param_hook", "not_velocity_model"])
def test_supports_only_the_models_as_built(change):
    model = VelocityField()
    if change == "double":
        model = model.double()
    elif change == "frozen":
        model.net[0].weight.requires_grad_(False)
    elif change == "extra_child":
        model.extra = nn.Linear(2, 2)
    elif change == "tanh":
        model.net[1] = nn.Tanh()
    elif change == "param_hook":
        model.net[0].weight.register_hook(lambda grad: grad * 2)
    else:
        model = nn.Sequential(nn.Linear(2, 2))
    assert not VelocityModelGradients.supports(model)


def test_linear_relu_layers_reads_the_stack():
    stack = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 3))
    layers = linear_relu_layers(stack)
    assert [(linear.out_features, relu) for linear, relu in layers] == [(4, True), (3, False)]
    assert linear_relu_layers(nn.Sequential(nn.Linear(1, 4), nn.ReLU())) is None          # final ReLU
    assert linear_relu_layers(nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 1))) is None
    assert linear_relu_layers(nn.Sequential(nn.Linear(1, 4, bias=False))) is None


def test_train_diffusion_minimises_the_noise_prediction_loss_the_notebook_shows():
    """17b prints diffusion.noise_prediction_loss as the objective; train_diffusion's first loss is it."""
    data = create_ring_gaussians(300, seed=0)[0]
    torch.manual_seed(0)
    model = VelocityField()
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    result = diffusion.train_diffusion(model, data, n_steps=1, batch_size=64, seed=5, progress=False)
    generator = torch.Generator().manual_seed(5)                 # the draws of the first step
    x_data = torch.as_tensor(data)[torch.randint(0, len(data), (64,), generator=generator)]
    s, noise = torch.rand(64, 1, generator=generator), torch.randn(64, 2, generator=generator)
    model.load_state_dict(initial, strict=False)
    shown = diffusion.noise_prediction_loss(model, diffusion.NoiseSchedule(), x_data, s, noise)
    assert result.losses[0] == shown.item()
