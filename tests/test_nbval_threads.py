"""The stored notebook outputs do not depend on the thread count.

``make test`` runs nbval with the machine's default threads (two here); this test runs it again in
a subprocess with OMP_NUM_THREADS=1, so numbers printed in the notebooks must be rounded enough
to survive a different order of floating-point sums.

By default only the chapter notebook is checked (each run re-executes a whole notebook); set
GEN_MODELS_NBVAL_THREADS_ALL=1 to check every notebook nbval compares.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "notebooks/17_flow_matching.ipynb"


def compared_notebooks() -> list[str]:
    """The notebooks ``make test`` gives to nbval (student copies excluded: their stubs raise)."""
    found = sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(
        path for path in ROOT.glob("notebooks/exercises/*.ipynb") if not path.stem.endswith("_student"))
    return [str(path.relative_to(ROOT)) for path in found]


NOTEBOOKS = compared_notebooks() if os.environ.get("GEN_MODELS_NBVAL_THREADS_ALL") == "1" else [CHAPTER]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_nbval_passes_with_one_thread(notebook):
    if not (ROOT / notebook).is_file():
        pytest.skip(f"{notebook} does not exist yet")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GEN_MODELS_PROGRESS": "0"}
    env.pop("MPLBACKEND", None)          # the kernels must draw inline, as in the stored outputs
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
               "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", notebook]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, f"nbval with OMP_NUM_THREADS=1 failed on {notebook}:\n{done.stdout[-6000:]}"
