"""Open in Colab: a badge in each notebook's opening cell and in the README, and an install cell.

The repository's address is one setting, ``Repository`` in pyproject.toml's [project.urls]; a
fork changes that line and runs this command. In each notebook's jupytext source (.py) it
writes, replacing what an earlier run wrote:
- under the title of the opening markdown cell, a badge opening the notebook in Colab (an
  exercise notebook's badge opens its students' copy: a student never lands on the solutions);
- before the first code cell, a cell tagged ``colab`` that installs this package from the
  repository when, and only when, the notebook runs on Colab (elsewhere it does nothing).
In README.md it fills the block between the ``colab-links`` markers with a table of Colab and
Binder links.

    python -m tools.colab            # update the notebooks' .py sources and README.md
    python -m tools.colab --check    # exit 1 if a file is not up to date

Then sync the notebooks (`make notebooks`, or `jupytext --sync` on each) so the .ipynb carry it.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
README = ROOT / "README.md"
BRANCH = "main"
PACKAGE = "gen_models_utilities"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
INSTALL_TAG = "colab"
README_START, README_END = "<!-- colab-links: start -->", "<!-- colab-links: end -->"


def repository(pyproject: Path = PYPROJECT) -> str:
    """``owner/name`` of the GitHub repository named by [project.urls] Repository."""
    urls = re.search(r"^\[project\.urls\]\n(.*?)(?=^\[|\Z)", pyproject.read_text(), re.M | re.S)
    match = urls and re.search(r'^Repository\s*=\s*"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?"',
                               urls.group(1), re.M)
    if not match:
        raise ValueError(f'{pyproject}: [project.urls] needs Repository = "https://github.com/<owner>/<name>"')
    return match.group(1)


def notebook_sources(root: Path = ROOT) -> list[Path]:
    """The jupytext sources of every notebook: notebooks/*.py and notebooks/exercises/*.py."""
    return sorted((root / "notebooks").glob("*.py")) + sorted((root / "notebooks" / "exercises").glob("*.py"))


def colab_target(source: Path, root: Path = ROOT) -> str:
    """The notebook a source's badge opens, relative to the repository (the students' copy if any)."""
    student = source.with_name(source.stem + "_student.ipynb")
    return (student if student.exists() else source.with_suffix(".ipynb")).relative_to(root).as_posix()


def colab_url(repo: str, path: str) -> str:
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/{path}"


def badge(repo: str, path: str) -> str:
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(repo, path)})"


def install_cell(repo: str) -> str:
    """The jupytext text of the cell that installs the package on Colab only."""
    return (f'# %% tags=["{INSTALL_TAG}"]\n'
            "import subprocess\n"
            "import sys\n"
            "\n"
            'if "google.colab" in sys.modules:   # on Colab: install the package these notebooks import\n'
            f'    package = "{PACKAGE} @ git+https://github.com/{repo}"\n'
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)\n')


CELL_START = re.compile(r"^# %%.*$", re.M)
BADGE_LINE = re.compile(r"^# \[!\[Open In Colab\]\(.*$\n(#\n)?", re.M)


def with_colab(text: str, repo: str, path: str) -> str:
    """``text`` (a percent-format notebook) with its badge and install cell for ``repo``."""
    starts = [match.start() for match in CELL_START.finditer(text)] + [len(text)]
    cells = [text[a:b] for a, b in zip(starts, starts[1:])]
    head = text[:starts[0]]
    cells = [cell for cell in cells if not cell.startswith(f'# %% tags=["{INSTALL_TAG}"]')]
    first_markdown = next(i for i, cell in enumerate(cells) if cell.startswith("# %% [markdown]"))
    markdown = BADGE_LINE.sub("", cells[first_markdown])
    title_end = markdown.index("\n", markdown.index("\n") + 1) + 1      # the header line, then the title
    cells[first_markdown] = markdown[:title_end] + f"#\n# {badge(repo, path)}\n" + markdown[title_end:]
    first_code = next(i for i, cell in enumerate(cells) if not cell.startswith("# %% [markdown]"))
    cells.insert(first_code, install_cell(repo) + "\n")
    return head + "".join(cells)


def binder_url(repo: str, path: str) -> str:
    return f"https://mybinder.org/v2/gh/{repo}/{BRANCH}?urlpath=lab/tree/{path}"


def readme_links(repo: str, root: Path = ROOT) -> str:
    """The README block: one row per notebook, with its Colab badge and a Binder link."""
    rows = [f"| `{path}` | {badge(repo, path)} | [Binder]({binder_url(repo, path)}) |"
            for path in (colab_target(source, root) for source in notebook_sources(root))]
    return "\n".join([README_START, "| notebook | Colab | Binder |", "| --- | --- | --- |", *rows, README_END])


def with_readme_links(text: str, repo: str, root: Path = ROOT) -> str:
    block = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not block.search(text):
        raise ValueError(f"README.md has no {README_START} ... {README_END} block to fill")
    return block.sub(lambda _: readme_links(repo, root), text)


def updated_files(root: Path = ROOT) -> dict[Path, str]:
    """Every file this command writes, with the text it should hold."""
    repo = repository(root / "pyproject.toml")
    wanted = {source: with_colab(source.read_text(), repo, colab_target(source, root))
              for source in notebook_sources(root)}
    wanted[root / "README.md"] = with_readme_links((root / "README.md").read_text(), repo, root)
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is not up to date")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stale = {path: text for path, text in updated_files(args.root).items() if path.read_text() != text}
    for path, text in stale.items():
        if args.check:
            print(f"out of date: {path.relative_to(args.root)} (run python -m tools.colab)")
        else:
            path.write_text(text)
            print(f"updated {path.relative_to(args.root)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
