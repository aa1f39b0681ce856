"""Classifier-free guidance (gen_models_utilities.guidance); its explorer is tested in test_widgets."""
import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, VelocityField, create_ring_gaussians
from gen_models_utilities.guidance import GuidedVelocity, class_code, requested_mode_fraction, sample_guided


@pytest.fixture(scope="module")
def onehot_model():
    torch.manual_seed(0)
    return ConditionalVelocityField(n_classes=8).eval()


def test_w0_is_unconditional_and_w1_is_conditional(onehot_model):
    x, t = torch.randn(10, 2), torch.rand(10, 1)
    code = class_code(5, 8)
    with torch.no_grad():
        unconditional = onehot_model(x, t, torch.zeros(10, 8))
        conditional = onehot_model(x, t, code.expand(10, 8))
        torch.testing.assert_close(GuidedVelocity(onehot_model, code, 0.0)(x, t), unconditional)
        torch.testing.assert_close(GuidedVelocity(onehot_model, code, 1.0)(x, t), conditional)
        w3 = GuidedVelocity(onehot_model, code, 3.0)(x, t)
    torch.testing.assert_close(w3, unconditional + 3 * (conditional - unconditional))


def test_guided_sampling_starts_from_the_seeded_base(onehot_model):
    a = sample_guided(onehot_model, 2, 2.0, 50, n_steps=5, seed=0).x
    b = sample_guided(onehot_model, 2, 2.0, 50, n_steps=5, seed=0).x
    torch.testing.assert_close(a, b)
    assert a.shape == (50, 2)


def test_requested_mode_fraction_counts_points_at_the_mode():
    from gen_models_utilities import ring_mode_centers

    centres = torch.from_numpy(ring_mode_centers())
    samples = torch.cat([centres[[2] * 3], centres[[4]], torch.zeros(1, 2)])
    assert requested_mode_fraction(samples, 2) == pytest.approx(0.6)
    assert requested_mode_fraction(samples, 4) == pytest.approx(0.2)


@pytest.mark.slow
def test_guidance_sharpens_a_trained_model():
    from gen_models_utilities import train
    from gen_models_utilities.guidance import guidance_sweep

    points, labels = create_ring_gaussians(4000, seed=0)
    torch.manual_seed(0)
    model = ConditionalVelocityField(n_classes=8)
    train(model, points, labels=labels, n_steps=300, batch_size=256, lr=3e-3, condition_dropout=0.2, seed=0,
          progress=False)
    hits = guidance_sweep(model, scales=(0.0, 1.0), n_samples=160, n_steps=10)
    assert hits[0.0] < 0.3 < hits[1.0]


def test_bad_arguments_are_refused(onehot_model):
    with pytest.raises(TypeError, match="one-hot"):
        GuidedVelocity(VelocityField(), class_code(0, 8), 1.0)
    with pytest.raises(ValueError, match="guidance_scale"):
        GuidedVelocity(onehot_model, class_code(0, 8), -1.0)
    with pytest.raises(ValueError, match="label"):
        class_code(8, 8)
