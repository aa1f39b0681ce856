"""The yardstick agrees with the picture: data passes, blurred data and missing modes do not."""
import numpy as np
import pytest

from gen_models_utilities import Quality, create_ring_gaussians, reference_data, ring_quality, w2_floor
from gen_models_utilities.metrics import DATA_OFF_MODE, FLOOR_SEEDS


@pytest.fixture(scope="module")
def fresh_data():
    return create_ring_gaussians(1000, seed=7)[0]


def test_the_floor_is_fresh_data_against_the_one_reference():
    floor, spread = w2_floor(1000)
    assert len(FLOOR_SEEDS) >= 5 and 0.2 < floor < 0.6 and 0 < spread < floor / 3
    reference = reference_data()
    assert reference.shape == (2000, 2) and np.array_equal(reference, reference_data())


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_real_data_scores_inside_the_floor_band(seed):
    quality = ring_quality(create_ring_gaussians(1000, seed=seed)[0])
    assert abs(quality.w2 - quality.floor) <= 3 * quality.floor_spread
    assert quality.as_good_as_data, quality.problems()
    assert "as good as data" in str(quality) and "off every mode" in str(quality)


def test_blurred_data_is_caught_by_the_off_mode_share_not_by_w2(fresh_data):
    blurred = fresh_data + 0.3 * np.random.default_rng(0).standard_normal(fresh_data.shape)
    quality = ring_quality(blurred)
    # W2 on a thousand points cannot see this blur; the share between the modes can.
    assert quality.w2 <= quality.floor + 3 * quality.floor_spread
    assert quality.off_mode_fraction > 10 * DATA_OFF_MODE
    assert not quality.as_good_as_data and "off every mode" in quality.problems()[0]


def test_two_missing_modes_are_caught_by_w2_and_the_mode_counts():
    points, labels = create_ring_gaussians(2000, seed=9)
    quality = ring_quality(points[(labels != 0) & (labels != 4)][:1000])
    assert quality.w2 > 2 * quality.floor
    assert quality.samples_per_mode[0] == quality.samples_per_mode[4] == 0
    problems = " ".join(quality.problems())
    assert "W2 above" in problems and "modes [0," in problems


def test_a_verdict_needs_every_figure():
    good = Quality(w2=0.36, floor=0.36, floor_spread=0.05, off_mode_fraction=0.011,
                   samples_per_mode=(124,) * 8, n_samples=1000)
    assert good.as_good_as_data and good.w2 / good.floor == pytest.approx(1.0)
    assert not Quality(**{**good.__dict__, "w2": 0.6}).as_good_as_data
    assert not Quality(**{**good.__dict__, "off_mode_fraction": 0.05}).as_good_as_data
    assert not Quality(**{**good.__dict__, "samples_per_mode": (248, 0) + (124,) * 6}).as_good_as_data


def test_the_shipped_floors_are_what_a_fresh_measurement_gives():
    from gen_models_utilities.metrics import measure_w2_floor, stored_w2_floors

    stored = stored_w2_floors()
    assert {"500x2000", "1000x2000", "2000x2000"} <= set(stored)
    assert tuple(stored["500x2000"]) == measure_w2_floor(500, 2000)
    assert w2_floor(500) == tuple(stored["500x2000"])                # what the yardstick reads


@pytest.mark.slow
def test_every_shipped_floor_is_what_a_fresh_measurement_gives():
    from gen_models_utilities.metrics import measure_w2_floor, stored_w2_floors

    for size, value in stored_w2_floors().items():
        n_samples, n_reference = map(int, size.split("x"))
        assert tuple(value) == measure_w2_floor(n_samples, n_reference), size


def test_floors_measured_with_other_seeds_are_not_used(monkeypatch, tmp_path):
    import json

    from gen_models_utilities import metrics

    stale = tmp_path / "w2_floors.json"
    stale.write_text(json.dumps({"reference_seed": 1, "floor_seeds": [1], "floors": {"500x2000": [9.0, 9.0]}}))
    monkeypatch.setattr(metrics, "FLOORS_FILE", stale)
    metrics.stored_w2_floors.cache_clear()
    try:
        assert metrics.stored_w2_floors() == {}
    finally:
        metrics.stored_w2_floors.cache_clear()
