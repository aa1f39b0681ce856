"""The training loops the speed benchmark races, all at one recipe on the same network.

* :class:`ChapterLoop` re-states the chapter's loop: a DataLoader epoch over the data, one
  optimiser step per batch, with the straight-line path written inline.
* :func:`package_run` is the package's ``training.train``.
* :class:`TorchCFMLoop` and :class:`FlowMatchingLoop` use the peer libraries the way their
  own 2-D tutorials do (TorchCFM's ``ConditionalFlowMatcher`` with sigma = 0; Meta's
  ``flow_matching`` ``AffineProbPath`` with a ``CondOTScheduler``), with the package's
  ``VelocityField`` in place of the tutorials' MLPs.

Every loop is built with the same batch size, AdamW and learning rate, and draws t ~ U[0, 1]
and a Gaussian x0, so that only the implementation differs. ``run(n_steps)`` trains at least
that many more steps and returns (steps taken, seconds), so a benchmark can alternate.
"""
from __future__ import annotations

import torch
from torch import nn

from gen_models_utilities import VelocityField, make_loader, train

from .clock import now


def fresh_model(seed: int = 0) -> VelocityField:
    """A VelocityField with initial weights fixed by ``seed`` (the same for every contender)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return VelocityField()


def package_run(model: nn.Module, data, n_steps: int, seed: int = 0, **recipe) -> float:
    """``training.train`` for ``n_steps`` steps (recipe: its keyword arguments); returns seconds."""
    start = now()
    train(model, data, n_steps=n_steps, seed=seed, progress=False, **recipe)
    return now() - start


class ChapterLoop:
    """The chapter's loop: ``for epoch: for (x1,) in loader:`` one AdamW step per batch.

    Args:
        model: the velocity network. data: (N, 2) points. batch_size, lr: the chapter's 1000, 1e-3.
    """

    def __init__(self, model: nn.Module, data, batch_size: int = 1000, lr: float = 1e-3, seed: int = 0):
        self.model = model
        self.loader = make_loader(data, batch_size=batch_size, seed=seed)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def run(self, n_steps: int) -> tuple[int, float]:
        """Train whole epochs until at least ``n_steps`` steps; returns (steps taken, seconds)."""
        self.model.train()
        steps = 0
        start = now()
        while steps < n_steps:
            for (x1,) in self.loader:
                x0 = torch.randn_like(x1)                       # Gaussian base
                t = torch.rand(x1.shape[0], 1)
                x_t = (1 - t) * x0 + t * x1                     # point on the straight path
                loss = nn.functional.mse_loss(self.model(x_t, t), x1 - x0)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                steps += 1
        return steps, now() - start


class _PeerLoop:
    """Shared plumbing: AdamW, batches of data drawn at random, resumable steps."""

    def __init__(self, model: nn.Module, data, batch_size: int = 256, lr: float = 1e-3, seed: int = 0):
        self.model = model
        self.data = torch.as_tensor(data, dtype=torch.float32)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def data_batch(self) -> torch.Tensor:
        """x1: (batch_size, 2) rows drawn from the data, as the tutorials draw fresh samples."""
        index = torch.randint(0, self.data.shape[0], (self.batch_size,), generator=self.generator)
        return self.data[index]

    def loss(self) -> torch.Tensor:
        raise NotImplementedError

    def run(self, n_steps: int) -> tuple[int, float]:
        """Train ``n_steps`` more steps; returns (n_steps, seconds)."""
        self.model.train()
        start = now()
        for _ in range(n_steps):
            self.optimizer.zero_grad()
            loss = self.loss()
            loss.backward()
            self.optimizer.step()
        return n_steps, now() - start


class TorchCFMLoop(_PeerLoop):
    """TorchCFM's tutorial loop: ``t, x_t, u_t = FM.sample_location_and_conditional_flow(x0, x1)``."""

    def __init__(self, model: nn.Module, data, batch_size: int = 256, lr: float = 1e-3, seed: int = 0):
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

        super().__init__(model, data, batch_size, lr, seed)
        self.matcher = ConditionalFlowMatcher(sigma=0.0)

    def loss(self) -> torch.Tensor:
        x1 = self.data_batch()
        x0 = torch.randn(x1.shape, generator=self.generator)
        t, x_t, u_t = self.matcher.sample_location_and_conditional_flow(x0, x1)
        v_t = self.model(x_t, t[:, None])
        return torch.mean((v_t - u_t) ** 2)


class FlowMatchingLoop(_PeerLoop):
    """Meta flow_matching's 2-D tutorial loop: ``path.sample(t=t, x_0=x_0, x_1=x_1)`` on an
    ``AffineProbPath(scheduler=CondOTScheduler())``, regressing onto ``dx_t``."""

    def __init__(self, model: nn.Module, data, batch_size: int = 256, lr: float = 1e-3, seed: int = 0):
        from flow_matching.path import AffineProbPath
        from flow_matching.path.scheduler import CondOTScheduler

        super().__init__(model, data, batch_size, lr, seed)
        self.path = AffineProbPath(scheduler=CondOTScheduler())

    def loss(self) -> torch.Tensor:
        x_1 = self.data_batch()
        x_0 = torch.randn(x_1.shape, generator=self.generator)
        t = torch.rand(x_1.shape[0], generator=self.generator)
        sample = self.path.sample(t=t, x_0=x_0, x_1=x_1)
        return torch.pow(self.model(sample.x_t, sample.t[:, None]) - sample.dx_t, 2).mean()


PEERS = {"torchcfm": TorchCFMLoop, "flow_matching": FlowMatchingLoop}
