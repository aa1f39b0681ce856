"""Student copies of the exercise notebooks, generated from the solution notebooks.

In a solution notebook every answer sits between two marker lines, and a check cell may hold
tests a student should not see between two more (nbgrader's format):

    ### BEGIN SOLUTION                  ### BEGIN HIDDEN TESTS
    ...the answer...                    ...asserts that would give the answer away...
    ### END SOLUTION                    ### END HIDDEN TESTS

Each exercise's cells carry the tag ``exercise-N``; its answer cell also ``solution``, its check
cell also ``check``. The student copy ``<name>_student.ipynb`` replaces each solution block in a
code cell by ``raise NotImplementedError(...)`` at the marker's indentation (in a markdown cell,
by "*Your answer here.*"); where the block defined names at the top level of the cell (``ANSWER =
"c"``, a ``def``), a comment ``# Your answer defines: ANSWER`` above the stub keeps the name the
check reads. Hidden tests are dropped, markers included (they may stand only in check cells, the
cells ``tools.grade`` puts back). Every other line and the cell tags stay; outputs and execution
counts are cleared. The solution's jupytext pairing is dropped, so JupyterLab never pairs the
student copy with the solution's ``.py`` source.

``--nbgrader OUT`` exports the solution notebooks instead as an nbgrader course, for
``nbgrader generate_assignment`` on a JupyterHub: ``OUT/source/<notebook stem>/<notebook>.ipynb``
with nbgrader cell metadata (schema 3) derived from the tags, and ``OUT/nbgrader_config.py``
(nbgrader's stubs set to ours). Answer cells become nbgrader "autograded answers" (a markdown
answer a "manually graded answer" worth 0 points: nbgrader grades markdown only by hand), check
cells "autograder tests" worth 1 point (grade id ``exercise-N-check``), every other cell
"read-only". The comment naming an answer's variables is written above its ``### BEGIN
SOLUTION`` line there, so nbgrader's release copy keeps it. nbgrader is not a dependency.

A student copy that differs from what would be written is never overwritten without
``--force``, so a student's work cannot be lost by regenerating. Writes are atomic.

    python -m tools.student_copies            # write missing copies (run from the repository root)
    python -m tools.student_copies --check    # exit 1 if a copy is out of sync
    python -m tools.student_copies --force    # overwrite copies that differ
    python -m tools.student_copies notebooks/exercises/17_flow_matching_exercises.ipynb
    python -m tools.student_copies --nbgrader build/nbgrader   # the nbgrader course export
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import os
import re
import sys
import textwrap
from pathlib import Path

import nbformat

from gen_models_utilities.files import atomic_write

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
STUDENT_SUFFIX = "_student.ipynb"
SOLUTION_GLOB = "*_exercises.ipynb"
EXERCISE_DIR = Path("notebooks") / "exercises"
REPO = Path(__file__).resolve().parents[1]
CODE_STUB = 'raise NotImplementedError("Replace this line with your answer, then run the check cell below.")'
MARKDOWN_STUB = "*Your answer here.*"
DEFINES = "# Your answer defines: "
NBGRADER_SCHEMA = 3
_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>### (?:BEGIN|END) SOLUTION)[ \t]*$")
_HIDDEN_MARKER = re.compile(r"^[ \t]*(?P<marker>### (?:BEGIN|END) HIDDEN TESTS)[ \t]*$")
_EXERCISE_TAG = re.compile(r"^exercise-(?P<number>[0-9]+)$")


class MarkerError(ValueError):
    """A solution notebook whose BEGIN/END markers (SOLUTION or HIDDEN TESTS) do not pair up."""


def exercise_number(cell) -> int | None:
    """N of the cell's ``exercise-N`` tag, or None."""
    for tag in cell.get("metadata", {}).get("tags", []):
        match = _EXERCISE_TAG.match(tag)
        if match:
            return int(match["number"])
    return None


def cell_role(cell) -> str:
    """'check', 'solution' or 'other', from the cell's tags."""
    tags = cell.get("metadata", {}).get("tags", [])
    return "check" if "check" in tags else "solution" if "solution" in tags else "other"


def _solution_blocks(source: str, where: str) -> list[tuple[int, int, str]]:
    """``(begin, end, indent)`` of every solution block: 0-based line numbers of its two markers."""
    blocks, begin = [], None
    for number, line in enumerate(source.split("\n")):
        match = _MARKER.match(line)
        if match is None:
            if BEGIN in line or END in line:
                raise MarkerError(f"{where}, line {number + 1}: a solution marker must stand alone on its line, "
                                  f"got {line.strip()!r}")
        elif match["marker"] == BEGIN:
            if begin is not None:
                raise MarkerError(f"{where}, line {number + 1}: {BEGIN} inside another solution block")
            begin, indent = number, match["indent"]
        else:
            if begin is None:
                raise MarkerError(f"{where}, line {number + 1}: {END} without a {BEGIN} before it")
            blocks.append((begin, number, indent))
            begin = None
    if begin is not None:
        raise MarkerError(f"{where}: {BEGIN} is never closed by {END}")
    return blocks


def _assigned_names(statements) -> list[str]:
    """Names that ``statements`` bind in their own scope: assignments, defs and classes, also inside if/for/
    with/try (not imports, not the insides of a def)."""
    names: list[str] = []

    def targets(node):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target)
        elif isinstance(node, ast.AnnAssign):
            targets(node.target)
        for field in ("body", "orelse", "finalbody"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names += _assigned_names(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            names += _assigned_names(handler.body)
    return [name for name in dict.fromkeys(names) if name != "_"]


_DEFINITION = re.compile(r"^(?:(?:async\s+)?def|class)\s+(?P<def>\w+)"
                         r"|^(?P<names>\w+(?:\s*,\s*\w+)*)\s*(?::[^=]*)?=(?!=)")


def answer_names(source: str, where: str = "cell") -> dict[int, list[str]]:
    """For each solution block of a code cell that sits at the top level of the cell (not inside a def or
    class), the names it defines there, keyed by the 0-based line of its BEGIN marker; blocks defining
    none are left out. ``ANSWER = "c"`` -> ``["ANSWER"]``; a block inside a function body -> nothing."""
    blocks = _solution_blocks(source, where)
    lines = source.split("\n")
    try:                                          # the markers are comments: the solution parses
        scopes = [(node.lineno, node.end_lineno) for node in ast.walk(ast.parse(source))
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
    except SyntaxError:                           # IPython magics, ...: judge by the marker's indentation
        scopes = None
    found = {}
    for begin, end, indent in blocks:
        nested = (any(first < begin + 1 <= last for first, last in scopes) if scopes is not None
                  else indent != "")
        if nested:
            continue
        body = textwrap.dedent("\n".join(lines[begin + 1:end]))
        try:
            names = _assigned_names(ast.parse(body).body)
        except SyntaxError:                       # a fragment: read the lines at the block's own indentation
            names = []
            for line in body.split("\n"):
                match = _DEFINITION.match(line)
                if match:
                    names += [match["def"]] if match["def"] else [n.strip() for n in match["names"].split(",")]
            names = [name for name in dict.fromkeys(names) if name != "_"]
        if names:
            found[begin] = names
    return found


def strip_solutions(source: str, cell_type: str = "code", where: str = "cell", name_answers: bool = True) -> str:
    """``source`` with every marked solution block replaced by a stub at the marker's indentation; above the
    stub of a top-level block of a code cell, a comment naming what the block defined (unless not
    ``name_answers``: what nbgrader does)."""
    blocks = _solution_blocks(source, where)
    names = answer_names(source, where) if cell_type == "code" and name_answers else {}
    lines = source.split("\n")
    kept: list[str] = []
    previous = 0
    for begin, end, indent in blocks:
        kept += lines[previous:begin]
        if begin in names:
            kept.append(indent + DEFINES + ", ".join(names[begin]))
        kept.append(indent + (CODE_STUB if cell_type == "code" else MARKDOWN_STUB))
        previous = end + 1
    kept += lines[previous:]
    return "\n".join(kept)


def strip_hidden_tests(source: str, where: str = "cell") -> str:
    """``source`` without its hidden-test blocks, markers included (and without the blank lines that
    removing a block leaves at the end of the cell)."""
    lines, kept, inside, removed = source.split("\n"), [], False, False
    for number, line in enumerate(lines, start=1):
        match = _HIDDEN_MARKER.match(line)
        if match is None:
            if BEGIN_HIDDEN in line or END_HIDDEN in line:
                raise MarkerError(f"{where}, line {number}: a hidden-tests marker must stand alone on its line, "
                                  f"got {line.strip()!r}")
            if not inside:
                kept.append(line)
        elif match["marker"] == BEGIN_HIDDEN:
            if inside:
                raise MarkerError(f"{where}, line {number}: {BEGIN_HIDDEN} inside another hidden-tests block")
            inside = removed = True
        else:
            if not inside:
                raise MarkerError(f"{where}, line {number}: {END_HIDDEN} without a {BEGIN_HIDDEN} before it")
            inside = False
    if inside:
        raise MarkerError(f"{where}: {BEGIN_HIDDEN} is never closed by {END_HIDDEN}")
    while removed and kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def has_hidden_tests(source: str) -> bool:
    """True when ``source`` holds a hidden-tests marker line."""
    return any(_HIDDEN_MARKER.match(line) for line in source.split("\n"))


def _require_hidden_tests_in_check_cells(cell, where: str) -> None:
    """Hidden tests only in check cells: those are the cells the grader puts back and nbgrader grades."""
    if has_hidden_tests(cell.source) and (cell.cell_type != "code" or cell_role(cell) != "check"):
        raise MarkerError(f"{where}: hidden tests stand only in a check cell (a code cell tagged exercise-N and "
                          f"check); in any other cell they would be lost from the student copy and never graded")


def student_path(solution: Path) -> Path:
    """Where the student copy of ``solution`` lives: ``x_exercises.ipynb`` -> ``x_exercises_student.ipynb``."""
    return solution.with_name(solution.stem + STUDENT_SUFFIX)


def _cells_digest(notebook) -> str:
    """A hash of the cells' types and sources: what a student edits."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        digest.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return digest.hexdigest()


def make_student_notebook(solution):
    """The student copy of a solution notebook (an ``nbformat`` notebook), as a new notebook."""
    student = copy.deepcopy(solution)
    student.metadata.pop("jupytext", None)          # the pairing belongs to the solution notebook
    for index, cell in enumerate(student.cells):
        _require_hidden_tests_in_check_cells(cell, f"cell {index}")
        cell.source = strip_hidden_tests(cell.source, where=f"cell {index}")
        cell.source = strip_solutions(cell.source, cell.cell_type, where=f"cell {index}")
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    student.metadata["student_copy"] = {
        "note": "Generated from the solution notebook by `make student`; edit the solution, not this copy.",
        "cells_sha256": _cells_digest(student),
    }
    return student


def render_student_copy(solution_file: Path) -> str:
    """The exact text the student copy of ``solution_file`` should have."""
    solution = nbformat.read(solution_file, as_version=4)
    try:
        student = make_student_notebook(solution)
    except MarkerError as error:
        raise MarkerError(f"{solution_file}: {error}") from None
    return nbformat.writes(student) + "\n"


def was_edited(student_text: str) -> bool:
    """True when a student copy's cells changed since it was generated (a student's work)."""
    try:
        notebook = nbformat.reads(student_text, as_version=4)
    except Exception:
        return True
    recorded = notebook.metadata.get("student_copy", {}).get("cells_sha256")
    return recorded != _cells_digest(notebook)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``files.atomic_write``), keeping its permissions."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
    else:                                   # what a plain open() would give: 0o666 minus the umask
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    atomic_write(path, lambda file: file.write(text.encode("utf-8")), mode=mode)


def default_solutions(root: Path | None = None) -> list[Path]:
    """Every ``notebooks/exercises/*_exercises.ipynb`` under ``root`` (default: the working
    directory, else this repository)."""
    roots = [root] if root is not None else [Path("."), REPO]
    for base in roots:
        folder = base / EXERCISE_DIR
        if folder.is_dir():
            return sorted(folder.glob(SOLUTION_GLOB))
    return []


def sync(solutions, check: bool = False, force: bool = False, out=None) -> int:
    """Write, check or overwrite the student copies of ``solutions``; returns an exit status.

    0: every copy is in sync (or was written). 1: a copy is out of sync (``check``) or was
    kept because it differs and ``force`` was not given. 2: a solution notebook is unusable.
    """
    out = sys.stdout if out is None else out
    status = 0
    for solution in map(Path, solutions):
        if solution.name.endswith(STUDENT_SUFFIX):
            print(f"skipped {solution}: it is a student copy; pass the solution notebook", file=out)
            status = max(status, 2)
            continue
        if not solution.is_file():
            print(f"error: {solution} does not exist", file=out)
            status = max(status, 2)
            continue
        target = student_path(solution)
        try:
            wanted = render_student_copy(solution)
        except (MarkerError, nbformat.reader.NotJSONError) as error:
            print(f"error: {error}", file=out)
            status = max(status, 2)
            continue
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current == wanted:
            print(f"in sync: {target}", file=out)
            continue
        if check:
            reason = "is missing" if current is None else "differs from its solution notebook"
            print(f"OUT OF SYNC: {target} {reason}; run `make student` "
                  f"(add ARGS=--force to replace an existing copy)", file=out)
            status = max(status, 1)
            continue
        if current is not None and not force:
            why = ("it was edited after it was generated (a student's work?)" if was_edited(current)
                   else "the solution notebook changed since it was generated")
            print(f"KEPT: {target} differs from what would be written: {why}. Nothing was overwritten; "
                  f"rerun with --force (make student ARGS=--force) to replace it.", file=out)
            status = max(status, 1)
            continue
        write_atomically(target, wanted)
        print(f"{'overwrote' if current is not None else 'wrote'}: {target}", file=out)
    return status


NBGRADER_CONFIG = f'''"""nbgrader's settings for this course, written by `python -m tools.student_copies --nbgrader`.

Run from this folder:  nbgrader generate_assignment <assignment> --force
(the assignment is the folder name under source/; the release copy lands in release/<assignment>/).
"""
c = get_config()  # noqa: F821 (nbgrader provides it)

# The stubs of the suite's own student copies, so both copies read the same.
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.ClearSolutions.text_stub = {MARKDOWN_STUB!r}
'''


def _with_answer_names(source: str, where: str) -> str:
    """``source`` with ``# Your answer defines: ...`` above each top-level solution block that defines names
    (outside the block, so nbgrader's release copy keeps it)."""
    names = answer_names(source, where)
    lines = source.split("\n")
    for begin in sorted(names, reverse=True):
        indent = _MARKER.match(lines[begin])["indent"]
        lines.insert(begin, indent + DEFINES + ", ".join(names[begin]))
    return "\n".join(lines)


def make_nbgrader_notebook(solution, name: str = "notebook"):
    """The solution notebook (``nbformat``) with nbgrader cell metadata derived from its tags, as a new notebook.

    A cell with a solution block: an autograded answer (``solution``; in markdown, a manually graded answer
    worth 0 points, since nbgrader grades markdown answers by hand only); a code cell tagged ``check``: an
    autograder test worth 1 point, ``grade_id`` ``exercise-N-check``; every other cell read-only (``locked``).
    """
    notebook = copy.deepcopy(solution)
    for key in ("jupytext", "student_copy"):
        notebook.metadata.pop(key, None)
    used: set[str] = set()

    def unique(grade_id: str) -> str:
        candidate, count = grade_id, 1
        while candidate in used:
            count += 1
            candidate = f"{grade_id}-{count}"
        used.add(candidate)
        return candidate

    for index, cell in enumerate(notebook.cells):
        where = f"{name}, cell {index}"
        _require_hidden_tests_in_check_cells(cell, where)
        strip_hidden_tests(cell.source, where)               # refuses unbalanced markers
        answer = bool(_solution_blocks(cell.source, where))
        number, role = exercise_number(cell), cell_role(cell)
        prefix = f"exercise-{number}" if number is not None else f"cell-{index}"
        if answer and role == "check":
            raise MarkerError(f"{where}: a check cell holds a solution block; answers and checks go in separate cells")
        if answer and cell.cell_type == "code":
            cell.source = _with_answer_names(cell.source, where)
            meta = {"grade": False, "solution": True, "locked": False, "grade_id": unique(f"{prefix}-solution")}
        elif answer:
            meta = {"grade": True, "solution": True, "locked": False, "points": 0,
                    "grade_id": unique(f"{prefix}-answer")}
        elif role == "check" and cell.cell_type == "code":
            meta = {"grade": True, "solution": False, "locked": True, "points": 1,
                    "grade_id": unique(f"{prefix}-check")}
        else:
            meta = {"grade": False, "solution": False, "locked": True, "grade_id": unique(f"cell-{index}")}
        cell.metadata["nbgrader"] = {**meta, "schema_version": NBGRADER_SCHEMA, "task": False}
    return notebook


def export_nbgrader(solutions, out: Path, log=None) -> int:
    """Write ``out/source/<stem>/<name>.ipynb`` (nbgrader metadata) for each solution notebook, and
    ``out/nbgrader_config.py``; returns an exit status (2 when a solution notebook is unusable)."""
    log = sys.stdout if log is None else log
    status = 0
    for solution in map(Path, solutions):
        if solution.name.endswith(STUDENT_SUFFIX) or not solution.is_file():
            why = "it is a student copy; pass the solution notebook" if solution.is_file() else "it does not exist"
            print(f"error: {solution}: {why}", file=log)
            status = 2
            continue
        try:
            notebook = make_nbgrader_notebook(nbformat.read(solution, as_version=4), name=str(solution))
        except (MarkerError, nbformat.reader.NotJSONError) as error:
            print(f"error: {error}", file=log)
            status = 2
            continue
        target = Path(out) / "source" / solution.stem / solution.name
        write_atomically(target, nbformat.writes(notebook) + "\n")
        print(f"wrote: {target}", file=log)
    if status == 0:
        write_atomically(Path(out) / "nbgrader_config.py", NBGRADER_CONFIG)
        print(f"wrote: {Path(out) / 'nbgrader_config.py'}; in {out}, run: nbgrader generate_assignment "
              f"<assignment> --force", file=log)
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.student_copies",
        description="Write student copies (*_student.ipynb) of the exercise solution notebooks.")
    parser.add_argument("paths", nargs="*", type=Path,
                        help=f"solution notebooks (default: every {EXERCISE_DIR / SOLUTION_GLOB})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only report copies that are out of sync (exit 1 if any)")
    mode.add_argument("--force", action="store_true", help="overwrite copies that differ (a student's edits are lost)")
    mode.add_argument("--nbgrader", type=Path, metavar="OUT",
                      help="write the solution notebooks as an nbgrader course in OUT (source/<assignment>/...) "
                           "instead of student copies")
    args = parser.parse_args(argv)
    solutions = args.paths or default_solutions()
    if not solutions:
        print(f"error: no solution notebooks found ({EXERCISE_DIR / SOLUTION_GLOB}); run from the repository root "
              f"or pass paths")
        return 2
    if args.nbgrader is not None:
        return export_nbgrader(solutions, args.nbgrader)
    return sync(solutions, check=args.check, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
