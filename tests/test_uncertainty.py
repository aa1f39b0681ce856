"""Estimates with their noise, and comparisons that only call a difference when it is one."""
import numpy as np
import pytest

from gen_models_utilities.uncertainty import Estimate, compare, from_values, over_seeds, share


def test_the_interval_of_a_mean_over_seeds_is_students_t():
    estimate = from_values([1.0, 2.0, 3.0])
    assert estimate.mean == 2.0 and estimate.n == 3 and estimate.basis == "seeds"
    assert estimate.half_width == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)   # t(0.975, 2) sd / sqrt(n)
    assert format(estimate, ".2f") == "2.00 ± 2.48 (3 seeds)"


def test_over_seeds_calls_the_measurement_once_per_seed():
    seen = []
    estimate = over_seeds(lambda seed: seen.append(seed) or float(seed), seeds=(4, 5, 6))
    assert seen == [4, 5, 6] and estimate.mean == 5.0


def test_a_share_has_the_wilson_interval():
    estimate = share(0.02, 500)
    # Wilson's 95% interval for 10 of 500: about [1.09%, 3.64%], asymmetric around 2%.
    assert estimate.low == pytest.approx(0.01090, abs=2e-4) and estimate.high == pytest.approx(0.03640, abs=2e-4)
    assert share(0.0, 100).low == pytest.approx(0.0, abs=1e-12) and share(1.0, 100).high == pytest.approx(1.0)
    assert estimate.percent() == "2.0% ± 1.3% (500 samples)"


def test_the_interval_of_a_share_narrows_with_more_samples():
    assert share(0.02, 2000).half_width < share(0.02, 500).half_width / 1.9


def test_compare_calls_a_difference_only_when_the_intervals_separate():
    low, high = Estimate(1.0, 0.9, 1.1, 3, "seeds"), Estimate(2.0, 1.9, 2.1, 3, "seeds")
    overlapping = Estimate(1.15, 1.05, 1.25, 3, "seeds")
    assert compare(low, high).verdict == "<" and compare(high, low).verdict == ">"
    assert compare(low, overlapping).verdict == "within noise"
    assert str(compare(low, high, "8 steps", "16 steps")) == "8 steps < 16 steps"
    assert str(compare(low, overlapping, "8 steps", "16 steps")) == "8 steps and 16 steps: within noise"


def test_one_draw_of_500_cannot_tell_two_percent_from_three():
    """The referee's case: off-mode shares of 2% and 3% at 500 samples each are within noise; at
    20000 samples each the same shares are told apart."""
    assert compare(share(0.02, 500), share(0.03, 500)).verdict == "within noise"
    assert compare(share(0.02, 20000), share(0.03, 20000)).verdict == "<"


@pytest.mark.parametrize("call, error, match", [
    (lambda: from_values([1.0]), ValueError, "values must hold at least 2"),
    (lambda: from_values([1.0, float("nan")]), ValueError, "values entry must be finite"),
    (lambda: over_seeds(3), TypeError, "measure must be callable"),
    (lambda: over_seeds(float, seeds=(1,)), ValueError, "seeds must hold at least 2"),
    (lambda: over_seeds(lambda s: "x"), TypeError, r"measure\(0\) must be a real number"),
    (lambda: share(1.5, 100), ValueError, "fraction must be <= 1.0"),
    (lambda: share(0.5, 0), ValueError, "n must be an integer >= 1"),
    (lambda: compare(1.0, share(0.1, 10)), TypeError, "a must be an Estimate"),
])
def test_bad_input_is_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()
