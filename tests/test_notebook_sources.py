"""Every notebook is paired with a jupytext text source (percent .py), and the two agree cell by cell.

An edit made on one side only (the .py in an editor, or the notebook in a Jupyter without jupytext)
fails here until `make notebooks` (or `jupytext --sync`) brings the other side along.
"""
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from tools.student_copies import STUDENT_SUFFIX

ROOT = Path(__file__).resolve().parents[1]
PAIRING = "ipynb,py:percent"
NBVAL_COMMENT = re.compile(r"^\s*#\s*NBVAL_", re.MULTILINE)


def source_notebooks() -> list[Path]:
    """Every notebook under notebooks/ except the generated student copies."""
    return sorted(path for path in (ROOT / "notebooks").rglob("*.ipynb")
                  if not path.name.endswith(STUDENT_SUFFIX) and ".ipynb_checkpoints" not in path.parts)


def cells(notebook) -> list[tuple[str, str, list]]:
    """(cell type, source, tags) of every cell: what the text source must agree on."""
    return [(cell.cell_type, cell.source, list(cell.metadata.get("tags", []))) for cell in notebook.cells]


def disagreements(notebook_file: Path, text_file: Path) -> list[str]:
    """Where the committed notebook and its text source differ; empty when they agree."""
    stored, text = cells(nbformat.read(notebook_file, as_version=4)), cells(jupytext.read(text_file))
    found = [f"{len(stored)} cells in {notebook_file.name}, {len(text)} in {text_file.name}"] \
        if len(stored) != len(text) else []
    for index, (a, b) in enumerate(zip(stored, text)):
        found += [f"cell {index}: {what} differs" for what, x, y in zip(("type", "source", "tags"), a, b) if x != y]
    return found


NOTEBOOKS = source_notebooks()
IDS = [str(path.relative_to(ROOT)) for path in NOTEBOOKS]


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 4, IDS


@pytest.mark.parametrize("notebook_file", NOTEBOOKS, ids=IDS)
def test_notebook_is_paired_with_a_text_source(notebook_file):
    metadata = nbformat.read(notebook_file, as_version=4).metadata
    assert metadata.get("jupytext", {}).get("formats") == PAIRING
    text_file = notebook_file.with_suffix(".py")
    assert text_file.is_file(), f"{text_file.name} is missing: run `jupytext --sync {notebook_file.name}`"
    assert jupytext.read(text_file).metadata["jupytext"]["formats"] == PAIRING


@pytest.mark.parametrize("notebook_file", NOTEBOOKS, ids=IDS)
def test_committed_notebook_agrees_with_its_text_source(notebook_file):
    found = disagreements(notebook_file, notebook_file.with_suffix(".py"))
    assert not found, f"{notebook_file.name} and its .py disagree (run `make notebooks`): {found}"


@pytest.mark.parametrize("notebook_file", NOTEBOOKS, ids=IDS)
def test_no_code_cell_holds_an_nbval_comment(notebook_file):
    """Test-harness instructions are cell tags (nbval-ignore-output, ...), not comments students read."""
    for index, cell in enumerate(nbformat.read(notebook_file, as_version=4).cells):
        if cell.cell_type == "code":
            assert not NBVAL_COMMENT.search(cell.source), f"cell {index} of {notebook_file.name}"


def test_student_copies_are_not_paired():
    students = sorted((ROOT / "notebooks").rglob(f"*{STUDENT_SUFFIX}"))
    assert students
    for student in students:
        assert "jupytext" not in nbformat.read(student, as_version=4).metadata, student.name
        assert not student.with_suffix(".py").exists(), student.name


@pytest.fixture
def pair(tmp_path):
    """A copy of the chapter notebook and its text source, to edit."""
    notebook = shutil.copy(ROOT / "notebooks" / "17_flow_matching.ipynb", tmp_path)
    text = shutil.copy(ROOT / "notebooks" / "17_flow_matching.py", tmp_path)
    assert disagreements(Path(notebook), Path(text)) == []
    return Path(notebook), Path(text)


def test_comparison_catches_an_edit_of_the_text_source(pair):
    notebook_file, text_file = pair
    text = text_file.read_text()
    text_file.write_text(text.replace("set_seed(0)\n", "set_seed(1)\n", 1))
    assert [message for message in disagreements(notebook_file, text_file) if "source differs" in message]


def test_comparison_catches_a_tag_or_a_cell_added_in_the_notebook(pair):
    notebook_file, text_file = pair
    notebook = nbformat.read(notebook_file, as_version=4)
    notebook.cells[1].metadata["tags"] = ["nbval-skip"]
    nbformat.write(notebook, notebook_file)
    assert disagreements(notebook_file, text_file) == ["cell 1: tags differs"]
    notebook.cells.append(nbformat.v4.new_markdown_cell("A new closing remark."))
    nbformat.write(notebook, notebook_file)
    assert "cells in" in disagreements(notebook_file, text_file)[0]
