"""The chapter's own calls, made exactly as its code cells make them, run against the package.

Each test follows one of the chapter's cells (with fewer epochs), checking the types and shapes
the chapter relies on: numpy points it slices and passes to torch.from_numpy, 1-tuples from
make_loader, (x1, c) pairs from the conditional loaders, and plots that take dicts of arrays.
"""
import numpy as np
import torch
from torch import nn

from gen_models_utilities import (create_ring_gaussians, device, load_eth_z_logo_data, make_conditional_loader_onehot,
                                  make_conditional_loader_radius, make_loader, plot_conditional_samples_continuous,
                                  plot_conditional_samples_discrete)
from gen_models_utilities.models import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField


def test_imports_and_device():
    assert isinstance(device, torch.device)


def test_path_cell_for_every_base():
    data, labels = create_ring_gaussians(n_samples=1000)
    assert data.shape == (1000, 2) and data.dtype == np.float32
    assert labels.shape == (1000,) and labels.dtype == np.int64
    for base in ("gaussian", "uniform", "ethz_logo"):
        if base == "gaussian":
            x0_samples = torch.randn(data.shape[0], 2)
        elif base == "uniform":
            x0_samples = torch.rand(data.shape[0], 2) * 7.0 - 3.5
        else:
            x0_samples = load_eth_z_logo_data(n_samples=data.shape[0])
        x0_viz = x0_samples[:10]
        x1_viz = torch.from_numpy(data[:10]).float()
        assert x0_viz.shape == x1_viz.shape == (10, 2)


def test_unconditional_training_cell_with_logo_base():
    data, _ = create_ring_gaussians(n_samples=1000)
    loader = make_loader(data, batch_size=1000)
    flow_model = VelocityField().to(device)
    optimizer = torch.optim.AdamW(flow_model.parameters(), lr=1e-3)
    losses = []
    for epoch in range(3):
        for (x1_batch,) in loader:
            x1 = x1_batch.to(device)
            x0 = torch.Tensor(load_eth_z_logo_data(n_samples=x1.shape[0])).to(device)
            t = torch.rand(x1.shape[0], 1, device=device)
            xt = (1 - t) * x0 + t * x1
            loss = nn.functional.mse_loss(flow_model(xt, t), x1 - x0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_sampler_cell_reads_logo_as_tensor():
    x = torch.tensor(load_eth_z_logo_data(n_samples=500), dtype=torch.float32, device=device)
    assert x.shape == (500, 2)
    base_samples = load_eth_z_logo_data(n_samples=1000)
    assert base_samples[:, 0].shape == (1000,)


def test_onehot_cells():
    data, labels = create_ring_gaussians(n_samples=1000)
    cond_loader = make_conditional_loader_onehot(data=data, labels=labels, batch_size=128, n_classes=8)
    model = ConditionalVelocityField(n_classes=8).to(device)
    n_batches = 0
    for x1_batch, labels_batch in cond_loader:
        x1, c = x1_batch.to(device), labels_batch.to(device)
        assert c.shape == (x1.shape[0], 8) and c.dtype == torch.float32
        assert torch.equal(c.sum(dim=1), torch.ones(x1.shape[0]))
        t = torch.rand(x1.shape[0], 1, device=device)
        assert model((1 - t) * torch.randn_like(x1) + t * x1, t, c).shape == x1.shape
        n_batches += 1
    assert n_batches == 8          # 1000 points in batches of 128, the last one smaller
    samples_by_label = {}
    for mode_idx in range(8):
        condition = torch.zeros(1, 8, device=device)
        condition[0, mode_idx] = 1.0
        x = torch.randn(20, 2, device=device)
        c = condition.repeat(20, 1)
        samples_by_label[int(mode_idx)] = (x + model(x, torch.zeros(20, 1), c)).detach().cpu().numpy()
    real_data, real_labels = create_ring_gaussians(n_samples=5000, n_modes=8)
    plot_conditional_samples_discrete(samples_by_label, real_data=real_data, real_labels=real_labels,
                                      title="Conditional Flow Matching: One-Hot Mode Conditioning")


def test_radius_cells():
    data, _ = create_ring_gaussians(n_samples=1000)
    radius_loader = make_conditional_loader_radius(data=data, batch_size=128)
    model = ConditionalVelocityFieldRadius().to(device)
    for x1_batch, radius_batch in radius_loader:
        assert radius_batch.shape == (x1_batch.shape[0], 1)
        assert torch.allclose(radius_batch[:, 0], x1_batch.norm(dim=1))
        t = torch.rand(x1_batch.shape[0], 1)
        assert model(x1_batch, t, radius_batch).shape == x1_batch.shape
    samples_by_value = {}
    for radius_val in [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]:
        r = torch.full((30, 1), radius_val, device=device)
        x = torch.randn(30, 2, device=device)
        samples_by_value[float(radius_val)] = (x + model(x, torch.zeros(30, 1), r)).detach().cpu().numpy()
    real_data, _ = create_ring_gaussians(n_samples=5000)
    plot_conditional_samples_continuous(samples_by_value, real_data=real_data,
                                        title="Conditional Flow Matching: Continuous Radius Conditioning")
