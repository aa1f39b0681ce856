"""Notebook 17c's digits (gen_models_utilities.digits): the fixed split, the shipped classifier, the
Fréchet distance, sampling in 64 dimensions, and clear refusals of bad arguments."""
import numpy as np
import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, VelocityField, digits
from gen_models_utilities.guidance import GuidedVelocity
from gen_models_utilities.models import class_code
from gen_models_utilities.pretrained import load_pretrained
from gen_models_utilities.solvers import generate, start_points


@pytest.fixture(scope="module")
def split():
    return digits.load_digit_split()


@pytest.fixture(scope="module")
def classifier():
    return load_pretrained("digits_classifier", "gaussian")[0]


@pytest.fixture(scope="module")
def small_flow():
    torch.manual_seed(0)
    return digits.DigitVelocity(hidden_dim=16, n_hidden=1).eval()


# ---------------------------------------------------------------- the data

def test_the_split_is_fixed_scaled_and_disjoint(split):
    assert split.train_images.shape == (1297, 64) and split.test_images.shape == (500, 64)
    assert split.train_images.dtype == torch.float32 and split.train_labels.dtype == torch.int64
    for images in (split.train_images, split.test_images):
        assert float(images.min()) == -1.0 and float(images.max()) == 1.0
        # scikit-learn stores whole numbers 0..16; x / 8 - 1 puts them on a grid of step 1/8
        torch.testing.assert_close(images * 8, (images * 8).round())
    # the same images every time: labels and pixel sums pinned
    assert split.test_labels.bincount().tolist() == [46, 52, 52, 50, 60, 37, 51, 58, 43, 51]
    assert split.test_labels[:10].tolist() == [0, 9, 6, 9, 8, 4, 5, 8, 1, 6]
    assert split.train_labels[:10].tolist() == [2, 8, 2, 6, 6, 7, 1, 9, 8, 5]
    assert float(split.test_images.sum()) == -12513.25 and float(split.train_images.sum()) == -32280.0
    again = digits.load_digit_split()
    assert torch.equal(again.test_images, split.test_images) and torch.equal(again.train_labels, split.train_labels)
    # together they are scikit-learn's 1,797 images, each exactly once
    from sklearn.datasets import load_digits

    every = torch.tensor(load_digits().data / 8 - 1, dtype=torch.float32)
    both = torch.cat([split.train_images, split.test_images])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, every.tolist()))


def test_the_split_is_a_copy(split):
    mine = digits.load_digit_split()
    mine.train_images[0] = 5.0
    assert float(digits.load_digit_split().train_images.max()) == 1.0


def test_images_round_trip_to_pixel_grids(split):
    tiles = digits.as_images(split.test_images[:3])
    assert tiles.shape == (3, 8, 8)
    np.testing.assert_array_equal(tiles.reshape(3, 64), split.test_images[:3].numpy())
    assert digits.mosaic(split.test_images[:5], 3).shape == (2 * 9 - 1, 3 * 9 - 1)


# ---------------------------------------------------------------- the shipped models

def test_the_shipped_classifier_reads_held_out_digits(split, classifier):
    accuracy = float((digits.predict(classifier, split.test_images) == split.test_labels).float().mean())
    assert accuracy >= 0.95, accuracy
    assert digits.features(classifier, split.test_images[:7]).shape == (7, 64)


@pytest.mark.slow
def test_the_shipped_flow_draws_the_requested_digits(classifier):
    model, metadata = load_pretrained("digits", "gaussian")
    assert metadata["recipe"]["condition_dropout"] == 0.2 and type(model).__name__ == "DigitVelocity"
    labels = torch.arange(10).repeat(20)
    samples = digits.sample_digits(model, labels, n_steps=8, seed=0).x
    assert samples.shape == (200, 64)
    assert float((digits.predict(classifier, samples) == labels).float().mean()) >= 0.9


# ---------------------------------------------------------------- the Fréchet distance

def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift():
    a = np.random.default_rng(0).normal(size=(400, 6))
    assert digits.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    distances = [digits.frechet_distance(a, a + shift) for shift in (0.1, 0.5, 1.0)]
    assert distances == sorted(distances)
    # a shift moves only the means: ||delta||^2 with delta = shift in each of the 6 features
    for shift, distance in zip((0.1, 0.5, 1.0), distances):
        assert distance == pytest.approx(6 * shift ** 2, rel=1e-6)
    centred = a - a.mean(axis=0)
    means, spreads = digits.frechet_terms(centred, 2 * centred)       # the same mean, twice the spread
    assert means == pytest.approx(0.0, abs=1e-12) and spreads > 1.0


def test_frechet_distance_matches_the_closed_form_for_known_gaussians():
    # Two diagonal Gaussians: d^2 = |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2, up to sampling noise.
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, size=(20000, 3))
    b = rng.normal(1.0, 2.0, size=(20000, 3))
    assert digits.frechet_distance(a, b) == pytest.approx(3 * 1.0 + 3 * 1.0, rel=0.05)


# ---------------------------------------------------------------- sampling and training in 64 dimensions

def test_generate_and_guidance_work_for_points_of_any_width(small_flow):
    solution = generate(small_flow, 6, n_steps=2, condition=class_code(3, 10), seed=0)
    assert solution.x.shape == (6, 64)
    expected = torch.randn(6, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(start_points("gaussian", 6, 64, seed=0), expected)
    guided = GuidedVelocity(small_flow, class_code(3, 10), 2.0)
    assert guided.dim == 64 and GuidedVelocity(ConditionalVelocityField(), class_code(0, 8), 2.0).dim == 2
    assert generate(guided, 4, n_steps=2, seed=1).x.shape == (4, 64)
    with pytest.raises(ValueError, match="base must be 'gaussian' for a model of 64-dimensional points"):
        generate(small_flow, 4, base="uniform", condition=class_code(3, 10))


def test_the_ring_still_starts_from_its_base():
    torch.manual_seed(0)
    model = VelocityField(hidden_dim=8)
    torch.testing.assert_close(start_points("uniform", 5, seed=3), start_points("uniform", 5, 2, seed=3))
    assert generate(model, 5, base="uniform", n_steps=2, seed=3).x.shape == (5, 2)


def test_sample_digits_is_the_guided_flow(small_flow):
    x0 = torch.randn(4, 64, generator=torch.Generator().manual_seed(2))
    labels = [1, 2, 3, 4]
    plain = digits.sample_digits(small_flow, labels, 1.0, n_steps=3, x0=x0).x
    guided = digits.sample_digits(small_flow, labels, 1.5, n_steps=3, x0=x0).x
    from gen_models_utilities.solvers import solve_ode

    codes = class_code(torch.tensor(labels), 10)
    torch.testing.assert_close(plain, solve_ode(small_flow, x0, n_steps=3, method="midpoint", condition=codes).x)
    torch.testing.assert_close(guided, solve_ode(GuidedVelocity(small_flow, codes, 1.5), x0, n_steps=3,
                                                 method="midpoint").x)
    seeded = [digits.sample_digits(small_flow, labels, n_steps=2, seed=5).x for _ in range(2)]
    torch.testing.assert_close(*seeded)
    path = digits.sample_digits(small_flow, [7], n_steps=4, seed=0, return_trajectory=True)
    assert path.trajectory.shape == (5, 1, 64)


def test_training_runs_and_is_reproducible(split):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = digits.DigitVelocity(hidden_dim=16, n_hidden=1)
        runs.append(digits.train_digit_flow(model, split.train_images, split.train_labels, n_steps=30,
                                            batch_size=32, seed=3, progress=False).losses)
    assert len(runs[0]) == 30 and runs[0] == runs[1]
    torch.manual_seed(0)
    judge = digits.DigitClassifier(hidden_dim=16, feature_dim=8)
    result = digits.train_classifier(judge, split.train_images, split.train_labels, n_steps=200, progress=False)
    assert np.mean(result.losses[-20:]) < np.mean(result.losses[:20])


def test_the_explorer_redraws_when_a_slider_moves(small_flow, classifier):
    pytest.importorskip("ipywidgets")
    box = digits.digit_explorer(small_flow, classifier, label=2, guidance_scale=0.0, n_steps=2)
    sliders, image, words = box.children[0].children, box.children[1], box.children[2]
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG") and "as a 2" in words.value
    sliders[0].value = 7
    assert "as a 7" in words.value and bytes(image.value) != first
    fig, text = digits.draw_digits(small_flow, classifier, label=4, n_steps=1, n_samples=3)
    assert text.startswith("the classifier reads") and text.endswith("of 3 as a 4")


# ---------------------------------------------------------------- bad arguments

BAD = [
    ("labels out of range", lambda m, c: digits.sample_digits(m, [3, 10]), ValueError, r"labels must lie in \[0, 9\]"),
    ("fractional labels", lambda m, c: digits.sample_digits(m, [1.5]), TypeError, "labels must hold whole-number"),
    ("no labels", lambda m, c: digits.sample_digits(m, []), ValueError, "labels must hold at least one digit"),
    ("negative guidance", lambda m, c: digits.sample_digits(m, [1], guidance_scale=-1.0), ValueError,
     "guidance_scale must be >= 0"),
    ("adaptive method", lambda m, c: digits.sample_digits(m, [1], method="dopri5"), ValueError,
     "method must be one of"),
    ("x0 of the wrong width", lambda m, c: digits.sample_digits(m, [1], x0=torch.zeros(1, 2)), ValueError,
     r"x0 must have shape \(N, 64\)"),
    ("x0 rows and labels differ", lambda m, c: digits.sample_digits(m, [1, 2], x0=torch.zeros(3, 64)), ValueError,
     "x0 has 3 rows for 2 labels"),
    ("a ring model", lambda m, c: digits.sample_digits(ConditionalVelocityField(), [1]), ValueError,
     "takes points of width 2"),
    ("train a ring model", lambda m, c: digits.train_digit_flow(VelocityField(), torch.zeros(4, 64), [0, 1, 2, 3]),
     TypeError, "model must be a one-hot model of 64-pixel images"),
    ("train with zero steps", lambda m, c: digits.train_digit_flow(m, torch.zeros(4, 64), [0, 1, 2, 3], n_steps=0),
     ValueError, "n_steps must be an integer"),
    ("train with labels too few", lambda m, c: digits.train_digit_flow(m, torch.zeros(4, 64), [0, 1]), ValueError,
     r"labels must have shape \(4,\)"),
    ("train with dropout above 1", lambda m, c: digits.train_digit_flow(m, torch.zeros(4, 64), [0, 1, 2, 3],
                                                                         condition_dropout=1.5), ValueError,
     "condition_dropout must be <= 1.0"),
    ("classifier with images of 2 pixels", lambda m, c: digits.train_classifier(c, torch.zeros(4, 2), [0, 1, 2, 3]),
     ValueError, r"images must have shape \(N, 64\)"),
    ("features of a flow model", lambda m, c: digits.features(m, torch.zeros(2, 64)), TypeError,
     "classifier must be a DigitClassifier"),
    ("predict with NaN pixels", lambda m, c: digits.predict(c, torch.full((2, 64), float("nan"))), ValueError,
     "images must not contain NaN"),
    ("Fréchet of one row", lambda m, c: digits.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))), ValueError,
     r"a must have shape \(N, F\) with N >= 2"),
    ("Fréchet of different widths", lambda m, c: digits.frechet_distance(np.ones((4, 3)), np.ones((4, 2))),
     ValueError, "a and b must have the same number of features, got 3 and 2"),
    ("Fréchet of text", lambda m, c: digits.frechet_distance("abc", np.ones((4, 2))), TypeError,
     "a must be a real-valued array"),
    ("Fréchet with inf", lambda m, c: digits.frechet_distance(np.ones((4, 2)), np.full((4, 2), np.inf)), ValueError,
     "b must not contain NaN or inf"),
    ("mosaic of zero columns", lambda m, c: digits.mosaic(torch.zeros(2, 64), 0), ValueError,
     "n_columns must be an integer"),
    ("explorer digit 12", lambda m, c: digits.digit_explorer(m, c, label=12), ValueError, "label must be an integer"),
    ("explorer w above 8", lambda m, c: digits.digit_explorer(m, c, guidance_scale=9.0), ValueError,
     "guidance_scale must be <= 8.0"),
    ("a DigitVelocity of width 0", lambda m, c: digits.DigitVelocity(hidden_dim=0), ValueError,
     "hidden_dim must be an integer"),
]


@pytest.mark.parametrize("call, error, pattern", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_arguments_are_refused_with_their_name(small_flow, classifier, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(small_flow, classifier)
