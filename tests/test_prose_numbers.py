"""Every number a lesson's prose states is printed by one of its cells (tools.prose_numbers)."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import prose_numbers

NOTEBOOKS = ["notebooks/17_flow_matching.ipynb", "notebooks/17a_solvers_and_couplings.ipynb",
             "notebooks/17b_flow_matching_vs_diffusion_and_cnf.ipynb", "notebooks/17c_digits.ipynb",
             "notebooks/exercises/17_flow_matching_exercises.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_every_number_in_the_prose_is_printed(path):
    missing = prose_numbers.unprinted(path)
    assert not missing, "\n".join(f"cell {index}: {number!r} in ...{context}..." for index, number, context in missing)


def notebook(prose: str, printed: str):
    cell = new_code_cell("print(...)")
    cell.outputs = [new_output("stream", name="stdout", text=printed)]
    return new_notebook(cells=[new_markdown_cell(prose), cell])


@pytest.mark.parametrize("prose, printed, found", [
    ("W2 is 0.43 here.", "W2 0.4312", []),                               # printed, rounded to the prose's places
    ("W2 is 0.43 here.", "W2 0.4372", ["0.43"]),                         # rounds to 0.44: the prose is stale
    ("2.4% of the samples.", "off-mode 0.0240", []),                     # a share printed as a fraction
    ("2.4% of the samples.", "off-mode 2.4%", []),
    ("2.4% of the samples.", "off-mode 1.1%", ["2.4%"]),
    ("After 8000 steps of 512.", "8000 steps", ["512"]),
    ("Section 17.4.1 with $x_t = 0.37 x_0$ and `lr=2e-3` (2023).", "", []),   # references, math, code, years
    ("| objective | exercises |\n|---|---|\n| sampling | 12, 13 |", "", []),   # a table of exercise numbers
    ("Uses 3 steps.", "", []),                                           # small counts are names, not claims
])
def test_the_reader_finds_exactly_the_unprinted_numbers(tmp_path, prose, printed, found):
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook(prose, printed), path)
    assert [number for _, number, _ in prose_numbers.unprinted(path)] == found
