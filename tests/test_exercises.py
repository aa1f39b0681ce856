"""The exercise checks can fail: stubs and typical wrong answers fail with a hint, right answers pass.

The right answers are the solution notebook's own cells, the stubs are the student copy's, and
each check runs the notebook's own check cell, so what is tested is what students run.
"""
import contextlib
import importlib
import io
import os
import re
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch

from gen_models_utilities import exercises as checks
from gen_models_utilities import paths
from tools.student_copies import make_student_notebook

ROOT = Path(__file__).resolve().parents[1]
# EXERCISE_NOTEBOOK=drafts/part3.ipynb runs these tests on a draft of one part of the notebook.
SOLUTION = ROOT / os.environ.get("EXERCISE_NOTEBOOK", "notebooks/exercises/17_flow_matching_exercises.ipynb")


def exercise_numbers(notebook) -> list[int]:
    """The exercise numbers N of the cells tagged exercise-N, in order."""
    tags = {tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])}
    return sorted(int(tag.split("-")[1]) for tag in tags if re.fullmatch(r"exercise-\d+", tag))


EXERCISES = exercise_numbers(nbformat.read(SOLUTION, as_version=4))
TABLES = [importlib.import_module(f"tests.exercise_mistakes.{path.stem}")
          for path in sorted((ROOT / "tests" / "exercise_mistakes").glob("part*.py"))]
WRONG_ANSWERS = [row for table in TABLES for row in table.WRONG_ANSWERS if row[0] in EXERCISES]
NAMED_MISTAKES = [row for table in TABLES for row in table.NAMED_MISTAKES if row[0] in EXERCISES]


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
    student = make_student_notebook(solution)
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
    assert printed.startswith(("Correct:", "Recorded:")) and printed.count("\n") == 1, printed


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


def test_at_least_two_wrong_answers_per_exercise():
    for exercise in EXERCISES:
        assert sum(1 for n, _, _ in WRONG_ANSWERS if n == exercise) >= 2, exercise


@pytest.mark.parametrize("exercise, mistake, code", WRONG_ANSWERS, ids=[m for _, m, _ in WRONG_ANSWERS])
def test_typical_wrong_answers_fail_with_a_hint(notebooks, solved, exercise, mistake, code):
    solution, _ = notebooks
    namespace = dict(solved)
    quietly(textwrap.dedent(code), namespace)
    assert_fails_with_hint(solution, exercise, namespace)


@pytest.mark.parametrize("exercise, code, hint", NAMED_MISTAKES, ids=[f"{e}: {h}" for e, _, h in NAMED_MISTAKES])
def test_named_mistakes_get_their_own_hint(notebooks, solved, exercise, code, hint):
    solution, _ = notebooks
    namespace = dict(solved)
    quietly(code, namespace)
    assert hint in assert_fails_with_hint(solution, exercise, namespace)


@pytest.mark.parametrize("check, arguments", [
    (checks.check_path, ("not a function", paths.conditional_velocity)),
    (checks.check_loss, (3,)),
    (checks.check_euler, (None,)),
    (checks.check_fewest_steps, ([4, 8],)),
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


def test_conditional_check_refuses_an_unconditional_model(trained_fm):
    with pytest.raises(TypeError, match="one-hot"):
        checks.check_conditional_sampling(lambda *a: None, trained_fm)


def test_a_students_traceback_shows_no_checker_source():
    """In a real kernel, a wrong answer's traceback holds the student's cell and function, not the check's code."""
    import nbclient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent("""
        import torch
        from gen_models_utilities import exercises as checks
        checks.check_euler(lambda velocity, x0, times: torch.stack([x0] * len(times)))
        """)), nbformat.v4.new_code_cell("def stub(velocity, x0, times):\n    raise NotImplementedError('write me')\n"
                                         "checks.check_euler(stub)")]
    nbclient.NotebookClient(notebook, allow_errors=True, timeout=120, kernel_name="python3").execute()
    shown = []
    for cell in notebook.cells:
        (error,) = [output for output in cell.outputs if output.output_type == "error"]
        shown.append(re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback)))
    failure, stub = shown
    assert "ExerciseFailure" in failure and "expected" in failure, failure
    assert "write me" in stub and "raise NotImplementedError('write me')" in stub, stub
    for text in shown:
        assert "gen_models_utilities/" not in text and "fail(" not in text and "hint" not in text, text
