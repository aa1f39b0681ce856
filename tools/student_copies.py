"""Student copies of the exercise notebooks, generated from the solution notebooks.

In a solution notebook every answer sits between two marker lines (the nbgrader convention):

    ### BEGIN SOLUTION
    ...the answer...
    ### END SOLUTION

The student copy ``<name>_student.ipynb`` replaces each such block in a code cell by
``raise NotImplementedError(...)`` at the marker's indentation (in a markdown cell, by
"*Your answer here.*"), keeps every other line and the cell tags, and clears outputs and
execution counts. It drops the solution's jupytext pairing, so JupyterLab never pairs the
student copy with the solution's ``.py`` source.

A student copy that differs from what would be written is never overwritten without
``--force``, so a student's work cannot be lost by regenerating. Writes are atomic.

    python -m tools.student_copies            # write missing copies (run from the repository root)
    python -m tools.student_copies --check    # exit 1 if a copy is out of sync
    python -m tools.student_copies --force    # overwrite copies that differ
    python -m tools.student_copies notebooks/exercises/17_flow_matching_exercises.ipynb
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import re
import sys
from pathlib import Path

import nbformat

from gen_models_utilities.files import atomic_write

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUDENT_SUFFIX = "_student.ipynb"
SOLUTION_GLOB = "*_exercises.ipynb"
EXERCISE_DIR = Path("notebooks") / "exercises"
REPO = Path(__file__).resolve().parents[1]
CODE_STUB = 'raise NotImplementedError("Replace this line with your answer, then run the check cell below.")'
MARKDOWN_STUB = "*Your answer here.*"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>### (?:BEGIN|END) SOLUTION)[ \t]*$")


class MarkerError(ValueError):
    """A solution notebook whose BEGIN/END SOLUTION markers do not pair up."""


def strip_solutions(source: str, cell_type: str = "code", where: str = "cell") -> str:
    """``source`` with every marked solution block replaced by a stub at the marker's indentation."""
    lines = source.split("\n")
    kept: list[str] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        match = _MARKER.match(line)
        if match is None:
            if BEGIN in line or END in line:
                raise MarkerError(f"{where}, line {number}: a solution marker must stand alone on its line, "
                                  f"got {line.strip()!r}")
            if not inside:
                kept.append(line)
            continue
        if match["marker"] == BEGIN:
            if inside:
                raise MarkerError(f"{where}, line {number}: {BEGIN} inside another solution block")
            inside = True
            stub = CODE_STUB if cell_type == "code" else MARKDOWN_STUB
            kept.append(match["indent"] + stub)
        else:
            if not inside:
                raise MarkerError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            inside = False
    if inside:
        raise MarkerError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(kept)


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.student_copies",
        description="Write student copies (*_student.ipynb) of the exercise solution notebooks.")
    parser.add_argument("paths", nargs="*", type=Path,
                        help=f"solution notebooks (default: every {EXERCISE_DIR / SOLUTION_GLOB})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only report copies that are out of sync (exit 1 if any)")
    mode.add_argument("--force", action="store_true", help="overwrite copies that differ (a student's edits are lost)")
    args = parser.parse_args(argv)
    solutions = args.paths or default_solutions()
    if not solutions:
        print(f"error: no solution notebooks found ({EXERCISE_DIR / SOLUTION_GLOB}); run from the repository root "
              f"or pass paths")
        return 2
    return sync(solutions, check=args.check, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
