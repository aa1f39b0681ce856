"""Student copies: solutions become stubs, the rest stays, drift is detected, work is never lost."""
import io
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
