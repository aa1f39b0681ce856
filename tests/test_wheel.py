"""An installed wheel suffices: build it, install it into a fresh virtual environment, run every notebook.

The wheel is built from a copy of the package and pyproject.toml (`pip wheel --no-deps`, no
network: the build backend comes from this environment). The fresh environment gets the wheel
and nothing of the checkout: the third-party packages (torch, matplotlib, ...) are borrowed
from this environment through a folder of links to its site-packages that leaves out this
package and its editable-install hook, so nothing is downloaded. Every source notebook
(not the students' copy, whose stubs raise by design) is copied to a temporary folder and run
by a kernel of the fresh environment, from another, unrelated working directory; a last cell
added to each copy prints where the package was imported from, which must be the fresh
environment. Slow: about 3-4 minutes on 2 CPU cores, most of it running the notebooks.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "gen_models_utilities"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WHERE_CELL = ("import sys, gen_models_utilities\n"
              "print('PACKAGE', gen_models_utilities.__file__)\nprint('PYTHON', sys.executable)")


def source_notebooks() -> list[Path]:
    folder = ROOT / "notebooks"
    notebooks = sorted(folder.glob("*.ipynb")) + sorted((folder / "exercises").glob("*.ipynb"))
    return [path for path in notebooks if not path.name.endswith("_student.ipynb")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built from a copy of its files."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(ROOT / PACKAGE, source / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(source)], check=True)
    (wheel,) = out.glob(f"{PACKAGE}-*.whl")
    return wheel


def test_the_wheel_holds_every_file_of_the_package(wheel):
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {path.relative_to(ROOT).as_posix() for path in (ROOT / PACKAGE).rglob("*")
              if path.is_file() and "__pycache__" not in path.parts}
    assert any(name.endswith(".pt") for name in wanted), "the package folder holds no checkpoint"
    missing = sorted(wanted - shipped)
    assert not missing, f"files of the package left out of the wheel: {missing}"


def borrowed_site_packages(folder: Path) -> Path:
    """Links to this environment's site-packages, leaving out this package and its editable hook."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("__editable__", PACKAGE)) or name.endswith(".pth"):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def fresh_python(wheel, tmp_path_factory) -> Path:
    """The python of a fresh virtual environment holding the wheel (and borrowed dependencies)."""
    home = tmp_path_factory.mktemp("fresh")
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "borrowed.pth").write_text(str(borrowed_site_packages(home / "borrowed")) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, cwd=home, env=clean_environment(home))
    return python


def clean_environment(home: Path) -> dict:
    """Environment variables for the fresh python: no PYTHONPATH, private Jupyter folders."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "JUPYTER", "VIRTUAL_ENV")) and key != "MPLBACKEND"}
    env.update(JUPYTER_DATA_DIR=str(home / "jupyter-data"), JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"), IPYTHONDIR=str(home / "ipython"),
               JUPYTER_PLATFORM_DIRS="1", GEN_MODELS_PROGRESS="0")
    return env


RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
path, cwd = sys.argv[1], sys.argv[2]
notebook = nbformat.read(path, as_version=4)
notebook.cells.append(nbformat.v4.new_code_cell({where!r}))
NotebookClient(notebook, timeout=900, kernel_name="fresh", resources={{"metadata": {{"path": cwd}}}}).execute()
nbformat.write(notebook, path)
"""


def test_every_notebook_runs_from_the_installed_wheel(fresh_python, tmp_path):
    home = fresh_python.parents[2]
    env = clean_environment(home)
    subprocess.run([str(fresh_python), "-m", "ipykernel", "install", "--prefix", str(fresh_python.parents[1]),
                    "--name", "fresh"], check=True, capture_output=True, env=env)
    where = subprocess.run([str(fresh_python), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path, env=env).stdout
    assert Path(where).resolve().is_relative_to(fresh_python.parents[1].resolve()), where
    copies, cwd = tmp_path / "notebooks", tmp_path / "elsewhere"
    copies.mkdir()
    cwd.mkdir()
    failures = []
    for notebook in source_notebooks():
        copy = copies / notebook.name
        shutil.copy2(notebook, copy)
        run = subprocess.run([str(fresh_python), "-c", RUN_NOTEBOOK.format(where=WHERE_CELL), str(copy), str(cwd)],
                             capture_output=True, text=True, cwd=cwd, env=env)
        if run.returncode:
            failures.append(f"{notebook.name}:\n{ANSI.sub('', run.stderr)[-2000:]}")
            continue
        last = json.loads(copy.read_text())["cells"][-1]["outputs"][0]["text"]
        lines = dict(line.split(" ", 1) for line in "".join(last).splitlines())
        for key in ("PACKAGE", "PYTHON"):
            inside = Path(lines[key]).is_relative_to(fresh_python.parents[1])
            assert inside, f"{notebook.name}: {key} {lines[key]} is outside the fresh environment"
    assert not failures, "\n\n".join(failures)
