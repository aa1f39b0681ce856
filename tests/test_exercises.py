"""The exercise checks can fail: stubs and typical wrong answers fail with a hint, right answers pass.

The right answers are the solution notebook's own cells, the stubs are the student copy's, and
each check runs the notebook's own check cell, so what is tested is what students run.
"""
import contextlib
import io
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch

from gen_models_utilities import exercises as checks
from gen_models_utilities import paths, solvers
from gen_models_utilities.base_distributions import sample_base
from gen_models_utilities.couplings import minibatch_ot_coupling
from gen_models_utilities.guidance import GuidedVelocity
from gen_models_utilities.marginal_field import RingMarginalField
from tools.student_copies import student_path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "notebooks" / "exercises" / "17_flow_matching_exercises.ipynb"
EXERCISES = range(1, 16)


def tagged(notebook, exercise: int, kind: str) -> list[str]:
    """Sources of the code cells tagged exercise-<n> and ``kind`` ('solution' or 'check')."""
    return [cell.source for cell in notebook.cells
            if cell.cell_type == "code" and {f"exercise-{exercise}", kind} <= set(cell.metadata.get("tags", []))]


def quietly(source: str, namespace: dict) -> str:
    """Execute ``source`` in ``namespace``; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(source, namespace)
    return out.getvalue()


@pytest.fixture(scope="module")
def notebooks():
    solution = nbformat.read(SOLUTION, as_version=4)
    student = nbformat.read(student_path(SOLUTION), as_version=4)
    return solution, student


@pytest.fixture(scope="module")
def onehot_model():
    """The shipped one-hot model, or a quickly trained one (the checks compare with a reference
    sampler run on the same model, so they do not need a good one)."""
    from gen_models_utilities.pretrained import load_pretrained

    try:
        return load_pretrained("onehot", "gaussian")[0]
    except FileNotFoundError:
        from gen_models_utilities import ConditionalVelocityField, create_ring_gaussians, train

        torch.manual_seed(0)
        model = ConditionalVelocityField()
        points, labels = create_ring_gaussians(4000, seed=0)
        train(model, points, labels=labels, n_steps=600, seed=0, progress=False)
        return model


@pytest.fixture(scope="module")
def solved(notebooks, trained_fm, onehot_model):
    """A namespace after the header cell and every solution cell of the solution notebook."""
    solution, _ = notebooks
    namespace = {}
    header = next(cell.source for cell in solution.cells      # the header cell, after the Colab install cell
                  if cell.cell_type == "code" and "colab" not in cell.metadata.get("tags", []))
    with plt.rc_context():                          # the header applies the book style
        quietly(header, namespace)
    namespace.update(fm_model=trained_fm, onehot_model=onehot_model)
    for exercise in EXERCISES:
        for source in tagged(solution, exercise, "solution"):
            quietly(source, namespace)
    return namespace


def run_check(notebook, exercise: int, namespace: dict) -> str:
    return "".join(quietly(source, namespace) for source in tagged(notebook, exercise, "check"))


def assert_fails_with_hint(notebook, exercise: int, namespace: dict) -> str:
    with pytest.raises(AssertionError) as failure:
        run_check(notebook, exercise, namespace)
    message = str(failure.value)
    assert "expected" in message and "received" in message and "Hint:" in message, message
    return message


def test_every_exercise_has_one_solution_and_one_check(notebooks):
    solution, _ = notebooks
    for exercise in EXERCISES:
        assert len(tagged(solution, exercise, "solution")) == 1
        assert len(tagged(solution, exercise, "check")) == 1
        assert "### BEGIN SOLUTION" in tagged(solution, exercise, "solution")[0]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_right_answers_pass_with_one_line(notebooks, solved, exercise):
    solution, _ = notebooks
    printed = run_check(solution, exercise, dict(solved))
    assert printed.startswith("Correct:") and printed.count("\n") == 1, printed


@pytest.mark.parametrize("exercise", EXERCISES)
def test_student_stubs_fail(notebooks, solved, exercise):
    solution, student = notebooks
    namespace = dict(solved)
    try:
        for source in tagged(student, exercise, "solution"):
            quietly(source, namespace)
        run_check(solution, exercise, namespace)
    except NotImplementedError:
        return
    except AssertionError as failure:
        assert "expected" in str(failure) and "received" in str(failure)
        return
    pytest.fail(f"the check of exercise {exercise} passed on the student stub")


def test_package_reference_implementations_pass(capsys, trained_fm, onehot_model):
    def reference_sampler(velocity, n_samples, n_steps, seed):
        x0 = sample_base("gaussian", n_samples, seed=seed)
        return solvers.solve_ode(velocity, x0, n_steps=n_steps, return_trajectory=True).trajectory

    checks.check_path(paths.interpolate, paths.conditional_velocity)
    checks.check_loss(paths.flow_matching_loss)
    checks.check_euler(solvers.euler_step, reference_sampler)
    checks.check_rk4(solvers.rk4_step)
    checks.check_loss_floor("(C)", checks.data_variance_floor(50_000))
    checks.check_ot_pairing(minibatch_ot_coupling)
    checks.check_marginal_velocity(RingMarginalField())
    checks.check_encode(lambda v, x1, n: solvers.solve_ode(v, x1, n_steps=n, t0=1.0, t1=0.0).x, " (B)", trained_fm)
    checks.check_guidance(GuidedVelocity, "c", onehot_model)
    assert capsys.readouterr().out.count("Correct:") == 9


# Typical wrong answers: (exercise, what the student got wrong, code that replaces the answer).
WRONG_ANSWERS = [
    (1, "path run backwards", """
        def interpolate_point(x0, x1, t):
            return t * x0 + (1 - t) * x1
     """),
    (1, "target points backwards", """
        def target_velocity(x0, x1):
            return x0 - x1
     """),
    (1, "sum instead of a weighted mean", """
        def interpolate_point(x0, x1, t):
            return x0 + t * x1
     """),
    (4, "target x0 - x1 in the loss", """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x0 - x1)) ** 2).mean()
     """),
    (4, "model evaluated at the noise", """
        def fm_loss(model, x0, x1, t):
            return ((model(x0, t) - (x1 - x0)) ** 2).mean()
     """),
    (4, "loss returned as a float", """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x1 - x0)) ** 2).mean().item()
     """),
    (4, "sum over the batch", """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x1 - x0)) ** 2).sum()
     """),
    (7, "field evaluated at the end of the step", """
        def euler_step(velocity, x, t, h):
            return x + h * velocity(x, t + h)
     """),
    (7, "step not scaled by h", """
        def euler_step(velocity, x, t, h):
            return x + velocity(x, t)
     """),
    (7, "sampler starts from the data", """
        def euler_sample(velocity, n_samples, n_steps, seed):
            x = torch.from_numpy(create_ring_gaussians(n_samples, seed=seed)[0])
            trajectory = [x]
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, 1 / n_steps)
                trajectory.append(x)
            return torch.stack(trajectory)
     """),
    (7, "sampler runs time backwards", """
        def euler_sample(velocity, n_samples, n_steps, seed):
            x = sample_base("gaussian", n_samples, seed=seed)
            trajectory = [x]
            for k in range(n_steps):
                x = euler_step(velocity, x, 1 - k / n_steps, -1 / n_steps)
                trajectory.append(x)
            return torch.stack(trajectory)
     """),
    (7, "sampler drops the starting point", """
        def euler_sample(velocity, n_samples, n_steps, seed):
            x = sample_base("gaussian", n_samples, seed=seed)
            trajectory = []
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, 1 / n_steps)
                trajectory.append(x)
            return torch.stack(trajectory)
     """),
    (9, "equal weights", """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t + h / 2)
            k3 = velocity(x + h / 2 * k2, t + h / 2)
            k4 = velocity(x + h * k3, t + h)
            return x + h / 4 * (k1 + k2 + k3 + k4)
     """),
    (9, "middle slopes at the start time", """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t)
            k3 = velocity(x + h / 2 * k2, t)
            k4 = velocity(x + h * k3, t + h)
            return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
     """),
    (9, "midpoint instead of RK4", """
        def rk4_step(velocity, x, t, h):
            return x + h * velocity(x + h / 2 * velocity(x, t), t + h / 2)
     """),
    (12, "code of the wrong mode", """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = nn.functional.one_hot(torch.tensor([(mode + 1) % 8]), 8).float()
            return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]
     """),
    (12, "no condition (all-zero code)", """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = torch.zeros(1, 8)
            return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]
     """),
    (12, "starts from the uniform base", """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = nn.functional.one_hot(torch.tensor([mode]), 8).float()
            x = sample_base("uniform", n_samples, seed=seed)
            for k in range(n_steps):
                x = euler_step(lambda y, s: model(y, s, code), x, k / n_steps, 1 / n_steps)
            return x
     """),
    (10, "ignores the step count", """
        def off_mode_by_steps(model, step_counts, n_samples, seed):
            return [off_mode_fraction(euler_sample(model, n_samples, 1, seed)[-1]) for k in step_counts]
     """),
    (10, "percentages", """
        def off_mode_by_steps(model, step_counts, n_samples, seed):
            return [100 * off_mode_fraction(euler_sample(model, n_samples, k, seed)[-1]) for k in step_counts]
     """),
    (10, "the largest step count as the fewest", """
        FEWEST_STEPS = STEP_COUNTS[-1]
     """),
    (5, "blames the network's size", """
        ANSWER = "a"
     """),
    (5, "blames Euler's method", """
        ANSWER = "d"
     """),
    (5, "floor from the noise's variance", """
        def loss_floor_at_t0(n_pairs=100_000, seed=0):
            return 1.0
     """),
    (5, "floor of zero", """
        def loss_floor_at_t0(n_pairs=100_000, seed=0):
            return 0.0
     """),
    (15, "identity pairing", """
        def ot_pairing(x0, x1):
            return x0
     """),
    (15, "pairs x1 with itself", """
        def ot_pairing(x0, x1):
            return x1
     """),
    (15, "nearest neighbour, not a permutation", """
        def ot_pairing(x0, x1):
            return x0[torch.cdist(x1, x0).argmin(dim=1)]
     """),
    (15, "assignment read the wrong way round", """
        def ot_pairing(x0, x1):
            from scipy.optimize import linear_sum_assignment
            _, columns = linear_sum_assignment((torch.cdist(x0, x1) ** 2).numpy())
            return x0[torch.as_tensor(columns)]
     """),
    (2, "field pointing at the ring", """
        def field_at_0(x):
            return 3 * x / x.norm(dim=1, keepdim=True) - x
     """),
    (2, "sign flipped at t = 1", """
        def field_at_1(x):
            return -x
     """),
    (2, "zero field", """
        def field_at_0(x):
            return torch.zeros_like(x)
     """),
    (3, "equal weights for every mode", """
        def marginal_velocity(x, t):
            var, c = (1 - t) ** 2 + t ** 2 * RING_STD ** 2, t * RING_STD ** 2 - (1 - t)
            return (CENTERS[None] + c / var * (x[:, None, :] - t * CENTERS[None])).mean(dim=1)
     """),
    (3, "weights with variance 1", """
        def marginal_velocity(x, t):
            var, c = (1 - t) ** 2 + t ** 2 * RING_STD ** 2, t * RING_STD ** 2 - (1 - t)
            offset = x[:, None, :] - t * CENTERS[None]
            weights = torch.softmax(-(offset ** 2).sum(dim=2) / 2, dim=1)
            return (weights[:, :, None] * (CENTERS[None] + c / var * offset)).sum(dim=1)
     """),
    (3, "no correction term", """
        def marginal_velocity(x, t):
            var = (1 - t) ** 2 + t ** 2 * RING_STD ** 2
            offset = x[:, None, :] - t * CENTERS[None]
            weights = torch.softmax(-(offset ** 2).sum(dim=2) / (2 * var), dim=1)
            return weights @ CENTERS
     """),
    (6, "untrained model", """
        my_model, my_losses = VelocityField(), [4.6] * 100
     """),
    (6, "target x0 - x1 in the training loss", """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x0 - x1)) ** 2).mean()
        my_model, my_losses = train_my_model(n_steps=600)
     """),
    (6, "over the step budget", """
        my_losses = [3.0] * 3000
     """),
    (8, "no move", """
        def one_step_endpoint(x0):
            return x0
     """),
    (8, "step towards the ring", """
        def one_step_endpoint(x0):
            return 3 * x0 / x0.norm(dim=1, keepdim=True)
     """),
    (8, "off-mode share of the data", """
        ONE_STEP_OFF_MODE = 0.011
     """),
    (11, "encodes forwards in time", """
        def encode(velocity, x1, n_steps):
            x = x1
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, 1 / n_steps)
            return x
     """),
    (11, "field read at the forward times", """
        def encode(velocity, x1, n_steps):
            x = x1
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, -1 / n_steps)
            return x
     """),
    (11, "diffusion can be inverted the same way", """
        DIFFUSION_ANSWER = "a"
     """),
    (13, "fields swapped", """
        def guided_velocity(model, code, w):
            def velocity(x, t):
                v_cond, v_uncond = model(x, t, code), model(x, t, torch.zeros_like(code))
                return v_cond + w * (v_uncond - v_cond)
            return velocity
     """),
    (13, "scales the conditional field", """
        def guided_velocity(model, code, w):
            return lambda x, t: w * model(x, t, code)
     """),
    (13, "large w pulls to the centre", """
        LARGE_W_ANSWER = "d"
     """),
    (13, "large w changes nothing", """
        LARGE_W_ANSWER = "b"
     """),
    (14, "min and max of the training radii", """
        def seen_range(radii):
            return radii.min(), radii.max()
     """),
    (14, "percentile given fractions", """
        def seen_range(radii):
            return np.percentile(radii, 0.01), np.percentile(radii, 0.99)
     """),
    (14, "flags inverted", """
        def flag_extrapolation(requested, low, high):
            return [low <= r <= high for r in requested]
     """),
]


def test_at_least_two_wrong_answers_per_exercise():
    for exercise in EXERCISES:
        assert sum(1 for n, _, _ in WRONG_ANSWERS if n == exercise) >= 2, exercise


@pytest.mark.parametrize("exercise, mistake, code", WRONG_ANSWERS, ids=[m for _, m, _ in WRONG_ANSWERS])
def test_typical_wrong_answers_fail_with_a_hint(notebooks, solved, exercise, mistake, code):
    solution, _ = notebooks
    namespace = dict(solved)
    quietly(textwrap.dedent(code), namespace)
    assert_fails_with_hint(solution, exercise, namespace)


@pytest.mark.parametrize("exercise, code, hint", [
    (1, "def interpolate_point(x0, x1, t):\n    return t * x0 + (1 - t) * x1\n", "backwards"),
    (7, "def euler_step(velocity, x, t, h):\n    return x + h * velocity(x, t + h)\n", "end of the step"),
    (2, "def field_at_0(x):\n    return 3 * x / x.norm(dim=1, keepdim=True) - x\n", "E[x1] = 0"),
    (14, "def seen_range(radii):\n    return radii.min(), radii.max()\n", "straggler"),
], ids=["interpolation backwards", "Euler at the step's end", "field at 0 from the data", "min/max range"])
def test_named_mistakes_get_their_own_hint(notebooks, solved, exercise, code, hint):
    solution, _ = notebooks
    namespace = dict(solved)
    quietly(code, namespace)
    assert hint in assert_fails_with_hint(solution, exercise, namespace)


@pytest.mark.parametrize("check, arguments", [
    (checks.check_path, ("not a function", paths.conditional_velocity)),
    (checks.check_loss, (3,)),
    (checks.check_ot_pairing, (None,)),
    (checks.check_marginal_velocity, ("u_t",)),
    (checks.check_one_step, (0.0, 1.0, None)),
    (checks.check_extrapolation, (None, None, [3.0], [3.0])),
])
def test_checks_refuse_non_callables(check, arguments):
    with pytest.raises(TypeError, match="callable"):
        check(*arguments)


def test_training_check_refuses_a_non_model():
    with pytest.raises(TypeError, match="nn.Module"):
        checks.check_trained_model("my model", [1.0])


def test_guidance_check_refuses_an_unconditional_model(trained_fm):
    with pytest.raises(TypeError, match="one-hot"):
        checks.check_guidance(lambda *a: None, "c", trained_fm)


def test_conditional_check_refuses_an_unconditional_model(trained_fm):
    with pytest.raises(TypeError, match="one-hot"):
        checks.check_conditional_sampling(lambda *a: None, trained_fm)
