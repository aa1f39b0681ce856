"""Ring data, the logo base and the base distributions."""
import numpy as np
import pytest
import torch

from gen_models_utilities import create_ring_gaussians, load_eth_z_logo_data, ring_mode_centers, sample_base
from gen_models_utilities.base_distributions import canonical_base_name
from gen_models_utilities.logo import logo_mask


def test_ring_has_the_chapter_geometry():
    points, labels = create_ring_gaussians(20000, seed=3)
    centers = ring_mode_centers()
    assert centers.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 3.0, rtol=1e-6)
    offsets = points - centers[labels]
    assert abs(offsets.std() - 0.25) < 0.01
    assert np.all(np.abs(offsets.mean(axis=0)) < 0.01)
    counts = np.bincount(labels, minlength=8)
    assert counts.min() > 2300 and counts.max() < 2700       # equal weights, 2500 expected


def test_ring_accepts_other_mode_counts():
    points, labels = create_ring_gaussians(100, n_modes=3, seed=0)
    assert set(np.unique(labels)) <= {0, 1, 2}


def test_seeded_draws_repeat_and_leave_global_state_alone():
    state = torch.get_rng_state()
    a = create_ring_gaussians(50, seed=7)
    b = create_ring_gaussians(50, seed=7)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], create_ring_gaussians(50, seed=8)[0])


def test_logo_points_lie_on_the_letters():
    points = load_eth_z_logo_data(n_samples=5000, seed=0)
    assert points.dtype == np.float32 and points.shape == (5000, 2)
    assert points[:, 0].min() >= -5.0 and points[:, 0].max() <= 5.0
    width = np.ptp(points[:, 0])
    height = np.ptp(points[:, 1])
    assert 5.0 < width / height < 7.5                           # a wide word mark, about 6:1
    mask, x_left, y_bottom, pixel = logo_mask()
    cols = ((points[:, 0] - x_left) / pixel).astype(int).clip(0, mask.shape[1] - 1)
    rows = ((points[:, 1] - y_bottom) / pixel).astype(int).clip(0, mask.shape[0] - 1)
    assert mask[rows, cols].mean() > 0.99
    assert 0.15 < mask.mean() < 0.6                             # letters, not a filled box


def test_logo_covers_every_letter_and_keeps_holes():
    points = load_eth_z_logo_data(n_samples=20000, seed=1)
    histogram, _ = np.histogram(points[:, 0], bins=20, range=(-5, 5))
    assert (histogram > 0).sum() >= 17                          # spread across the whole word
    assert load_eth_z_logo_data(n_samples=1).shape == (1, 2)


def test_logo_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_eth_z_logo_data(n_samples=10, seed=0).shape == (10, 2)


@pytest.mark.parametrize("name", ["gaussian", "uniform", "ethz_logo", "logo"])
def test_sample_base_by_name(name):
    points = sample_base(name, 4000, seed=0)
    assert points.shape == (4000, 2) and points.dtype == torch.float32
    if name == "gaussian":
        assert abs(points.std() - 1) < 0.05
    if name == "uniform":
        assert points.abs().max() <= 3.5 and points.abs().max() > 3.4
    assert torch.equal(points, sample_base(name, 4000, seed=0))


def test_canonical_names():
    assert canonical_base_name("logo") == "ethz_logo"
    with pytest.raises(ValueError, match="base must be one of"):
        canonical_base_name("moon")
