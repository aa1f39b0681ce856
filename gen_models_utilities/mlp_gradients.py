"""Hand-written gradients of the package's velocity models, for a faster training step on a CPU.

For networks this small, autograd's bookkeeping (a graph node per layer, views, gradient
accumulation) costs about a tenth of a training step on a CPU. A velocity model is a few
Linear/ReLU stacks joined by one concatenation, so its backward pass is short to write out.
:class:`VelocityModelGradients` runs the forward pass with ``torch.no_grad`` and then the
backward pass layer by layer, with the operations autograd itself would run; the tests check
that loss and gradients equal autograd's, bit for bit. ``training.train`` uses it when
:meth:`VelocityModelGradients.supports` the model, and autograd otherwise.

The backward pass of a Linear layer y = a W^T + b, given dL/dy = g (B, out):
    dL/dW = g^T a (out, in),   dL/db = sum_B g (out,),   dL/da = g W (B, in);
and of a ReLU r = max(h, 0): dL/dh = g where r > 0, else 0.
"""
from __future__ import annotations

import torch
from torch import nn

from .models import ConditionalVelocityFieldRadius, VelocityModel

Layers = list[tuple[nn.Linear, bool]]          # each Linear with whether a ReLU follows it


def linear_relu_layers(sequential: nn.Module) -> Layers | None:
    """The layers of a Sequential of Linear layers with single ReLUs between; None otherwise."""
    if type(sequential) is not nn.Sequential:
        return None
    layers: Layers = []
    for module in sequential:
        if type(module) is nn.Linear and module.bias is not None:
            layers.append((module, False))
        elif type(module) is nn.ReLU and layers and not layers[-1][1]:
            layers[-1] = (layers[-1][0], True)
        else:
            return None
    if not layers or layers[-1][1]:
        return None
    return layers


def _forward(layers: Layers, a: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output (B, out) and the input of every layer (which, after the first, is a ReLU's output)."""
    inputs = []
    for linear, relu in layers:
        inputs.append(a)
        a = torch.addmm(linear.bias, a, linear.weight.t())
        if relu:
            a.relu_()
    return a, inputs


def _backward(layers: Layers, inputs: list[torch.Tensor], grad: torch.Tensor,
              input_grad: bool) -> torch.Tensor | None:
    """Write each layer's weight and bias gradient; return dL/d(input) if ``input_grad``."""
    for i in reversed(range(len(layers))):
        linear, _ = layers[i]
        a = inputs[i]
        linear.weight.grad = grad.t().mm(a)
        linear.bias.grad = grad.sum(0)
        if i == 0 and not input_grad:
            return None
        grad = grad.mm(linear.weight)
        if i > 0:                                       # through the ReLU whose output is a
            grad = torch.ops.aten.threshold_backward(grad, a, 0)
    return grad


def _hooked(module: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    if any(getattr(module, name, None) for name in hooks):
        return True
    return any(getattr(p, "_backward_hooks", None) or getattr(p, "_post_accumulate_grad_hooks", None)
               for p in module.parameters(recurse=False))


def _global_hooks() -> bool:
    from torch.nn.modules import module as module_state

    names = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
             "_global_backward_pre_hooks")
    return any(getattr(module_state, name, None) for name in names)


class VelocityModelGradients:
    """Mean-squared-error loss and parameter gradients of a velocity model, without autograd.

    Args:
        model: a VelocityField, ConditionalVelocityField or ConditionalVelocityFieldRadius
            (see :meth:`supports`).
    """

    def __init__(self, model: nn.Module):
        if not self.supports(model):
            raise ValueError(f"VelocityModelGradients cannot differentiate {type(model).__name__}; "
                             f"check VelocityModelGradients.supports(model) and use autograd")
        self.model = model
        self.time_layers = linear_relu_layers(model.time_mlp)
        self.trunk_layers = linear_relu_layers(model.net)
        self.radius_layers = linear_relu_layers(model.radius_mlp) if self._embeds_radius(model) else None

    @classmethod
    def for_model(cls, model: nn.Module) -> "VelocityModelGradients | None":
        """A VelocityModelGradients for ``model`` if it :meth:`supports` it, else None (use autograd)."""
        return cls(model) if cls.supports(model) else None

    @staticmethod
    def _embeds_radius(model: nn.Module) -> bool:
        return type(model).embed_condition is ConditionalVelocityFieldRadius.embed_condition

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """True for the package's velocity models as built: float32 Linear/ReLU stacks, every
        parameter trained, no hooks, ``forward`` and ``embed_condition`` not overridden."""
        if not isinstance(model, VelocityModel) or type(model).forward is not VelocityModel.forward:
            return False
        radius = cls._embeds_radius(model)
        if type(model).embed_condition is not VelocityModel.embed_condition and not radius:
            return False
        stacks = {"time_mlp", "net"} | ({"radius_mlp"} if radius else set())
        if {name for name, _ in model.named_children()} != stacks:
            return False
        if any(linear_relu_layers(getattr(model, name)) is None for name in stacks):
            return False
        if any(p.dtype != torch.float32 or not p.requires_grad for p in model.parameters()):
            return False
        return not _global_hooks() and not any(_hooked(m) for m in model.modules())

    def mse_backward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None,
                     target: torch.Tensor) -> torch.Tensor:
        """Set every parameter's ``.grad`` to d/dtheta mean((v(x, t, c) - target)^2) and return
        that loss (a 0-dim tensor). Shapes: x, target (B, 2) float32; t (B, 1); condition
        (B, condition_dim) or None. The batch is trusted: training loops build it themselves.
        """
        if (condition is None) != (self.model.condition_dim == 0):
            raise ValueError(f"{type(self.model).__name__} takes a condition of width {self.model.condition_dim}, "
                             f"got {'none' if condition is None else tuple(condition.shape)}")
        with torch.no_grad():
            time_features, time_inputs = _forward(self.time_layers, t)
            features = [x, time_features]
            if self.radius_layers is not None:
                radius_features, radius_inputs = _forward(self.radius_layers, condition)
                features.append(radius_features)
            elif condition is not None:
                features.append(condition)
            prediction, trunk_inputs = _forward(self.trunk_layers, torch.cat(features, dim=-1))
            loss = nn.functional.mse_loss(prediction, target)
            grad = torch.ops.aten.mse_loss_backward(torch.ones((), dtype=loss.dtype), prediction, target, 1)
            grad_features = _backward(self.trunk_layers, trunk_inputs, grad, input_grad=True)
            width = time_features.shape[1]
            _backward(self.time_layers, time_inputs, grad_features.narrow(1, 2, width), input_grad=False)
            if self.radius_layers is not None:
                _backward(self.radius_layers, radius_inputs,
                          grad_features.narrow(1, 2 + width, radius_features.shape[1]), input_grad=False)
        return loss
