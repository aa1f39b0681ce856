"""Every `## ` section of a lesson runs from the header cell alone: a lecturer can begin the hour there.

Read statically: a name a section's code uses must be a builtin, defined by the header cell, or
defined earlier in the same section (assigned, imported, or a def/class). Names used inside a
function count when the function is defined, as they are looked up when it is called.
"""
import builtins
import symtable

import nbformat
import pytest

# The lessons. The exercises build on each other by design (later ones reuse a student's functions).
NOTEBOOKS = ["notebooks/17_flow_matching.ipynb", "notebooks/17a_solvers_and_couplings.ipynb",
             "notebooks/17b_flow_matching_vs_diffusion_and_cnf.ipynb", "notebooks/17c_digits.ipynb"]
KNOWN = set(dir(builtins)) | {"display", "get_ipython", "__file__"}


def code_of(cell) -> str:
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))


def names(source: str) -> tuple[set, set]:
    """(names the code defines at top level, global names it uses), nested scopes included."""
    table = symtable.symtable(source, "<cell>", "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used, stack = set(), [table]
    while stack:
        scope = stack.pop()
        stack.extend(scope.get_children())
        for symbol in scope.get_symbols():
            top = scope is table
            if symbol.is_referenced() and (top or symbol.is_global()):
                used.add(symbol.get_name())
            if not top and symbol.is_global() and symbol.is_assigned():      # a walrus in a comprehension
                defined.add(symbol.get_name())
    return defined, used


def sections(path):
    """(header source, {section title: [code sources]}) of a notebook."""
    notebook = nbformat.read(path, as_version=4)
    header, found, title = None, {}, None
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            title = cell.source.splitlines()[0]
            found[title] = []
        elif cell.cell_type == "code" and "colab" not in cell.metadata.get("tags", []):
            if header is None:
                header = code_of(cell)
            elif title is not None:
                found[title].append(code_of(cell))
    return header, found


def undefined_in_section(header: str, cells: list[str]) -> list[str]:
    known = KNOWN | names(header)[0]
    missing = []
    for source in cells:
        defined, used = names(source)
        # A name used before its definition in the same cell is rare in these lessons; count the cell's own names.
        missing += sorted(used - known - defined)
        known |= defined
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_every_section_starts_from_the_header_alone(path):
    header, found = sections(path)
    assert header and found, path
    problems = {title: missing for title, cells in found.items() if (missing := undefined_in_section(header, cells))}
    assert not problems, problems


def test_a_name_from_an_earlier_section_is_found():
    header = "import numpy as np\nSEED = 0"
    assert undefined_in_section(header, ["x = np.ones(3) * SEED", "y = x + 1"]) == []
    assert undefined_in_section(header, ["y = model(x)"]) == ["model", "x"]           # from another section
    assert undefined_in_section(header, ["def f():\n    return trained.sum()"]) == ["trained"]
    assert undefined_in_section(header, ["for k in range(3):\n    total = k", "print(total)"]) == []
    assert undefined_in_section(header, ["print([s for v in (1, 2) if (s := v)])", "print(s)"]) == []
