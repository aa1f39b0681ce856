"""Where else the notebooks open: a conda or Binder environment, and Colab.

conda is not on this machine, so environment.yml is checked as a file: it must ask for a CPU
build of PyTorch (never the multi-GB CUDA build an unpinned torch brings on Linux) and install
this package from the checkout. The checker is tested on wrong files too.

Colab: tools.colab writes, from the one address in pyproject.toml, a badge into each notebook's
opening cell and a cell that installs the package on Colab only. The tool is tested on copies;
the last tests check that the committed notebooks (.py and .ipynb) and the README carry it.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from tools import colab

ROOT = Path(__file__).resolve().parents[1]
CUDA_PACKAGES = ("pytorch-cuda", "cudatoolkit", "cuda-version", "pytorch-gpu", "cuda-toolkit")


# ------------------------------------------------------------------------------------------
# conda / Binder

def environment_problems(environment: dict) -> list[str]:
    """What keeps an environment.yml from giving a CPU build of torch and this package."""
    problems = []
    dependencies = environment.get("dependencies") or []
    conda = [spec for spec in dependencies if isinstance(spec, str)]
    pip = [line for spec in dependencies if isinstance(spec, dict) for line in spec.get("pip", [])]
    torch_specs = [spec for spec in conda if re.match(r"(pytorch|torch)\b(?!-cpu)", spec)]
    cpu_metapackage = any(re.match(r"pytorch-cpu\b", spec) for spec in conda)
    if not torch_specs and not cpu_metapackage:
        problems.append("no conda spec for pytorch: pip would bring torch, a CUDA build on Linux")
    for spec in torch_specs:
        if not re.fullmatch(r"pytorch\s*(=|==)?\s*[^=\s]*\s*=\s*\*?cpu\*?\S*", spec):
            problems.append(f"{spec!r} does not ask for the CPU build (use 'pytorch=*=cpu*')")
    problems += [f"{spec!r} brings CUDA" for spec in conda if spec.split("=")[0].strip() in CUDA_PACKAGES]
    if "conda-forge" not in (environment.get("channels") or []):
        problems.append("conda-forge is not a channel: the cpu build string is conda-forge's")
    for line in pip:
        if re.match(r"torch\b", line) and "+cpu" not in line:
            problems.append(f"pip line {line!r} installs torch from PyPI (a CUDA build on Linux)")
    if not any(re.fullmatch(r"(-e\s+)?\.(\[[\w,]+\])?", line.strip()) for line in pip):
        problems.append("the pip section does not install this package from the checkout ('-e .[dev]')")
    if "pip" not in conda:
        problems.append("pip is not among the conda dependencies")
    return problems


def test_environment_yml_installs_a_cpu_torch_and_the_package():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert environment_problems(environment) == []
    text = (ROOT / "environment.yml").read_text()
    assert "https://conda-forge.org/docs/user/cuda/" in text, "the file should cite where the spec is documented"


@pytest.mark.parametrize("dependencies, expected", [
    (["python=3.11", "pytorch", "pip", {"pip": ["-e .[dev]"]}], "does not ask for the CPU build"),
    (["python=3.11", "pip", {"pip": ["-e .[dev]"]}], "no conda spec for pytorch"),
    (["python=3.11", "pytorch=*=cpu*", "pytorch-cuda=12.1", "pip", {"pip": ["-e .[dev]"]}], "brings CUDA"),
    (["python=3.11", "pytorch=*=cuda*", "pip", {"pip": ["-e .[dev]"]}], "does not ask for the CPU build"),
    (["python=3.11", "pytorch=*=cpu*", "pip", {"pip": ["torch==2.13.0", "-e ."]}], "installs torch from PyPI"),
    (["python=3.11", "pytorch=*=cpu*", "pip", {"pip": ["gen_models_utilities"]}], "does not install this package"),
])
def test_environment_check_catches_wrong_files(dependencies, expected):
    problems = environment_problems({"channels": ["conda-forge"], "dependencies": dependencies})
    assert any(expected in problem for problem in problems), problems


def test_readme_says_binder_reads_environment_yml():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"Binder[^\n]*environment\.yml|environment\.yml[^\n]*Binder", readme), \
        "README should say that Binder builds from environment.yml"


# ------------------------------------------------------------------------------------------
# Colab: the tool, on copies

NOTEBOOK = """# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
# ---

# %% [markdown]
# # 99 A Title
#
# Some prose.

# %%
import numpy as np

# %% [markdown]
# ## 99.1 A section
"""


def test_repository_is_read_from_pyproject(tmp_path):
    assert colab.repository() == re.search(r'Repository = "https://github.com/([^"]+)"',
                                           (ROOT / "pyproject.toml").read_text()).group(1)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match="Repository"):
        colab.repository(tmp_path / "pyproject.toml")


def test_badge_and_install_cell_are_inserted_once_and_follow_the_address():
    once = colab.with_colab(NOTEBOOK, "someone/fork", "notebooks/99_a.ipynb")
    assert colab.with_colab(once, "someone/fork", "notebooks/99_a.ipynb") == once, "not idempotent"
    lines = once.splitlines()
    title = lines.index("# # 99 A Title")
    assert lines[title + 2] == "# " + colab.badge("someone/fork", "notebooks/99_a.ipynb")
    assert "colab.research.google.com/github/someone/fork/blob/main/notebooks/99_a.ipynb" in lines[title + 2]
    assert once.index('# %% tags=["colab"]') < once.index("import numpy"), "the install cell is not first"
    assert once.count("Open In Colab") == 1 and once.count('tags=["colab"]') == 1
    moved = colab.with_colab(once, "other/place", "notebooks/99_a.ipynb")
    assert "someone/fork" not in moved and moved.count("other/place") == 2
    assert moved.replace("other/place", "someone/fork") == once


def run_install_cell(repo: str, on_colab: bool, monkeypatch) -> list:
    """Run the install cell's code with subprocess.run recorded; returns the recorded calls."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = colab.install_cell(repo).split("\n", 1)[1]
    exec(compile(code, "install-cell", "exec"), {})
    return calls


def test_install_cell_installs_on_colab_only(monkeypatch):
    assert run_install_cell("someone/fork", on_colab=False, monkeypatch=monkeypatch) == []
    (args, kwargs), = run_install_cell("someone/fork", on_colab=True, monkeypatch=monkeypatch)
    assert args[0][1:4] == ["-m", "pip", "install"] and kwargs == {"check": True}
    assert args[0][-1] == "gen_models_utilities @ git+https://github.com/someone/fork"


def test_tool_on_copies_of_the_notebooks_gives_notebooks_jupytext_reads(tmp_path):
    for source in colab.notebook_sources():
        target = tmp_path / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for student in (ROOT / "notebooks" / "exercises").glob("*_student.ipynb"):
        shutil.copy2(student, tmp_path / student.relative_to(ROOT))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "README.md").write_text(f"# R\n\n{colab.README_START}\n{colab.README_END}\n")
    assert colab.main(["--root", str(tmp_path)]) == 0
    assert colab.main(["--root", str(tmp_path), "--check"]) == 0, "a second run would change files"
    import jupytext

    repo = colab.repository()
    for source in colab.notebook_sources(tmp_path):
        notebook = jupytext.read(source)
        opening, first_code = notebook.cells[0], next(c for c in notebook.cells if c.cell_type == "code")
        assert colab.colab_url(repo, colab.colab_target(source, tmp_path)) in opening.source, source.name
        assert first_code.metadata.get("tags") == ["colab"], f"{source.name}: the first code cell does not install"
    exercises = next(p for p in colab.notebook_sources(tmp_path) if "exercises" in p.parts)
    assert colab.colab_target(exercises, tmp_path).endswith("_student.ipynb"), "the exercise badge opens the solutions"
    assert (tmp_path / "README.md").read_text().count("Open In Colab") == len(colab.notebook_sources(tmp_path))


# ------------------------------------------------------------------------------------------
# Colab: the committed notebooks and README carry it (run `python -m tools.colab`, then sync)

def test_notebook_sources_and_readme_carry_the_configured_colab_address():
    stale = [path.relative_to(ROOT).as_posix() for path, text in colab.updated_files().items()
             if path.read_text() != text]
    assert not stale, f"run `python -m tools.colab` and sync the notebooks: out of date: {stale}"


def committed_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", committed_notebooks(), ids=lambda path: path.name)
def test_each_notebook_opens_in_colab_and_installs_there(notebook):
    repo = colab.repository()
    cells = json.loads(notebook.read_text())["cells"]
    opening = "".join(cells[0]["source"])
    assert f"https://colab.research.google.com/github/{repo}/blob/{colab.BRANCH}/notebooks/" in opening, \
        f"{notebook.name}: no Colab badge for {repo} in the opening cell (python -m tools.colab, then sync)"
    first_code = next(cell for cell in cells if cell["cell_type"] == "code")
    assert "colab" in first_code["metadata"].get("tags", []), f"{notebook.name}: no install cell before the header"
    assert f"git+https://github.com/{repo}" in "".join(first_code["source"])
