"""Grading a class: the wall time of ``tools.grade`` on 30 submissions, two at a time (target: 5 minutes).

    python -m benchmarks.grading                  # 30 copies of the solution notebook (about 5 min, 2 cores)
    python -m benchmarks.grading --submissions 4  # a smoke run

The submissions are copies of the solution notebook; every third one has one exercise broken (an
operator or a multiple-choice letter changed in its answer, the exercise taking turns), so the run
grades wrong answers as well as right ones. The machine's load average is sampled before, during and
after: the two kernels add about 2 to it, and anything above that is other work sharing the cores.
The CPU seconds of the grader and its kernels are counted too: on a busy machine, that total over the
two cores bounds from below what the wall time would be with the cores to itself.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

SUBMISSIONS = 30
JOBS = 2
TARGET_S = 300.0
_LETTER = re.compile(r"""(["'])([a-d])\1""")
_FLIPS = ((" - ", " + "), (" + ", " - "), (" * ", " + "), (" / ", " * "))


def break_answer(source: str) -> str | None:
    """``source`` with one change inside its first solution block: a multiple-choice letter moved on, else
    the first arithmetic operator flipped; None when the block has neither."""
    from tools.student_copies import BEGIN, END

    lines = source.split("\n")
    inside = False
    for i, line in enumerate(lines):
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside:
            code, mark, comment = line.partition("#")          # never a change inside a comment
            letter = _LETTER.search(code)
            if letter:
                other = "a" if letter[2] != "a" else "b"
                lines[i] = code[:letter.start(2)] + other + code[letter.end(2):] + mark + comment
                return "\n".join(lines)
            for old, new in _FLIPS:
                if old in code:
                    lines[i] = code.replace(old, new, 1) + mark + comment
                    return "\n".join(lines)
    return None


def make_submissions(solution: Path, folder: Path, n: int = SUBMISSIONS) -> dict[str, int | None]:
    """Write ``n`` submissions into ``folder``; returns file name -> the exercise broken in it (or None)."""
    import nbformat

    from tools.student_copies import cell_role, exercise_number

    source = nbformat.read(solution, as_version=4)
    answers = [(exercise_number(cell), index) for index, cell in enumerate(source.cells)
               if cell_role(cell) == "solution" and exercise_number(cell) is not None and break_answer(cell.source)]
    broken: dict[str, int | None] = {}
    for k in range(n):
        notebook = nbformat.read(solution, as_version=4)
        name = f"student_{k + 1:02d}.ipynb"
        broken[name] = None
        if k % 3 == 2 and answers:
            number, index = answers[(k // 3) % len(answers)]
            notebook.cells[index].source = break_answer(notebook.cells[index].source)
            broken[name] = number
        nbformat.write(notebook, folder / name)
    return broken


def _cpu_seconds() -> float:
    """User and system CPU seconds of this process and its finished children (the kernels)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class LoadSampler:
    """The 1-minute load average, sampled every few seconds in a thread while the block runs."""

    def __init__(self, every_s: float = 5.0):
        self.every_s, self.samples, self._stop = every_s, [], threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def grading_seconds(n: int = SUBMISSIONS, jobs: int = JOBS, solution: Path | None = None, timeout: float = 300.0,
                    log=print) -> dict:
    """Grade ``n`` submissions ``jobs`` at a time; the wall time, the marks' sanity and the machine's load."""
    from tools import grade

    solution = Path(solution) if solution else grade.default_key_path()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as base:
        folder, grades = Path(base) / "submissions", Path(base) / "grades"
        folder.mkdir()
        broken = make_submissions(solution, folder, n)
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds()
        with LoadSampler() as load:
            start = time.perf_counter()
            results = grade.grade(folder, grades, timeout=timeout, jobs=jobs, solution=solution,
                                  log=lambda line: log(f"  {line}"))
            seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_before
        load_after = os.getloadavg()[0]
    exercises = len(results[0].scores)
    intact = [r for r in results if broken[r.file] is None]
    wrong = [r for r in results if broken[r.file] is not None]
    metrics = {
        f"grading_seconds_{n}": seconds,
        "grading_submissions": n,
        "grading_jobs": jobs,
        "grading_exercises": exercises,
        "grading_seconds_per_notebook_median": statistics.median(r.seconds for r in results),
        "grading_intact_full_marks": sum(r.total == exercises for r in intact),
        "grading_intact": len(intact),
        "grading_broken_caught": sum(r.scores[broken[r.file]] == 0 for r in wrong),
        "grading_broken": len(wrong),
        "grading_load_before": load_before,
        "grading_load_during_mean": statistics.mean(load.samples) if load.samples else load_before,
        "grading_load_after": load_after,
        "grading_cores": os.cpu_count() or 0,
        "grading_cpu_seconds": cpu,
        "grading_cpu_seconds_per_core": cpu / min(jobs, os.cpu_count() or 1),
    }
    if n == SUBMISSIONS:
        metrics["target_grading_5_min_met"] = int(seconds <= TARGET_S)
    log(f"  {n} submissions ({exercises} exercises each), {jobs} at a time: {seconds:.0f} s "
        f"(target {TARGET_S:.0f} s for {SUBMISSIONS}); median {metrics['grading_seconds_per_notebook_median']:.0f} s "
        f"per notebook; load {load_before:.1f} before, {metrics['grading_load_during_mean']:.1f} during, "
        f"{load_after:.1f} after, {metrics['grading_cores']} cores")
    log(f"  CPU time of the grader and its kernels: {cpu:.0f} s, {metrics['grading_cpu_seconds_per_core']:.0f} s "
        f"per core used (the wall time with {min(jobs, metrics['grading_cores'])} idle cores would be at least that)")
    log(f"  intact copies with full marks: {metrics['grading_intact_full_marks']} of {len(intact)}; broken answers "
        f"caught: {metrics['grading_broken_caught']} of {len(wrong)}")
    return metrics


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=SUBMISSIONS, help="how many (default 30)")
    parser.add_argument("--jobs", type=int, default=JOBS, help="notebooks at a time (default 2)")
    parser.add_argument("--solution", type=Path, help="the solution notebook (default: the exercise notebook)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GEN_MODELS_PROGRESS", "0")
    metrics = grading_seconds(args.submissions, args.jobs, args.solution)
    width = max(map(len, metrics))
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
