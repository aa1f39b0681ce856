"""MeanFlow: the identity on the exact field, the loss, shapes, one-step sampling, refused arguments."""
import sys

import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, create_ring_gaussians, meanflow
from gen_models_utilities.marginal_field import RingMarginalField
from gen_models_utilities.meanflow import (AverageVelocityField, ExactAverageVelocity, along_path_derivative,
                                           meanflow_loss, meanflow_sample, sample_time_pairs, train_meanflow)
from gen_models_utilities.models import MODEL_CLASSES
from gen_models_utilities.paths import pairs_loss
from gen_models_utilities.pretrained import load_checkpoint, load_pretrained, save_checkpoint
from gen_models_utilities.pretrained.recipes import recipe, train_recipe
from gen_models_utilities.solvers import solve_ode


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small():
    torch.manual_seed(0)
    return AverageVelocityField(hidden_dim=16)


def points(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- one Gaussian mode: a closed form

STD, CENTRE = 0.25, torch.tensor([3.0, 0.0])          # the ring's std; ring_mode_centers(1, 3.0)


def one_mode_average(z, t, r):
    """The exact u(z, r, t) for N(0, I) -> N(CENTRE, STD^2 I): the flow scales z - t CENTRE by sigma_r / sigma_t."""
    def sigma(tau):
        return torch.sqrt((1 - tau) ** 2 + tau ** 2 * STD ** 2)
    return CENTRE + (sigma(r) / sigma(t) - 1) / (r - t) * (z - t * CENTRE)


def one_mode_velocity(z, t, r):
    """The exact instantaneous v(z, t) of the same flow, whatever r: a wrong average velocity."""
    var, c = (1 - t) ** 2 + t ** 2 * STD ** 2, t * STD ** 2 - (1 - t)
    return CENTRE + c / var * (z - t * CENTRE) + 0 * r


def test_the_integrated_average_matches_the_closed_form_of_one_mode():
    exact = ExactAverageVelocity(RingMarginalField(n_modes=1, std=STD))
    z = points(50).double()
    for t, r in ((0.0, 1.0), (0.2, 0.9), (0.7, 0.3)):
        expected = one_mode_average(z, torch.tensor(t, dtype=torch.float64), torch.tensor(r, dtype=torch.float64))
        torch.testing.assert_close(exact(z, t, r), expected, atol=1e-6, rtol=0)


def test_the_loss_is_zero_for_the_exact_average_and_positive_for_a_wrong_one():
    field = RingMarginalField(n_modes=1, std=STD)
    z = 2 * points(256, seed=1)
    g = torch.Generator().manual_seed(2)
    t = torch.rand(256, 1, generator=g) * 0.5
    r = t + 0.1 + 0.4 * torch.rand(256, 1, generator=g)           # r > t: no division by zero
    v = field(z, t)                                                 # the exact marginal velocity at (z, t)
    assert float(meanflow_loss(one_mode_average, z, t, r, v)) < 1e-9
    assert float(meanflow_loss(one_mode_velocity, z, t, r, v)) > 1e-2   # v where u belongs
    assert float(meanflow_loss(lambda z, t, r: 1.1 * one_mode_average(z, t, r), z, t, r, v)) > 1e-2


def test_the_identity_holds_on_the_rings_exact_field():
    exact = ExactAverageVelocity()
    z = 2 * points(40, seed=3)
    for t, r in ((0.1, 1.0), (0.3, 0.8), (0.6, 0.95), (0.5, 0.2)):
        u = exact(z, t, r)
        right = exact.field(z, t) - (t - r) * along_path_derivative(exact, exact.field, z, t, r)
        assert float((u - right).norm(dim=1).max()) < 1e-3 * (1 + float(u.norm(dim=1).max())), (t, r)
    # and it is not a tautology: the instantaneous field alone misses it by far
    assert float((exact(z, 0.1, 1.0) - exact.field(z, 0.1)).norm(dim=1).mean()) > 0.5


def test_at_r_equal_t_the_loss_is_flow_matchings(small):
    x0, x1 = points(32, 4), points(32, 5) + 3
    t = torch.rand(32, 1, generator=torch.Generator().manual_seed(6))
    z, v = (1 - t) * x0 + t * x1, x1 - x0
    torch.testing.assert_close(meanflow_loss(small, z, t, t, v), pairs_loss(small, x0, x1, t))


# ---------------------------------------------------------------- shapes and sampling

def test_shapes_and_the_instantaneous_velocity(small):
    x = points(10)
    assert small(x, 0.2, 0.7).shape == (10, 2)
    assert small(x, torch.full((10, 1), 0.2), torch.full((10, 1), 0.7)).shape == (10, 2)
    torch.testing.assert_close(small(x, 0.3), small(x, 0.3, 0.3))          # no r: the velocity v(x, t)
    assert not torch.allclose(small(x, 0.3, 0.3), small(x, 0.3, 0.9))
    path = solve_ode(small, x, n_steps=4)                                    # it is a velocity field too
    assert path.x.shape == (10, 2) and path.nfe == 4
    solution = meanflow_sample(small, x, n_steps=3, return_trajectory=True)
    assert solution.x.shape == (10, 2) and solution.trajectory.shape == (4, 10, 2) and solution.nfe == 3
    torch.testing.assert_close(solution.times, torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))
    t, r = sample_time_pairs(1000, "uniform", 0.75, torch.Generator().manual_seed(0))
    assert t.shape == r.shape == (1000, 1) and bool((t <= r).all())
    assert abs(float((t == r).float().mean()) - 0.75) < 0.05


def test_one_step_lands_where_the_average_velocity_says(small):
    x0 = points(100, 7)
    with torch.no_grad():
        torch.testing.assert_close(meanflow_sample(small, x0).x, x0 + small(x0, 0.0, 1.0))
    exact = ExactAverageVelocity()
    ode_end = solve_ode(exact.field, x0.double(), n_steps=400, method="rk4").x
    for n_steps in (1, 2):                         # exact jumps compose: any number lands on the ODE's end
        jumped = meanflow_sample(exact, x0, n_steps=n_steps).x
        assert float((jumped - ode_end).norm(dim=1).max()) < 1e-3, n_steps


def test_the_shipped_model_lands_near_the_exact_one_step_end_points():
    model, metadata = load_pretrained("meanflow", "gaussian")
    assert isinstance(model, AverageVelocityField) and metadata["recipe"]["trainer"] == "meanflow"
    x0 = points(1000, 8)
    exact_end = ExactAverageVelocity().endpoint(x0, 0.0, 1.0).float()
    with torch.no_grad():
        gap = (meanflow_sample(model, x0).x - exact_end).norm(dim=1)
    assert float(gap.median()) < 0.3                # well inside a mode (3 std = 0.75)


def test_training_learns_a_one_step_jump():
    # All data at one point c: every path ends at c, so the exact one-step jump is x0 -> c.
    torch.manual_seed(0)
    model = AverageVelocityField(hidden_dim=32, activation="relu")
    c = torch.tensor([2.0, -1.0])
    data = c + 0.01 * points(500, 9)
    x0 = points(200, 10)
    before = float((meanflow_sample(model, x0).x - c).norm(dim=1).mean())
    result = train_meanflow(model, data, n_steps=200, batch_size=64, lr=1e-2, seed=0, progress=False)
    after = float((meanflow_sample(model, x0).x - c).norm(dim=1).mean())
    assert len(result.losses) == 200 and result.recipe["objective"] == "meanflow"
    assert after < 0.3 < before, (before, after)


# ---------------------------------------------------------------- checkpoints and the recipe

def test_the_class_is_registered_and_survives_a_checkpoint(tmp_path, small):
    assert MODEL_CLASSES["AverageVelocityField"].cls is AverageVelocityField
    path = save_checkpoint(small, tmp_path / "meanflow.pt", base="gaussian")
    loaded, metadata = load_checkpoint(path, expected_class="AverageVelocityField")
    x = points(5)
    torch.testing.assert_close(loaded(x, 0.1, 0.6), small(x, 0.1, 0.6))
    assert loaded.config == small.config == {"time_emb_dim": 16, "hidden_dim": 16, "activation": "silu"}


def test_the_recipe_trains_the_meanflow_kind():
    spec = recipe("meanflow", "gaussian")
    assert spec["trainer"] == "meanflow" and spec["model"] == "AverageVelocityField"
    model, metadata = train_recipe("meanflow", "gaussian", n_steps=2)
    assert isinstance(model, AverageVelocityField) and metadata["steps"] == 2 and "quality" not in metadata


# ---------------------------------------------------------------- refused arguments

def test_bad_arguments_are_refused_naming_the_argument(small):
    x = points(4)
    with pytest.raises(TypeError, match="x0"):
        meanflow_sample(small, x.tolist())
    with pytest.raises(ValueError, match="n_steps"):
        meanflow_sample(small, x, n_steps=0)
    with pytest.raises(TypeError, match="model"):
        meanflow_sample(ConditionalVelocityField(n_classes=2, hidden_dim=8), x)
    with pytest.raises(ValueError, match="x0"):
        meanflow_sample(small, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="equal_share"):
        train_meanflow(small, x, equal_share=1.5)
    with pytest.raises(ValueError, match="time_sampling"):
        train_meanflow(small, x, time_sampling="beta")
    with pytest.raises(ValueError, match="n_steps"):
        train_meanflow(small, x, n_steps=0)
    with pytest.raises(ValueError, match="data"):
        train_meanflow(small, torch.zeros(4, 3))
    with pytest.raises(TypeError, match="model"):
        train_meanflow(ConditionalVelocityField(n_classes=2, hidden_dim=8), x)
    with pytest.raises(ValueError, match="z and v"):
        meanflow_loss(small, x, 0.1, 0.5, points(5))
    with pytest.raises(ValueError, match="r must lie in"):
        meanflow_loss(small, x, 0.1, torch.full((4, 1), 1.5), x)
    with pytest.raises(ValueError, match="t must be a number or a tensor of shape"):
        meanflow_loss(small, x, torch.zeros(3, 1), 0.5, x)
    with pytest.raises(ValueError, match="t must be <= 1"):
        meanflow_loss(small, x, 2.0, 0.5, x)
    with pytest.raises(ValueError, match="equal_share"):
        sample_time_pairs(10, equal_share=-0.1)
    with pytest.raises(ValueError, match="how"):
        sample_time_pairs(10, how="normal")
    with pytest.raises(TypeError, match="n must be an integer"):
        sample_time_pairs(2.5)
    with pytest.raises(TypeError, match="field"):
        ExactAverageVelocity(field=lambda x, t: x)
    with pytest.raises(ValueError, match="t must be <= 1"):
        ExactAverageVelocity()(x, 1.5, 0.5)
    with pytest.raises(TypeError, match="r must be a real number"):
        ExactAverageVelocity()(x, 0.5, "one")
    with pytest.raises(ValueError, match="steps_per_unit"):
        ExactAverageVelocity(steps_per_unit=0)
    with pytest.raises(ValueError, match=r"t must lie in \[h, 1 - h\]"):
        along_path_derivative(ExactAverageVelocity(), RingMarginalField(), x, 0.0, 1.0)
    with pytest.raises(ValueError, match="h must be > 0"):
        along_path_derivative(ExactAverageVelocity(), RingMarginalField(), x, 0.5, 1.0, h=0)


# ---------------------------------------------------------------- checks at the door, not per step

class CheckCounter:
    """Counts calls of the package's argument checks while ``run`` runs (as tests/test_layout.py does)."""

    def __init__(self):
        self.calls = 0
        self.folder = meanflow.__file__.rsplit("/", 1)[0]

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if event == "call" and self.folder in code.co_filename and (
                code.co_filename.endswith("_checks.py") or code.co_name.startswith(("check_", "_check"))):
            self.calls += 1

    def count(self, run) -> int:
        sys.setprofile(self)
        try:
            run()
        finally:
            sys.setprofile(None)
        return self.calls


def test_check_calls_do_not_grow_with_the_number_of_steps():
    data = create_ring_gaussians(256, seed=0)[0]

    def run(n):
        torch.manual_seed(0)
        train_meanflow(AverageVelocityField(hidden_dim=8), data, n_steps=n, batch_size=16, seed=0, progress=False)

    counts = [CheckCounter().count(lambda: run(n)) for n in (10, 30)]
    assert counts[0] == counts[1] > 0, counts


# ---------------------------------------------------------------- the benchmark

def test_the_step_cost_benchmark_reports_both_steps_and_their_ratio():
    from benchmarks import meanflow_cost, report

    spec = {"batch_size": 16, "lr": 2e-3, "schedule": "cosine", "time_sampling": "logit_normal",
            "equal_share": 0.75, "activation": "silu"}
    costs = meanflow_cost.meanflow_step_cost(spec, chunk_steps=2, rounds=1, n_points=100)
    assert set(costs) == {"meanflow_cost_ms_per_step_flow_matching_batch16",
                          "meanflow_cost_ms_per_step_meanflow_batch16", "meanflow_cost_ratio_batch16"}
    assert costs["meanflow_cost_ratio_batch16"] == pytest.approx(
        costs["meanflow_cost_ms_per_step_meanflow_batch16"] / costs["meanflow_cost_ms_per_step_flow_matching_batch16"])
    assert any("MeanFlow" in line for line in report.meanflow_cost_lines(costs))
