"""Wall-clock seconds to run each notebook top to bottom in a fresh kernel (nbclient)."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def notebook_paths(root: Path = REPO) -> list[Path]:
    """The chapter notebooks and exercise solutions (student copies are skipped: their stubs raise)."""
    found = sorted((root / "notebooks").glob("*.ipynb")) + sorted((root / "notebooks" / "exercises").glob("*.ipynb"))
    return [path for path in found if not path.stem.endswith("_student")]


def metric_name(path: Path) -> str:
    """``notebook_seconds_<stem>`` with characters other than letters, digits and _ replaced."""
    stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in path.stem)
    return f"notebook_seconds_{stem}"


def time_notebook(path: Path, timeout: int = 900, kernel_name: str = "python3") -> float:
    """Seconds from starting a new kernel (from the repository root) to the last cell's reply.

    That is what a student waits for with "Restart and run all". The kernel's shutdown
    afterwards is not counted: it is mostly the interpreter tearing down torch (about 1 s for
    ``import torch`` alone, 2 to 3 s after a notebook), and nobody waits for it. The notebook
    on disk is not modified. Progress bars are switched off in the kernel.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    os.environ["GEN_MODELS_PROGRESS"] = "0"        # inherited by the kernel process
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name, record_timing=True,
                            resources={"metadata": {"path": str(REPO)}})
    start = datetime.now(timezone.utc)
    client.execute()
    return (last_reply_time(notebook) - start).total_seconds()


def last_reply_time(notebook) -> datetime:
    """When the kernel answered the notebook's last code cell (from nbclient's timing record)."""
    replies = [cell.metadata["execution"]["shell.execute_reply"] for cell in notebook.cells
               if cell.cell_type == "code" and "shell.execute_reply" in cell.metadata.get("execution", {})]
    if not replies:
        raise ValueError("the notebook has no executed code cell with a timing record")
    stamp = datetime.fromisoformat(replies[-1].replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def notebook_seconds(paths=None, log=print) -> dict:
    """``notebook_seconds_<name>`` for each notebook; a notebook that fails is reported and skipped."""
    metrics = {}
    for path in notebook_paths() if paths is None else paths:
        try:
            seconds = time_notebook(Path(path))
        except Exception as error:                  # a broken notebook must not sink the benchmark
            log(f"  {Path(path).name}: failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
            continue
        metrics[metric_name(Path(path))] = seconds
        log(f"  {Path(path).name}: {seconds:.1f} s")
    return metrics
