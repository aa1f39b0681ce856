"""The exercise solutions teach rather than transcribe, and the checks catch a one-character slip in any of them.

- No solution block shares three consecutive non-blank lines with a lesson notebook's source: an exercise
  whose answer is printed in a lesson only tests copying.
- Every arithmetic operator in every solution block, flipped (+ and -, * and /), makes the exercise's check
  fail: a check that passes a mutated answer does not test what it claims to.
"""
import ast
import contextlib
import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest

from tests.test_exercises import SOLUTION, exercise_numbers, quietly, tagged
from tests.test_exercises import notebooks, onehot_model, solved  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("17*.py"))
BLOCK = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION", re.S | re.M)
# Lines every training loop shares; finding them in a lesson and an answer is not a copy of the lesson.
IDIOMS = {("optimizer.zero_grad()", "loss.backward()", "optimizer.step()")}
FLIPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def normalised_lines(text: str) -> list[str]:
    """Non-blank lines without indentation, comments or spaces: what a copy keeps."""
    lines = (re.sub(r"\s+", "", line.split("#")[0]) for line in text.splitlines())
    return [line for line in lines if line]


def windows(lines: list[str], size: int = 3) -> set[tuple[str, ...]]:
    return {tuple(lines[i:i + size]) for i in range(len(lines) - size + 1)} - IDIOMS


def solution_blocks(notebook) -> list[tuple[int, str]]:
    """(exercise, text of one solution block) for every block of every solution cell."""
    return [(n, block) for n in exercise_numbers(notebook) for source in tagged(notebook, n, "solution")
            for block in BLOCK.findall(source)]


NOTEBOOK = nbformat.read(SOLUTION, as_version=4)


def test_solutions_do_not_copy_a_lesson():
    lesson_windows = {window: path.name for path in LESSONS for window in windows(normalised_lines(path.read_text()))}
    copied = [(n, lesson_windows[w], w) for n, block in solution_blocks(NOTEBOOK)
              for w in windows(normalised_lines(block)) if w in lesson_windows]
    assert not copied, "\n".join(f"exercise {n} copies {lesson}: {' / '.join(w)}" for n, lesson, w in copied)


def test_the_copy_detector_finds_a_copy():
    lesson = normalised_lines(LESSONS[0].read_text())
    code_start = next(i for i, line in enumerate(lesson) if not line.startswith("#") and "=" in line)
    block = "\n".join(["    " + line for line in lesson[code_start:code_start + 3]])
    assert windows(normalised_lines(block)) & windows(lesson)


class Flip(ast.NodeTransformer):
    """Flip the ``index``-th arithmetic operator (in source order) inside the lines ``first``..``last``."""

    def __init__(self, index: int, first: int, last: int):
        self.index, self.first, self.last, self.seen, self.flipped = index, first, last, 0, None

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if type(node.op) in FLIPS and self.first <= node.lineno <= self.last:
            if self.seen == self.index:
                self.flipped = (node.lineno, type(node.op).__name__)
                node.op = FLIPS[type(node.op)]()
            self.seen += 1
        return node


def mutants(source: str):
    """(description, mutated source) for each arithmetic operator inside the solution blocks of ``source``."""
    lines = source.split("\n")
    inside = [i + 1 for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line]
    for first, last in zip(inside[::2], inside[1::2]):
        index = 0
        while True:
            flip = Flip(index, first, last)
            tree = flip.visit(ast.parse(source))
            if flip.flipped is None:
                break
            yield f"line {flip.flipped[0]}: {flip.flipped[1]} flipped", ast.unparse(tree)
            index += 1


MUTANTS = [(n, what, code) for n in exercise_numbers(NOTEBOOK) for source in tagged(NOTEBOOK, n, "solution")
           for what, code in mutants(source)]


def test_every_solution_has_operators_to_flip():
    assert len({n for n, _, _ in MUTANTS}) >= len(exercise_numbers(NOTEBOOK)) // 2


@pytest.mark.parametrize("exercise, what, code", MUTANTS, ids=[f"{n}: {w}" for n, w, _ in MUTANTS])
def test_a_flipped_operator_fails_the_check(solved, exercise, what, code):  # noqa: F811 (the fixture)
    namespace = dict(solved)
    with plt.rc_context(), contextlib.redirect_stdout(io.StringIO()):
        try:
            quietly(code, namespace)
            for check in tagged(NOTEBOOK, exercise, "check"):
                quietly(check, namespace)
        except Exception:           # the check failed, or the mutated answer itself raised before it
            return
    pytest.fail(f"exercise {exercise}: the check passed with {what}")
