"""Student copies: solutions become stubs, the rest stays, drift is detected, work is never lost."""
import io
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import student_copies as sc

ROOT = Path(__file__).resolve().parents[1]

SOLUTION_CODE = '''import torch


def double(x):
    """Twice x."""
    y = x
    ### BEGIN SOLUTION
    y = 2 * x
    ### END SOLUTION
    return y


### BEGIN SOLUTION
ANSWER = "c"
### END SOLUTION
print("after")'''


def write_solution(folder: Path, name: str = "demo_exercises.ipynb", source: str = SOLUTION_CODE) -> Path:
    cell = new_code_cell(source, execution_count=3,
                         outputs=[nbformat.v4.new_output("stream", name="stdout", text="after\n")])
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00"}
    notebook = new_notebook(cells=[
        new_markdown_cell("# Demo\n\nWhy?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        cell,
        new_code_cell("check(double)", execution_count=4),
    ])
    path = folder / name
    nbformat.write(notebook, path)
    return path


def run(paths, **kwargs):
    out = io.StringIO()
    status = sc.sync(paths, out=out, **kwargs)
    return status, out.getvalue()


def test_stubs_replace_solutions_and_keep_the_rest(tmp_path):
    solution = write_solution(tmp_path)
    assert run([solution]) == (0, f"wrote: {sc.student_path(solution)}\n")
    student = nbformat.read(sc.student_path(solution), as_version=4)
    markdown, code, check = student.cells
    assert "Because." not in markdown.source and sc.MARKDOWN_STUB in markdown.source
    assert "Why?" in markdown.source
    lines = code.source.split("\n")
    assert "    " + sc.CODE_STUB in lines          # the function's stub keeps its indentation
    assert sc.CODE_STUB in lines                   # the top-level stub has none
    assert "y = 2 * x" not in code.source and 'ANSWER = "c"' not in code.source
    assert "### BEGIN SOLUTION" not in code.source and "### END SOLUTION" not in code.source
    for kept in ("def double(x):", '    """Twice x."""', "    y = x", "    return y", 'print("after")', "import torch"):
        assert kept in lines
    assert code.outputs == [] and code.execution_count is None and "execution" not in code.metadata
    assert check.source == "check(double)" and check.execution_count is None


def test_copy_keeps_tags_but_not_the_jupytext_pairing(tmp_path):
    solution = write_solution(tmp_path)
    notebook = nbformat.read(solution, as_version=4)
    notebook.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells[1].metadata["tags"] = ["exercise-1", "solution", "nbval-ignore-output"]
    nbformat.write(notebook, solution)
    run([solution])
    student = nbformat.read(sc.student_path(solution), as_version=4)
    assert "jupytext" not in student.metadata
    assert student.metadata["kernelspec"] == notebook.metadata["kernelspec"]
    assert student.cells[1].metadata["tags"] == ["exercise-1", "solution", "nbval-ignore-output"]


def test_stub_raises_not_implemented_error(tmp_path):
    solution = write_solution(tmp_path)
    run([solution])
    source = nbformat.read(sc.student_path(solution), as_version=4).cells[1].source
    namespace = {}
    with pytest.raises(NotImplementedError):
        exec(source, namespace)                   # the top-level answer stub
    with pytest.raises(NotImplementedError):
        namespace["double"](1)                    # defined before the top-level stub raised


def test_second_run_is_in_sync_and_check_passes(tmp_path):
    solution = write_solution(tmp_path)
    run([solution])
    assert run([solution])[0] == 0
    status, text = run([solution], check=True)
    assert status == 0 and "in sync" in text


def test_check_reports_missing_and_drifted_copies(tmp_path):
    solution = write_solution(tmp_path)
    status, text = run([solution], check=True)
    assert status == 1 and "missing" in text and not sc.student_path(solution).exists()
    run([solution])
    write_solution(tmp_path, source=SOLUTION_CODE.replace('print("after")', 'print("changed")'))
    status, text = run([solution], check=True)
    assert status == 1 and "OUT OF SYNC" in text and str(sc.student_path(solution)) in text


def test_edited_copy_is_kept_without_force_and_overwritten_with_force(tmp_path):
    solution = write_solution(tmp_path)
    run([solution])
    target = sc.student_path(solution)
    notebook = nbformat.read(target, as_version=4)
    notebook.cells[1].source = notebook.cells[1].source.replace(sc.CODE_STUB, "y = x + x")
    nbformat.write(notebook, target)
    edited = target.read_bytes()
    status, text = run([solution])
    assert status == 1 and "KEPT" in text and "edited" in text and "--force" in text
    assert target.read_bytes() == edited
    status, text = run([solution], force=True)
    assert status == 0 and "overwrote" in text
    assert target.read_text() == sc.render_student_copy(solution)


def test_stale_unedited_copy_is_also_kept_but_reported_as_stale(tmp_path):
    solution = write_solution(tmp_path)
    run([solution])
    before = sc.student_path(solution).read_bytes()
    write_solution(tmp_path, source=SOLUTION_CODE + "\nprint('more')")
    status, text = run([solution])
    assert status == 1 and "solution notebook changed" in text
    assert sc.student_path(solution).read_bytes() == before


def test_write_leaves_no_temporary_files(tmp_path):
    solution = write_solution(tmp_path)
    run([solution])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_exercises.ipynb", "demo_exercises_student.ipynb"]
    solution_mode = solution.stat().st_mode & 0o777
    assert sc.student_path(solution).stat().st_mode & 0o777 == solution_mode   # not mkstemp's 0o600


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
    ("x = 1  ### BEGIN SOLUTION\n", "stand alone"),
])
def test_unbalanced_markers_are_refused(tmp_path, source, problem):
    solution = write_solution(tmp_path, source=source)
    status, text = run([solution])
    assert status == 2 and problem in text and not sc.student_path(solution).exists()


def test_bad_paths_are_refused(tmp_path):
    assert run([tmp_path / "missing_exercises.ipynb"])[0] == 2
    solution = write_solution(tmp_path)
    run([solution])
    status, text = run([sc.student_path(solution)])
    assert status == 2 and "student copy" in text


def test_command_line_check_and_force_exclude_each_other(tmp_path):
    solution = write_solution(tmp_path)
    with pytest.raises(SystemExit):
        sc.main(["--check", "--force", str(solution)])


def test_command_line_exit_codes(tmp_path, capsys):
    solution = write_solution(tmp_path)
    assert sc.main(["--check", str(solution)]) == 1 and "OUT OF SYNC" in capsys.readouterr().out
    assert sc.main([str(solution)]) == 0 and "wrote" in capsys.readouterr().out
    assert sc.main(["--check", str(solution)]) == 0 and "in sync" in capsys.readouterr().out


@pytest.mark.slow
def test_runs_as_a_module(tmp_path):
    """`python -m tools.student_copies` from the repository root (slow: a fresh interpreter)."""
    solution = write_solution(tmp_path)
    command = [sys.executable, "-m", "tools.student_copies", "--check", str(solution)]
    checked = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 1 and "OUT OF SYNC" in checked.stdout


def test_committed_student_copies_are_in_sync():
    solutions = sc.default_solutions(ROOT)
    assert solutions, "no notebooks/exercises/*_exercises.ipynb found"
    status, text = run(solutions, check=True)
    assert status == 0, text


# ----------------------------------------------------------------------------- hidden tests and answer names

CHECK_WITH_HIDDEN = '''check_answer(ANSWER)
### BEGIN HIDDEN TESTS
assert ANSWER == "c", "ANSWER: expected the right choice"
### END HIDDEN TESTS
'''


def tagged_notebook(folder: Path, cells, name: str = "demo_exercises.ipynb") -> Path:
    """A solution notebook of (cell type, source, tags) triples."""
    made = []
    for kind, source, tags in cells:
        cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        made.append(cell)
    path = folder / name
    nbformat.write(new_notebook(cells=made), path)
    return path


def test_hidden_tests_are_dropped_markers_included(tmp_path):
    solution = tagged_notebook(tmp_path, [
        ("code", '### BEGIN SOLUTION\nANSWER = "c"\n### END SOLUTION', ["exercise-1", "solution"]),
        ("code", CHECK_WITH_HIDDEN, ["exercise-1", "check"]),
        ("code", "check_more()\n    ### BEGIN HIDDEN TESTS\n    assert True\n    ### END HIDDEN TESTS\nprint('after')",
         ["exercise-2", "check"]),
    ])
    run([solution])
    _, check, middle = nbformat.read(sc.student_path(solution), as_version=4).cells
    assert check.source == "check_answer(ANSWER)"              # no markers, no hidden asserts, no trailing blanks
    assert middle.source == "check_more()\nprint('after')"
    assert check.metadata["tags"] == ["exercise-1", "check"]


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN HIDDEN TESTS\nassert 1\n", "never closed"),
    ("assert 1\n### END HIDDEN TESTS\n", "without"),
    ("### BEGIN HIDDEN TESTS\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n", "inside another"),
    ("assert 1  ### BEGIN HIDDEN TESTS\n", "stand alone"),
])
def test_unbalanced_hidden_test_markers_are_refused(tmp_path, source, problem):
    solution = tagged_notebook(tmp_path, [("code", source, ["exercise-1", "check"])])
    status, text = run([solution])
    assert status == 2 and problem in text and not sc.student_path(solution).exists()


@pytest.mark.parametrize("kind, tags", [("code", ["exercise-1", "solution"]), ("code", []),
                                        ("markdown", ["exercise-1", "check"])])
def test_hidden_tests_outside_a_check_cell_are_refused(tmp_path, kind, tags):
    solution = tagged_notebook(tmp_path, [(kind, CHECK_WITH_HIDDEN, tags)])
    status, text = run([solution])
    assert status == 2 and "only in a check cell" in text and not sc.student_path(solution).exists()


def test_the_stub_keeps_a_comment_naming_the_answers_variables(tmp_path):
    source = '''import torch

# ANSWER_5: one letter
### BEGIN SOLUTION
ANSWER_5 = "b"
### END SOLUTION


def helper(x):
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION


### BEGIN SOLUTION
def rate(x):
    return x


LOW, HIGH = 1, 2
BEST: float = 0.5
for _ in range(2):
    LAST = _
### END SOLUTION'''
    lines = sc.strip_solutions(source).split("\n")
    assert lines[2:5] == ["# ANSWER_5: one letter", "# Your answer defines: ANSWER_5", sc.CODE_STUB]
    assert lines[7:9] == ["def helper(x):", "    " + sc.CODE_STUB]             # locals: no comment
    assert lines[-2:] == ["# Your answer defines: rate, LOW, HIGH, BEST, LAST", sc.CODE_STUB]
    namespace = {}
    with pytest.raises(NotImplementedError):
        exec("\n".join(lines[:5]), namespace)


def test_answer_names_without_a_parse_fall_back_to_the_block_indentation():
    source = "%matplotlib inline\n### BEGIN SOLUTION\nANSWER = 'a'\ndef f():\n    pass\n### END SOLUTION\n" \
             "if True:\n    ### BEGIN SOLUTION\n    X = 1\n    ### END SOLUTION"
    assert sc.answer_names(source) == {1: ["ANSWER", "f"]}        # the indented block: no claim
    assert sc.answer_names("### BEGIN SOLUTION\nx == 1\n### END SOLUTION") == {}        # a comparison defines nothing
    assert sc.DEFINES not in sc.strip_solutions("Why?\n### BEGIN SOLUTION\nX = 1\n### END SOLUTION", "markdown")


# ----------------------------------------------------------------------------- the nbgrader export

NBGRADER_KEYS = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points"}


def assert_valid_nbgrader(notebook) -> None:
    """nbgrader's schema 3 rules (nbgrader/nbgraderformat/v3.py, v3.json), checked without nbgrader."""
    ids = []
    for cell in notebook.cells:
        meta = cell.metadata["nbgrader"]
        assert set(meta) <= NBGRADER_KEYS and {"schema_version", "grade", "locked", "solution"} <= set(meta)
        assert meta["schema_version"] == 3 and meta["task"] is False
        assert re.fullmatch(r"[a-zA-Z0-9_\-]+", meta["grade_id"])
        ids.append(meta["grade_id"])
        if meta["grade"]:
            assert meta["points"] >= 0
        else:
            assert "points" not in meta
        if cell.cell_type == "markdown":
            assert meta["grade"] == meta["solution"]       # markdown answers are graded by hand in nbgrader
        if meta["solution"]:
            assert not meta["locked"]
    assert len(ids) == len(set(ids)), "duplicate grade ids"


def test_nbgrader_export_metadata_follows_the_tags(tmp_path):
    solution = tagged_notebook(tmp_path, [
        ("markdown", "# Demo", []),
        ("code", "import math", []),
        ("markdown", "## Exercise 1", ["exercise-1"]),
        ("code", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
         ["exercise-1", "solution"]),
        ("code", "# ANSWER: a letter\n### BEGIN SOLUTION\nANSWER = 'c'\n### END SOLUTION", ["exercise-1", "solution"]),
        ("code", CHECK_WITH_HIDDEN, ["exercise-1", "check"]),
        ("markdown", "Derive it.\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", ["exercise-2", "solution"]),
        ("code", "check_two()", ["exercise-2", "check"]),
    ])
    notebook = nbformat.read(solution, as_version=4)
    notebook.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nbformat.write(notebook, solution)
    out = tmp_path / "course"
    assert sc.main(["--nbgrader", str(out), str(solution)]) == 0
    exported = nbformat.read(out / "source" / "demo_exercises" / "demo_exercises.ipynb", as_version=4)
    assert "jupytext" not in exported.metadata
    assert_valid_nbgrader(exported)
    meta = [cell.metadata["nbgrader"] for cell in exported.cells]
    assert [m["grade_id"] for m in meta] == ["cell-0", "cell-1", "cell-2", "exercise-1-solution",
                                            "exercise-1-solution-2", "exercise-1-check", "exercise-2-answer",
                                            "exercise-2-check"]
    assert [(m["solution"], m["grade"], m["locked"], m.get("points")) for m in meta] == [
        (False, False, True, None), (False, False, True, None), (False, False, True, None),
        (True, False, False, None), (True, False, False, None), (False, True, True, 1),
        (True, True, False, 0), (False, True, True, 1)]
    assert exported.cells[4].source.startswith("# ANSWER: a letter\n# Your answer defines: ANSWER\n### BEGIN")
    assert "### BEGIN HIDDEN TESTS" in exported.cells[5].source                # nbgrader removes them itself
    config = (out / "nbgrader_config.py").read_text()
    compile(config, "nbgrader_config.py", "exec")
    assert repr(sc.CODE_STUB) in config and repr(sc.MARKDOWN_STUB) in config
    # What nbgrader's release makes of the export with that config is the suite's own student copy:
    student = sc.make_student_notebook(nbformat.read(solution, as_version=4))
    for cell, mine in zip(exported.cells, student.cells):
        released = sc.strip_solutions(sc.strip_hidden_tests(cell.source), cell.cell_type, name_answers=False)
        assert released == mine.source


def test_nbgrader_export_refuses_an_answer_in_a_check_cell(tmp_path, capsys):
    solution = tagged_notebook(tmp_path, [("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION", ["exercise-1",
                                                                                                  "check"])])
    assert sc.main(["--nbgrader", str(tmp_path / "course"), str(solution)]) == 2
    assert "check cell holds a solution block" in capsys.readouterr().out
    assert not (tmp_path / "course" / "nbgrader_config.py").exists()


def test_nbgrader_export_of_the_exercise_notebook(tmp_path):
    """The real solution notebooks export with valid metadata: a check per exercise, every answer a solution."""
    solutions = sc.default_solutions(ROOT)
    assert sc.export_nbgrader(solutions, tmp_path, log=io.StringIO()) == 0
    for solution in solutions:
        exported = nbformat.read(tmp_path / "source" / solution.stem / solution.name, as_version=4)
        assert_valid_nbgrader(exported)
        exercises = {sc.exercise_number(cell) for cell in exported.cells} - {None}
        check_ids = {cell.metadata["nbgrader"]["grade_id"] for cell in exported.cells if sc.cell_role(cell) == "check"}
        assert {f"exercise-{n}-check" for n in exercises} <= check_ids
        for cell in exported.cells:
            has_answer = sc.BEGIN in cell.source
            assert cell.metadata["nbgrader"]["solution"] == has_answer
            assert cell.metadata["nbgrader"]["grade"] == (sc.cell_role(cell) == "check" or
                                                           (has_answer and cell.cell_type == "markdown"))
