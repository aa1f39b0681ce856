"""Grading a class (tools.grade): marks per exercise, the checks put back, nothing stops the run, nothing is modified.

A tiny synthetic solution notebook (three exercises in plain Python, one graded by hidden tests, the
suite's tags and markers) keeps these tests fast; the last test grades the real exercise notebook.
"""
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import grade as gr
from tools import student_copies as sc

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 20           # seconds per notebook: a kernel starts in 1-3 s, more when busy; the endless loop costs this

HEADER = '''class ExerciseFailure(AssertionError):
    """A wrong answer."""


def check_double(double):
    got = double(3)
    if got != 6:
        mistake = " Typical mistake: adding instead of multiplying." if got == 5 else ""
        raise ExerciseFailure(f"double(3): expected 6, received {got}.{mistake} Hint: multiply by two.")
    print("Correct: double(3) is 6.")'''

DOUBLE = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION'''

ANSWER = '''# ANSWER: one letter
### BEGIN SOLUTION
ANSWER = "b"
### END SOLUTION'''

ANSWER_CHECK = '''if ANSWER not in ("a", "b", "c"):
    raise ExerciseFailure(f"ANSWER is not one of the choices: expected a, b or c, received {ANSWER!r}.")
print(f"Recorded: ANSWER = {ANSWER!r}.")
### BEGIN HIDDEN TESTS
if ANSWER != "b":
    raise ExerciseFailure(f"ANSWER: expected the right choice, received {ANSWER!r}. "
                          "Typical mistake: the longest option. Hint: reread the question.")
### END HIDDEN TESTS'''

SQUARE = '''def square(x):
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION'''

SQUARE_CHECK = '''assert square(4) == 16, f"square(4): expected 16, received {square(4)}."
print("Correct: square(4) is 16.")'''


def cell(kind, source, *tags):
    made = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if tags:
        made.metadata["tags"] = list(tags)
    return made


def solution_notebook():
    notebook = new_notebook(cells=[
        cell("markdown", "# Demo exercises"),
        cell("code", HEADER),
        cell("markdown", "## Exercise 1: double", "exercise-1"),
        cell("code", DOUBLE, "exercise-1", "solution"),
        cell("code", "check_double(double)", "exercise-1", "check"),
        cell("markdown", "## Exercise 2: a choice", "exercise-2"),
        cell("code", ANSWER, "exercise-2", "solution"),
        cell("code", ANSWER_CHECK, "exercise-2", "check"),
        cell("markdown", "## Exercise 3: square", "exercise-3"),
        cell("code", SQUARE, "exercise-3", "solution"),
        cell("code", SQUARE_CHECK, "exercise-3", "check"),
        cell("code", "print('the end')"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def index_of(notebook, exercise, role):
    return next(i for i, c in enumerate(notebook.cells)
                if sc.exercise_number(c) == exercise and sc.cell_role(c) == role)


def answered(**sources):
    """The student copy with answers written in: sources maps 'exercise_N' to the answer cell's source."""
    notebook = sc.make_student_notebook(solution_notebook())
    defaults = {1: DOUBLE, 2: ANSWER, 3: SQUARE}
    for number, source in defaults.items():
        notebook.cells[index_of(notebook, number, "solution")].source = sources.get(f"exercise_{number}", source)
    return notebook


def submissions(folder: Path) -> dict[str, str]:
    """Write every kind of submission into ``folder``; returns name -> what it tests."""
    folder.mkdir()
    wrong = answered(exercise_1=DOUBLE.replace("return 2 * x", "return x + 2"), exercise_2='ANSWER = "a"')
    edited = answered(exercise_1=DOUBLE.replace("return 2 * x", "return x + 2"))
    edited.cells[index_of(edited, 1, "check")].source = 'print("Correct: trust me")'
    missing = answered()
    del missing.cells[index_of(missing, 2, "check")]
    reordered = answered()
    i, j = index_of(reordered, 3, "solution"), index_of(reordered, 3, "check")
    reordered.cells[i], reordered.cells[j] = reordered.cells[j], reordered.cells[i]
    moved = answered()
    block = moved.cells[5:8]                          # exercise 2's three cells, moved to the end
    moved.cells = moved.cells[:5] + moved.cells[8:] + block
    copied = answered()                               # JupyterLab's copy and paste keeps a cell's tags
    copied.cells.insert(3, new_code_cell(DOUBLE.replace("2 * x", "x + x + 1"), metadata=copied.cells[3].metadata))
    copied.cells.insert(6, new_code_cell(copied.cells[5].source, metadata=copied.cells[5].metadata))
    endless = answered(exercise_3="while True:\n    pass")
    deleting = answered(exercise_1="import os\nfor name in os.listdir('.'):\n    os.remove(name)\n\n" + DOUBLE)
    dying = answered(exercise_2="import os\nos._exit(1)")
    notebooks = {"right.ipynb": solution_notebook(), "answered.ipynb": answered(), "wrong.ipynb": wrong,
                 "edited_check.ipynb": edited, "stub.ipynb": sc.make_student_notebook(solution_notebook()),
                 "missing.ipynb": missing, "reordered.ipynb": reordered, "moved.ipynb": moved, "copied.ipynb": copied,
                 "endless.ipynb": endless, "deletes.ipynb": deleting, "dies.ipynb": dying}
    for name, notebook in notebooks.items():
        nbformat.write(notebook, folder / name)
    (folder / "garbage.ipynb").write_text("this is not JSON")
    (folder / "essay.txt").write_text("my answers are in here")
    return notebooks


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole folder once: (results by file, grades folder, snapshots before and after)."""
    base = tmp_path_factory.mktemp("grading")
    solution = base / "demo_exercises.ipynb"
    nbformat.write(solution_notebook(), solution)
    folder = base / "submissions"
    submissions(folder)
    before = snapshot(folder)
    grades = base / "grades"
    results = gr.grade(folder, grades, timeout=TIMEOUT, solution=solution, log=lambda *_: None)
    return {r.file: r for r in results}, grades, before, snapshot(folder)


def marks(result):
    return [result.scores[n] for n in sorted(result.scores)]


def test_right_answers_get_full_marks_with_or_without_hidden_tests_in_the_file(graded):
    results = graded[0]
    for name in ("right.ipynb", "answered.ipynb"):
        assert marks(results[name]) == [1, 1, 1] and results[name].total == 3 and results[name].note == ""


def test_wrong_answers_fail_and_the_hidden_tests_ran(graded):
    result = graded[0]["wrong.ipynb"]
    assert marks(result) == [0, 0, 1]
    assert result.note.startswith("exercise 1: double(3): expected 6, received 5.")
    assert result.mistakes == {1: "adding instead of multiplying", 2: "the longest option"}   # 2: hidden test


def test_an_edited_check_cell_is_replaced_by_the_original(graded):
    result = graded[0]["edited_check.ipynb"]
    assert marks(result) == [0, 1, 1] and "expected 6, received 5" in result.note


def test_a_stub_scores_zero_with_not_implemented_notes(graded):
    result = graded[0]["stub.ipynb"]
    assert marks(result) == [0, 0, 0]
    assert result.note.startswith("exercise 1: NotImplementedError")
    assert all(line == gr.STUB_LINE for line in result.failures.values())


def test_files_that_are_not_notebooks_get_a_row(graded):
    results = graded[0]
    for name in ("garbage.ipynb", "essay.txt"):
        assert marks(results[name]) == [0, 0, 0] and "not a notebook" in results[name].note


def test_a_missing_check_cell_is_not_graded_the_rest_is(graded):
    result = graded[0]["missing.ipynb"]
    assert marks(result) == [1, 0, 1]
    assert result.note == "exercise 2: its check cell is missing (its tags removed, or the cell deleted?); not graded"


def test_misplaced_cells_are_noted_and_run_where_the_student_put_them(graded):
    results = graded[0]
    reordered = results["reordered.ipynb"]                   # exercise 3's check above its answer: it fails there
    assert marks(reordered) == [1, 1, 0]
    assert reordered.note == ("exercise 3: its check cell stands above its answer cell | "
                              "exercise 3: NameError: name 'square' is not defined")
    moved = results["moved.ipynb"]                           # exercise 2 moved to the end: it still runs
    assert marks(moved) == [1, 1, 1]
    assert moved.note == "exercise 2: its cells were moved (its check now stands after exercise 3's)"
    copied = results["copied.ipynb"]                         # an answer and a check cell copied with their tags
    assert marks(copied) == [1, 1, 1]
    assert copied.note == "exercise 1: 1 extra copy of its check cell, not run"


def test_an_endless_loop_times_out_and_keeps_the_marks_before_it(graded):
    result = graded[0]["endless.ipynb"]
    assert marks(result) == [1, 1, 0]
    assert f"timed out after {TIMEOUT} s in exercise 3's answer cell" in result.note
    assert result.failures == {3: f"not run: timed out after {TIMEOUT} s before its check"}
    assert result.seconds < TIMEOUT + 20


def test_a_dead_kernel_keeps_the_marks_before_it(graded):
    result = graded[0]["dies.ipynb"]
    assert marks(result) == [1, 0, 0] and "the kernel died in exercise 2's answer cell" in result.note
    assert result.failures[3] == "not run: the kernel died before its check"


def test_a_cell_deleting_its_working_directory_harms_nothing_else(graded):
    results, _, before, after = graded
    assert marks(results["deletes.ipynb"]) == [1, 1, 1]
    assert "deleted or changed files in its working directory" in results["deletes.ipynb"].note
    assert after == before                              # every submission byte-identical, none added or removed


def test_grades_csv_has_the_promised_columns_and_a_row_per_file(graded):
    results, grades, before, _ = graded
    rows = list(csv.DictReader(io.StringIO((grades / "grades.csv").read_text())))
    assert list(rows[0]) == ["file", "exercise_1", "exercise_2", "exercise_3", "total", "note"]
    assert sorted(row["file"] for row in rows) == sorted(before)
    by_file = {row["file"]: row for row in rows}
    assert by_file["wrong.ipynb"]["total"] == "1" and by_file["wrong.ipynb"]["exercise_3"] == "1"
    assert by_file["right.ipynb"]["note"] == ""
    assert not [p for p in grades.iterdir() if p.name.startswith(".")]        # no temporary file left


def test_summary_names_the_most_common_mistake(graded):
    results, grades, _, _ = graded
    page = (grades / "summary.html").read_text()
    assert "named mistake: adding instead of multiplying (2 of 5 failures)" in page   # 2 wrong, a stub, 2 files
    assert "named mistake: the longest option (1 of" in page
    passed, _ = gr.exercise_summary(list(results.values()), 3)
    assert passed == sum(r.scores[3] for r in results.values()) and f"<td>{passed} of {len(results)}</td>" in page


def test_summary_falls_back_to_the_most_common_failure_without_a_named_mistake():
    rows = [gr.Result("a", {1: 0}, failures={1: "NameError: x"}), gr.Result("b", {1: 0}, failures={1: "NameError: x"}),
            gr.Result("c", {1: 0}, failures={1: gr.STUB_LINE}), gr.Result("d", {1: 1})]
    assert gr.exercise_summary(rows, 1) == (1, "NameError: x (2 of 3 failures)")
    rows.append(gr.Result("e", {1: 0}, failures={1: "f: expected 1, received 2."}, mistakes={1: "a sign flipped"}))
    assert gr.exercise_summary(rows, 1) == (1, "named mistake: a sign flipped (1 of 4 failures)")


def test_structure_matches_check_cells_by_tags():
    key = gr.Key(Path("demo.ipynb"), [1, 2, 3], {1: ["c"], 2: ["c"], 3: ["c"]})
    found = gr.structure(solution_notebook(), key)
    assert found.checks == {1: [4], 2: [7], 3: [10]} and not (found.skipped or found.missing or found.remarks)
    swapped = solution_notebook()                      # exercises 1 and 2 swapped: one of them is "moved"
    swapped.cells = swapped.cells[:2] + swapped.cells[5:8] + swapped.cells[2:5] + swapped.cells[8:]
    remarks = gr.structure(swapped, key).remarks
    assert len(remarks) == 1 and "moved" in next(iter(remarks.values()))[0]
    two = gr.Key(Path("demo.ipynb"), [1], {1: ["a", "b"]})
    found = gr.structure(solution_notebook(), two)
    assert found.missing == {1: "it has 1 check cell, expected 2 (its tags removed, or the cell deleted?); not "
                                "graded"} and found.skipped == {4: "exercise 1 is not graded (check cells missing)"}
    untagged = new_notebook(cells=[cell("code", "x = 1")])
    assert set(gr.structure(untagged, key).missing) == {1, 2, 3}


def test_failure_lines():
    assert gr.failure_line("ExerciseFailure", "f: expected 1, received 2. Hint: h\nmore") == \
        "f: expected 1, received 2. Hint: h"
    assert gr.failure_line("NameError", "name 'x' is not defined") == "NameError: name 'x' is not defined"
    assert gr.failure_line("AnswerNotWritten", "anything") == gr.STUB_LINE
    assert gr.failure_line("NotImplementedError", "") == gr.STUB_LINE                 # nbgrader's stub
    assert gr.failure_line("NotImplementedError", "not for sparse tensors") == \
        "NotImplementedError: not for sparse tensors"
    assert gr.named_mistake("a: expected 1, received 2. Typical mistake: x1 fed for x_t. Hint: h") == "x1 fed for x_t"
    assert gr.named_mistake("a: expected 1, received 2. Typical mistake: a percentage.") == "a percentage"
    assert gr.named_mistake("a: expected 1, received 2. Hint: h") is None


@pytest.mark.parametrize("arguments, named", [
    (["/nonexistent/folder"], "SUBMISSIONS=/nonexistent/folder: no such folder"),
    ([""], "SUBMISSIONS (the folder of submitted notebooks) is required"),
    (["EMPTY"], "no .ipynb files"),
    (["ONLY_TEXT"], "no .ipynb files"),
    (["FULL", "--timeout", "abc"], "TIMEOUT (--timeout) must be a positive number"),
    (["FULL", "--timeout", "0"], "TIMEOUT (--timeout) must be a positive number"),
    (["FULL", "--timeout", "-5"], "TIMEOUT (--timeout) must be a positive number"),
    (["FULL", "--grades", "FULL"], "lies inside SUBMISSIONS"),
    (["FULL", "--jobs", "0"], "--jobs must be a positive"),
    (["FULL", "--solution", "FULL/a.ipynb"], "no check cells"),
    (["FULL", "--solution", "FULL/x_exercises_student.ipynb"], "a student copy"),
    (["FULL", "--solution", "FULL/missing.ipynb"], "not a readable notebook"),
])
def test_bad_arguments_exit_2_naming_the_argument(tmp_path, capsys, arguments, named):
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "ONLY_TEXT").mkdir()
    (tmp_path / "ONLY_TEXT" / "a.txt").write_text("x")
    (tmp_path / "FULL").mkdir()
    nbformat.write(new_notebook(cells=[cell("code", "x = 1")]), tmp_path / "FULL" / "a.ipynb")
    arguments = [str(tmp_path / a) if a in ("EMPTY", "ONLY_TEXT", "FULL") or a.startswith("FULL/") else a
                 for a in arguments]
    assert gr.main(arguments) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "FULL" / "grades.csv").exists()


def test_make_grade_passes_its_variables(tmp_path):
    """`make grade` runs tools.grade with SUBMISSIONS, GRADES and TIMEOUT (a dry run: nothing executes)."""
    command = ["make", "-n", "grade", f"SUBMISSIONS={tmp_path}", "GRADES=out", "TIMEOUT=7"]
    made = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    line = next(line for line in made.stdout.splitlines() if "tools.grade" in line)
    assert str(tmp_path) in line and "--grades" in line and "out" in line and "--timeout" in line and "7" in line


def test_real_exercise_notebook_solution_full_marks_student_copy_zero(tmp_path):
    """The real solution notebook gets full marks; its student copy 0 everywhere, noted as stubs (about 30-60 s)."""
    solutions = sc.default_solutions(ROOT)
    assert solutions, "no notebooks/exercises/*_exercises.ipynb found"
    solution = solutions[0]
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "solution.ipynb").write_bytes(solution.read_bytes())
    nbformat.write(sc.make_student_notebook(nbformat.read(solution, as_version=4)), folder / "student.ipynb")
    environment = dict(os.environ)
    results = {r.file: r for r in gr.grade(folder, tmp_path / "grades", timeout=300, solution=solution,
                                           log=lambda *_: None)}
    assert dict(os.environ) == environment                # the kernel's settings stay in the kernel
    full = results["solution.ipynb"]
    assert full.total == len(full.scores) and full.note == "", full.note
    empty = results["student.ipynb"]
    assert empty.total == 0, {n: line for n, line in empty.failures.items()}
    assert empty.note.startswith("exercise 1: NotImplementedError")
    assert set(empty.failures.values()) == {gr.STUB_LINE}, empty.failures     # each fails on a stub


def test_runs_as_a_module(tmp_path):
    """`python -m tools.grade` from the repository root: exit 2 and the message for a missing folder."""
    command = [sys.executable, "-m", "tools.grade", str(tmp_path / "missing")]
    ran = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert ran.returncode == 2 and "no such folder" in ran.stderr


def test_grading_benchmark_breaks_answers_and_reports_a_row(tmp_path):
    """benchmarks/grading.py: its wrong answers change code, never comments; the report row reads its metrics."""
    from benchmarks import grading, report

    assert grading.break_answer("### BEGIN SOLUTION\nANSWER = 'c'  # or 'a'\n### END SOLUTION") == \
        "### BEGIN SOLUTION\nANSWER = 'a'  # or 'a'\n### END SOLUTION"
    assert grading.break_answer("x = 1\n### BEGIN SOLUTION\n    return 2 * x  # 2 - x\n### END SOLUTION") == \
        "x = 1\n### BEGIN SOLUTION\n    return 2 + x  # 2 - x\n### END SOLUTION"
    assert grading.break_answer("a - b\n### BEGIN SOLUTION\n    return f(x)  # x - 1\n### END SOLUTION") is None
    solution = tmp_path / "demo_exercises.ipynb"
    nbformat.write(solution_notebook(), solution)
    (tmp_path / "out").mkdir()
    broken = grading.make_submissions(solution, tmp_path / "out", n=6)
    assert sorted(broken) == [f"student_0{k}.ipynb" for k in range(1, 7)]
    assert [broken[f"student_0{k}.ipynb"] for k in range(1, 7)] == [None, None, 1, None, None, 2]
    row = report.grading_lines({"grading_seconds_30": 241.4, "grading_load_before": 0.5,
                                "grading_load_during_mean": 2.3, "grading_cores": 2, "target_grading_5_min_met": 1})
    assert row == ["| grading 30 submissions, two at a time (`make grade`) | 241 s (load average 0.5 before, 2.3 "
                   "during, on 2 cores; the two kernels add about 2) | <= 300 s | yes |"]
    busy = {"grading_seconds_30": 400.0, "grading_load_before": 9.0, "grading_load_during_mean": 11.0,
            "grading_cores": 2, "grading_cpu_seconds_per_core": 250.2, "target_grading_5_min_met": 0}
    row = report.grading_lines(busy)
    assert row[0].endswith("add about 2); 250 CPU s per core | <= 300 s | **no** |")
    assert report.grading_lines({}) == []


def test_a_notebook_without_exercise_tags_gets_a_row_saying_so(tmp_path):
    """Another notebook, or the exercises with their tags lost: nothing runs, the note says why."""
    folder = tmp_path / "in"
    folder.mkdir()
    untagged = solution_notebook()
    for made in untagged.cells:
        made.metadata.pop("tags", None)
    nbformat.write(untagged, folder / "untagged.ipynb")
    solution = tmp_path / "demo_exercises.ipynb"
    nbformat.write(solution_notebook(), solution)
    [result] = gr.grade(folder, tmp_path / "grades", timeout=TIMEOUT, solution=solution, log=lambda *_: None)
    assert marks(result) == [0, 0, 0] and result.seconds == 0.0
    assert result.note.startswith("no exercise cells (cells tagged exercise-N and check)")
