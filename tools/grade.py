"""Grade a class: every submitted exercise notebook in a folder, run afresh and scored per exercise.

    make grade SUBMISSIONS=<folder> [GRADES=build/grades] [TIMEOUT=300]
    python -m tools.grade <folder> [--grades DIR] [--timeout S] [--jobs 2] [--solution NOTEBOOK]

Design
------
* The key is the solution notebook (default: the one ``notebooks/exercises/*_exercises.ipynb``). Its
  exercises are the N of its ``exercise-N`` tags that have a check cell (tags ``exercise-N`` and
  ``check``); its check cells, hidden tests included, run in place of the submission's, matched by
  tags, so an edited check or one without its hidden tests never counts. The student's other cells
  run as they wrote them.
* Structure: an exercise whose check cell is missing (its tags removed, or deleted) cannot be graded:
  it scores 0 and ``note`` says why. Extra check cells (a copied cell keeps its tags) are not run;
  the last ones get the solution's checks. A check cell above its answer, or an exercise moved out of
  the exercises' order, is noted but runs where the student put it (and usually fails there): a
  fresh kernel runs the cells top to bottom, as "Restart and run all" would.
* Isolation: a submission is read once and never written. Its bytes are copied into a new
  temporary folder, the kernel's working directory, removed afterwards; a cell that deletes every
  file there deletes only that copy (and is noted). This is not a sandbox: a student's code runs
  with the grader's rights, in the same kernel as the checks (as in nbgrader), so run untrusted
  submissions in a container.
* Execution: nbclient, a fresh ``python3`` kernel per notebook, ``--jobs`` (2) at a time in one
  asyncio loop, errors allowed (a wrong answer does not stop later exercises). The kernel sees no
  GPU (``CUDA_VISIBLE_DEVICES`` empty), one thread, no progress bars, non-interactive plots and
  ``PIP_NO_INDEX``; the grader needs no network. TIMEOUT covers the whole notebook, kernel start
  included: at the deadline the running cell is stopped, the kernel killed, and the checks that ran
  before keep their marks. A kernel that dies is handled the same way.
* Marks: 1 when every check cell of the exercise ran without an error, else 0. ``note`` holds the
  first line of what went wrong first: missing or misplaced cells, then the first error in running order
  (``exercise 3: fm_loss is wrong ...``; a stub reads ``NotImplementedError: answer not written``),
  a timeout or dead kernel, deleted files; joined by `` | ``.
* Output: ``GRADES/grades.csv`` (``file``, ``exercise_1`` ... ``exercise_N``, ``total``, ``note``, a row
  for every file in the folder, a file that is not a notebook included) and ``GRADES/summary.html``
  (per exercise: how many passed; the most common named mistake, the text after ``Typical mistake:``,
  else the most common first line of failure), each written atomically.
* Exit status 0 when every file got a row; 2, with a message naming the argument, for a missing
  folder, a folder without notebooks, a bad TIMEOUT or jobs count, or an unusable solution notebook.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import csv
import html
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from gen_models_utilities.files import atomic_write
from tools.student_copies import CODE_STUB, STUDENT_SUFFIX, cell_role, default_solutions, exercise_number

DEFAULT_GRADES = Path("build") / "grades"
DEFAULT_TIMEOUT = 300.0
DEFAULT_JOBS = 2
KERNEL = "python3"
STUB_ERRORS = {"AnswerNotWritten"}                    # the checks' wrapper of a stub's NotImplementedError
MESSAGE_ONLY = {"AssertionError", "ExerciseFailure"}  # failures whose message says it all
STUB_LINE = "NotImplementedError: answer not written (the stub still raises)"
NOTE_LENGTH = 300
_MISTAKE = re.compile(r"Typical mistake: (?P<name>.+?)(?:\.\s+Hint:|\.?\s*$)", re.S)
KERNEL_ENV = {"CUDA_VISIBLE_DEVICES": "", "GEN_MODELS_PROGRESS": "0", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "PIP_NO_INDEX": "1"}


class UsageError(Exception):
    """An unusable argument (exit status 2); the message names it."""


# ----------------------------------------------------------------------------- the key


@dataclass
class Key:
    """What the solution notebook says: its exercises and their check cells."""

    solution: Path
    exercises: list[int]                       # in the notebook's order
    checks: dict[int, list[str]]               # exercise -> sources of its check cells, hidden tests included

    @property
    def columns(self) -> list[int]:
        return sorted(self.exercises)


def graded_cells(notebook) -> list[tuple[int, str, int]]:
    """``(exercise, role, cell index)`` of every cell tagged ``exercise-N`` and ``solution`` or ``check``."""
    found = []
    for index, cell in enumerate(notebook.cells):
        number, role = exercise_number(cell), cell_role(cell)
        if number is not None and role != "other":
            found.append((number, role, index))
    return found


def load_key(path: Path) -> Key:
    """The key from the solution notebook at ``path``."""
    if Path(path).name.endswith(STUDENT_SUFFIX):
        raise UsageError(f"--solution {path}: a student copy (its hidden tests are gone); pass the solution notebook")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:
        raise UsageError(f"--solution {path}: not a readable notebook ({_first_line(str(error))})") from None
    checks: dict[int, list[str]] = {}
    for number, role, index in graded_cells(notebook):
        if role == "check" and notebook.cells[index].cell_type == "code":
            checks.setdefault(number, []).append(notebook.cells[index].source)
    if not checks:
        raise UsageError(f"--solution {path}: no check cells (code cells tagged exercise-N and check)")
    return Key(Path(path), list(checks), checks)


# ----------------------------------------------------------------------------- structure


@dataclass
class Structure:
    """How a submission's tagged cells line up with the key."""

    checks: dict[int, list[int]] = field(default_factory=dict)   # exercise -> cells that get the solution's checks
    skipped: dict[int, str] = field(default_factory=dict)        # cell -> why the grader does not run it
    missing: dict[int, str] = field(default_factory=dict)        # exercise -> why it cannot be graded
    remarks: dict[int, list[str]] = field(default_factory=dict)  # exercise -> what is out of place (still graded)


def _longest_increasing(values: list[int]) -> set[int]:
    """The values of one longest strictly increasing subsequence of ``values`` (distinct values)."""
    best: list[list[int]] = []
    for i, value in enumerate(values):
        chains = [best[j] for j in range(i) if values[j] < value]
        best.append(max(chains, key=len, default=[]) + [value])
    return set(max(best, key=len, default=[]))


def structure(notebook, key: Key) -> Structure:
    """Match the submission's check cells to the key's, by tags, and note what is missing or out of place.

    An exercise with fewer check cells than the solution's cannot be graded. Extra check cells (a copied
    cell keeps its tags) are not run: the last ones get the solution's checks. A check cell above every
    answer cell of its exercise, or an exercise moved out of the exercises' order (outside the longest
    run in order), is noted and graded as it runs: the student's cells run where the student put them.
    """
    cells = graded_cells(notebook)
    found = Structure()
    for number in key.exercises:
        checks = [index for n, role, index in cells if n == number and role == "check"]
        wanted = len(key.checks[number])
        if len(checks) < wanted:
            found.missing[number] = (("its check cell is missing" if wanted == 1 else
                                      f"it has {len(checks)} check cell{'s' * (len(checks) != 1)}, expected {wanted}")
                                     + " (its tags removed, or the cell deleted?); not graded")
            found.skipped.update({index: f"exercise {number} is not graded (check cells missing)" for index in checks})
            continue
        found.checks[number] = checks[len(checks) - wanted:]
        extra = checks[:len(checks) - wanted]
        found.skipped.update({index: f"an extra copy of exercise {number}'s check cell" for index in extra})
        remarks = [f"{len(extra)} extra cop{'y' if len(extra) == 1 else 'ies'} of its check cell, not run"] if extra \
            else []
        answers = [index for n, role, index in cells if n == number and role == "solution"]
        if answers and min(answers) > found.checks[number][0]:
            remarks.append("its check cell stands above its answer cell")
        if remarks:
            found.remarks[number] = remarks
    order = [number for _, number in sorted((indices[0], number) for number, indices in found.checks.items())]
    position = {number: i for i, number in enumerate(key.exercises)}
    kept = _longest_increasing([position[number] for number in order])
    for i, number in enumerate(order):
        if position[number] not in kept:
            where = f"after exercise {order[i - 1]}'s" if i else "first"
            found.remarks.setdefault(number, []).append(f"its cells were moved (its check now stands {where})")
    return found


def prepare(notebook, key: Key, found: Structure):
    """The notebook to run: outputs cleared, the solution's check cells in place of the student's, and a
    comment in place of a check cell the grader does not run."""
    sources = {index: source for number, indices in found.checks.items()
               for index, source in zip(indices, key.checks[number])}
    sources.update({index: f"# not run by the grader: {why}" for index, why in found.skipped.items()})
    for index, cell in enumerate(notebook.cells):
        if index in sources:
            notebook.cells[index] = nbformat.v4.new_code_cell(sources[index], metadata=copy.deepcopy(cell.metadata))
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


# ----------------------------------------------------------------------------- running one notebook


@dataclass
class Result:
    """One row of grades.csv, and what the summary needs."""

    file: str
    scores: dict[int, int]
    failures: dict[int, str] = field(default_factory=dict)     # exercise -> first line of its failure
    mistakes: dict[int, str] = field(default_factory=dict)     # exercise -> the named typical mistake
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.scores.values())

    @property
    def note(self) -> str:
        text = " | ".join(self.notes)
        return text if len(text) <= NOTE_LENGTH else text[:NOTE_LENGTH - 3] + "..."


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def failure_line(ename: str, evalue: str) -> str:
    """The first line of an error as a note shows it."""
    first = _first_line(evalue)
    if ename in STUB_ERRORS or CODE_STUB.split('"')[1] in evalue or (ename == "NotImplementedError" and not first):
        return STUB_LINE
    if ename in MESSAGE_ONLY and first:
        return first
    return f"{ename}: {first}" if first else ename


def named_mistake(evalue: str) -> str | None:
    """The text after ``Typical mistake:`` in a check's failure, if any."""
    match = _MISTAKE.search(evalue or "")
    return match["name"].strip() if match else None


def kernel_env() -> dict:
    """The kernel's environment: the grader's, CPU only, one thread, no progress bars, no package index."""
    return {**os.environ, **KERNEL_ENV}


@dataclass
class Run:
    """What happened while a notebook ran: every cell's reply, and why it stopped early (if it did)."""

    replies: dict[int, tuple[str, str, str]] = field(default_factory=dict)   # index -> (status, ename, evalue)
    stopped: str | None = None
    stopped_at: int | None = None


async def run_notebook(notebook, workdir: Path, timeout: float) -> Run:
    """Execute ``notebook`` in a fresh kernel whose working directory is ``workdir``, within ``timeout`` s."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = Run()
    deadline = time.monotonic() + timeout
    current: list[int | None] = [None]

    def remaining(cell) -> int:
        return max(1, math.ceil(deadline - time.monotonic()))

    def started(cell, cell_index) -> None:
        current[0] = cell_index

    def executed(cell, cell_index, execute_reply) -> None:
        content = execute_reply.get("content", {})
        run.replies[cell_index] = (content.get("status", "error"), content.get("ename", ""),
                                   content.get("evalue", ""))

    client = NotebookClient(notebook, kernel_name=KERNEL, allow_errors=True, timeout_func=remaining,
                            startup_timeout=max(1, math.ceil(timeout)), shutdown_kernel="immediate",
                            record_timing=False, resources={"metadata": {"path": str(workdir)}},
                            on_cell_execute=started, on_cell_executed=executed)
    try:
        await asyncio.wait_for(client.async_execute(env=kernel_env(), stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL), timeout + 30)
    except (CellTimeoutError, asyncio.TimeoutError):
        run.stopped, run.stopped_at = f"timed out after {timeout:g} s", current[0]
    except DeadKernelError:
        run.stopped, run.stopped_at = "the kernel died", current[0]
    except Exception as error:                  # a kernel that does not start, ...
        run.stopped, run.stopped_at = f"could not run ({type(error).__name__}: {_first_line(error)})", current[0]
    return run


def _where(notebook, index: int, role: bool = False) -> str:
    """'exercise 3' (with ``role``: "exercise 3's answer cell"), or 'cell 7' for a cell of no exercise."""
    cell = notebook.cells[index]
    number = exercise_number(cell)
    if number is None:
        return f"cell {index + 1}"
    kind = {"solution": "answer cell", "check": "check cell"}.get(cell_role(cell), "cell")
    return f"exercise {number}'s {kind}" if role else f"exercise {number}"


def score(notebook, key: Key, found: Structure, run: Run) -> Result:
    """Marks, failures and notes from a run (the file name is filled in by the caller)."""
    result = Result("", {number: 0 for number in key.columns})
    cells = graded_cells(notebook)
    for number in key.columns:
        if number in found.missing:
            result.failures[number] = found.missing[number]
            continue
        checks = found.checks[number]
        mine = [index for n, _, index in cells if n == number and index <= max(checks) and index not in found.skipped]
        errors = [index for index in mine if run.replies.get(index, ("ok",))[0] != "ok"]
        if all(run.replies.get(index, ("",))[0] == "ok" for index in checks):
            result.scores[number] = 1
        elif errors:
            _, ename, evalue = run.replies[errors[0]]
            result.failures[number] = failure_line(ename, evalue)
            if named_mistake(evalue):
                result.mistakes[number] = named_mistake(evalue)
        else:
            result.failures[number] = f"not run: {run.stopped or 'the notebook stopped'} before its check"
    for number in key.columns:
        if number in found.missing:
            result.notes.append(f"exercise {number}: {found.missing[number]}")
        result.notes += [f"exercise {number}: {remark}" for remark in found.remarks.get(number, [])]
    errors = sorted(index for index, (status, _, _) in run.replies.items() if status != "ok")
    if errors:
        _, ename, evalue = run.replies[errors[0]]
        result.notes.append(f"{_where(notebook, errors[0])}: {failure_line(ename, evalue)}")
    if run.stopped:
        where = f" in {_where(notebook, run.stopped_at, role=True)}" if run.stopped_at is not None else ""
        result.notes.append(f"{run.stopped}{where}; the cells after it did not run")
    return result


def ungraded(path: Path, key: Key, why: str) -> Result:
    """A row of zeros for a file that could not be graded at all."""
    return Result(path.name, {number: 0 for number in key.columns}, failures={number: why for number in key.columns},
                  notes=[f"{why}; nothing graded"])


async def grade_file(path: Path, key: Key, timeout: float) -> Result:
    """Grade one submission: read it, run a prepared copy in a temporary folder, score it."""
    started = time.monotonic()
    if path.suffix != ".ipynb":
        return ungraded(path, key, f"not a notebook (a {path.suffix or 'extensionless'} file)")
    data = path.read_bytes()
    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        if not isinstance(notebook.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as error:
        return ungraded(path, key, f"not a notebook ({_first_line(error)[:120]})")
    if not graded_cells(notebook):
        return ungraded(path, key, "no exercise cells (cells tagged exercise-N and check): not the exercise "
                                   "notebook, or its cell tags were lost")
    found = structure(notebook, key)
    if len(found.missing) == len(key.exercises):                # nothing to run
        result = score(notebook, key, found, Run())
        result.file = path.name
        return result
    workdir = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        copied = workdir / path.name
        copied.write_bytes(data)
        run = await run_notebook(prepare(notebook, key, found), workdir, timeout)
        result = score(notebook, key, found, run)
        if not copied.is_file() or copied.read_bytes() != data:
            result.notes.append("a cell deleted or changed files in its working directory (its copy of the "
                                "notebook; the submission itself is untouched)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.file, result.seconds = path.name, time.monotonic() - started
    return result


async def grade_all(paths: list[Path], key: Key, timeout: float, jobs: int = DEFAULT_JOBS, log=print) -> list[Result]:
    """Grade ``paths``, ``jobs`` at a time; every path gets a result, whatever happens to it."""
    gate = asyncio.Semaphore(jobs)
    done = [0]

    async def one(path: Path) -> Result:
        async with gate:
            try:
                result = await grade_file(path, key, timeout)
            except Exception as error:            # the grader's own failure on one file must not stop the run
                result = ungraded(path, key, f"the grader failed ({type(error).__name__}: {_first_line(error)})")
            done[0] += 1
            log(f"[{done[0]}/{len(paths)}] {path.name}: {result.total}/{len(key.columns)} in {result.seconds:.0f} s"
                + (f"  ({result.note})" if result.notes else ""))
            return result

    return list(await asyncio.gather(*(one(path) for path in paths)))


# ----------------------------------------------------------------------------- the reports


def grades_csv(results: list[Result], key: Key) -> str:
    """grades.csv: file, exercise_1 ... exercise_N, total, note."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", *(f"exercise_{number}" for number in key.columns), "total", "note"])
    for result in results:
        writer.writerow([result.file, *(result.scores[number] for number in key.columns), result.total, result.note])
    return out.getvalue()


def exercise_summary(results: list[Result], number: int) -> tuple[int, str]:
    """(how many passed, the most common named mistake, else the most common failure, with its count)."""
    passed = sum(result.scores[number] for result in results)
    mistakes = Counter(result.mistakes[number] for result in results if number in result.mistakes)
    failures = Counter(result.failures[number] for result in results if number in result.failures)
    if mistakes:
        text, count = mistakes.most_common(1)[0]
        return passed, f"named mistake: {text} ({count} of {sum(failures.values())} failures)"
    if failures:
        text, count = failures.most_common(1)[0]
        return passed, f"{text} ({count} of {sum(failures.values())} failures)"
    return passed, ""


def summary_html(results: list[Result], key: Key) -> str:
    """summary.html: per exercise, how many passed and the most common named mistake or failure."""
    n = len(results)
    totals = [result.total for result in results]
    rows = []
    for number in key.columns:
        passed, common = exercise_summary(results, number)
        rows.append(f"<tr><td>{number}</td><td>{passed} of {n}</td><td>{html.escape(common) or '&ndash;'}</td></tr>")
    mean = sum(totals) / n if n else 0.0
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Grades: {html.escape(key.solution.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}</style></head>
<body><h1>Grades: {html.escape(key.solution.name)}</h1>
<p>{n} file{'s' if n != 1 else ''} graded against {html.escape(str(key.solution))}; mean total {mean:.1f} of
{len(key.columns)}; {sum(t == len(key.columns) for t in totals)} with full marks. Each file's marks and note are
in grades.csv.</p>
<table><tr><th>Exercise</th><th>Passed</th><th>Most common named mistake (else most common failure)</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""


def write_reports(results: list[Result], key: Key, folder: Path) -> tuple[Path, Path]:
    """Write grades.csv and summary.html into ``folder``, atomically."""
    csv_path, html_path = Path(folder) / "grades.csv", Path(folder) / "summary.html"
    atomic_write(csv_path, lambda file: file.write(grades_csv(results, key).encode("utf-8")))
    atomic_write(html_path, lambda file: file.write(summary_html(results, key).encode("utf-8")))
    return csv_path, html_path


# ----------------------------------------------------------------------------- command line


def submissions_in(folder: Path) -> list[Path]:
    """Every file directly in ``folder`` (hidden files left out), sorted; at least one must be a .ipynb."""
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    if not any(path.suffix == ".ipynb" for path in files):
        raise UsageError(f"SUBMISSIONS={folder}: no .ipynb files in it")
    return files


def parse_timeout(text: str) -> float:
    """TIMEOUT as a positive number of seconds, or a UsageError naming it."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"TIMEOUT (--timeout) must be a positive number of seconds per notebook, got {text!r}")
    return value


def default_key_path() -> Path:
    """The one solution notebook in notebooks/exercises/ (from the working directory, else this repository)."""
    solutions = default_solutions()
    if len(solutions) != 1:
        raise UsageError(f"--solution: give the solution notebook to grade against ({len(solutions)} found in "
                         f"notebooks/exercises/)")
    return solutions[0]


def grade(submissions, grades=DEFAULT_GRADES, timeout=DEFAULT_TIMEOUT, jobs=DEFAULT_JOBS, solution=None,
          log=print) -> list[Result]:
    """Grade every file in ``submissions`` and write the reports into ``grades``; raises UsageError."""
    if not str(submissions or "").strip():
        raise UsageError("SUBMISSIONS (the folder of submitted notebooks) is required: make grade SUBMISSIONS=<folder>")
    folder = Path(submissions)
    if not folder.is_dir():
        raise UsageError(f"SUBMISSIONS={submissions}: no such folder")
    timeout = parse_timeout(timeout)
    if not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"--jobs must be a positive whole number, got {jobs!r}")
    grades = Path(grades)
    if grades.exists() and not grades.is_dir():
        raise UsageError(f"GRADES={grades}: a file, not a folder")
    if grades.resolve() == folder.resolve() or folder.resolve() in grades.resolve().parents:
        raise UsageError(f"GRADES={grades} lies inside SUBMISSIONS={folder}; write the grades elsewhere")
    paths = submissions_in(folder)
    key = load_key(Path(solution) if solution else default_key_path())
    log(f"grading {len(paths)} file{'s' if len(paths) != 1 else ''} in {folder} against {key.solution} "
        f"({len(key.columns)} exercises), {jobs} at a time, at most {timeout:g} s each")
    results = asyncio.run(grade_all(paths, key, timeout, jobs, log=log))
    csv_path, html_path = write_reports(results, key, grades)
    log(f"wrote {csv_path} and {html_path}")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="?", default="", help="folder of submitted notebooks (SUBMISSIONS)")
    parser.add_argument("--grades", default=str(DEFAULT_GRADES), help="folder for grades.csv and summary.html "
                                                                      "(GRADES, default build/grades)")
    parser.add_argument("--timeout", default=str(DEFAULT_TIMEOUT),
                        help="seconds per notebook, kernel start included (TIMEOUT, default 300)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="notebooks run at a time (default 2)")
    parser.add_argument("--solution", type=Path, help="the solution notebook (default: the one in "
                                                      "notebooks/exercises/)")
    args = parser.parse_args(argv)
    try:
        grade(args.submissions, args.grades, args.timeout, args.jobs, args.solution)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
