"""Numbers in a notebook's prose that none of its outputs prints.

    python -m tools.prose_numbers notebooks/17a_solvers_and_couplings.ipynb     # list them, with context

Every number a markdown cell states must be printed by a cell of the same notebook (or written
into the prose by code): a sentence that outlives a re-run then fails ``tests/test_prose_numbers.py``.
A prose number matches an output number when the output, rounded to the prose's decimals, gives
it (0.43 matches a printed 0.4312; 2.4% matches a printed 2.4% or 0.024).

Not read as claims: LaTeX math ($...$), inline code, links' targets, headings, years in
citations, section numbers of chapter 17 (17.4, 17.4.1, 17a.3), whole numbers below 10 (counts of
things the text names: 2 steps, 8 modes), tables whose header names exercises, and the constants
in ``ALLOWED`` (defined by the text itself, with the reason beside each).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

# Numbers the prose may state without a printout: definitions and conventions, not measurements.
ALLOWED = {
    "0.5", "0.25", "0.75",          # times t named in the text (t = 0.5) and the path's coefficients
    "1.0", "0", "1",                # the ends of the time interval
    "95",                           # 95% intervals
    "12.5",                         # chance among 8 modes, 1/8 = 12.5%
}
NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-−]?\d+)?%?(?![\w])")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\([^)]*\)|https?://\S+")
SECTION = re.compile(r"(?<![\w.])17(?:\.\d+){1,2}[a-c]?(?![\d%])|(?<![\w.])17[a-c](?:\.\d+)*(?![\d%])")
HEADING = re.compile(r"^#+ .*$", re.M)
YEAR = re.compile(r"\b(?:19|20)\d\d[a-z]?\b")


def _value(text: str) -> tuple[float, int, bool]:
    """(value, decimals, is_percent) of a number as written."""
    percent = text.endswith("%")
    body = text.rstrip("%").replace(",", "").replace("−", "-")
    decimals = len(body.split(".")[1].split("e")[0]) if "." in body else 0
    return float(body), decimals, percent


def _without_exercise_tables(source: str) -> str:
    """The cell without the rows of tables whose header names exercises (their cells are exercise numbers)."""
    kept, previous, skipping = [], "", False
    for line in source.splitlines():
        is_row = line.lstrip().startswith("|")
        if is_row and not previous.lstrip().startswith("|"):        # a table's header row
            skipping = "exercise" in line.lower()
        previous = line
        if not (is_row and skipping):
            kept.append(line)
    return "\n".join(kept)


def prose_numbers(source: str) -> list[str]:
    """The numbers a markdown cell states, as written, once math, code, links, headings, section
    numbers, years and tables of exercise numbers are set aside."""
    source = _without_exercise_tables(source)
    text = HEADING.sub(" ", LINK.sub(" ", CODE.sub(" ", MATH.sub(" ", source))))
    text = SECTION.sub(" ", YEAR.sub(" ", text))
    found = []
    for match in NUMBER.finditer(text):
        number = match.group()
        before = text[max(0, match.start() - 12):match.start()]
        if re.search(r"(?:§|section|sections|chapter|exercises?|ch\.?)\s*$", before, re.I):
            continue                                    # a reference to a section or an exercise
        value, decimals, _ = _value(number)
        if number.rstrip("%") in ALLOWED or (decimals == 0 and abs(value) < 10):
            continue
        found.append(number)
    return found


def output_numbers(notebook) -> list[float]:
    """Every number printed by the notebook's code cells (streams, text/plain, text/markdown, HTML text)."""
    values = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")]
            data = output.get("data", {})
            texts += [data.get(kind, "") for kind in ("text/plain", "text/markdown", "text/html")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                for match in NUMBER.finditer(text):
                    value, _, percent = _value(match.group())
                    values.append(value / 100 if percent else value)
                    if percent:
                        values.append(value)
    return values


def matches(number: str, printed: list[float]) -> bool:
    """Whether some printed value, rounded to the prose's decimals, is the prose's number."""
    value, decimals, percent = _value(number)
    candidates = [value / 100, value] if percent else [value]
    for target in candidates:
        places = decimals + (2 if percent and target != value else 0)
        tolerance = 0.5 * 10 ** -places + 1e-12
        if any(abs(p - target) <= tolerance for p in printed):
            return True
    return False


def unprinted(path) -> list[tuple[int, str, str]]:
    """(cell index, number, context) for each prose number of the notebook at ``path`` that no output prints."""
    notebook = nbformat.read(path, as_version=4)
    printed = output_numbers(notebook)
    missing = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for number in prose_numbers(cell.source):
            if not matches(number, printed):
                at = cell.source.find(number)
                context = cell.source[max(0, at - 60):at + len(number) + 30].replace("\n", " ")
                missing.append((index, number, context))
    return missing


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:]) or sorted(str(p) for p in Path("notebooks").glob("*.ipynb"))
    total = 0
    for path in paths:
        found = unprinted(path)
        total += len(found)
        for index, number, context in found:
            print(f"{path} cell {index}: {number!r} in ...{context}...")
    print(f"{total} prose numbers printed by no output")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
