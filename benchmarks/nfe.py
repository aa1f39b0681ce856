"""Fewest network evaluations (NFE) that reach the W2 target, per solver and coupling.

For a fixed-step solver the NFE is steps x evaluations per step, so we search a ladder of
step counts; for adaptive dopri5 we search a ladder of tolerances (rtol = atol) and read the
NFE the solver reports. Sample quality improves with more steps (or tighter tolerances), so
a bisection over the ladder finds the first rung that meets the target with few costly W2
evaluations; the off-mode gate is not applied here, only W2.
"""
from __future__ import annotations

from gen_models_utilities.solvers import SOLVERS, solver_names

from .quality import QualityJudge

STEP_LADDER = (1, 2, 4, 8, 16, 32, 64, 128)
TOLERANCE_LADDER = (1e-1, 1e-2, 1e-3, 1e-4)


def _settings(method: str, step_ladder, tolerance_ladder) -> list[dict]:
    if not SOLVERS[method].adaptive:           # fixed-step: a ladder of step counts
        return [{"n_steps": n, "method": method} for n in step_ladder]
    return [{"n_steps": 1, "method": method, "rtol": tol, "atol": tol} for tol in tolerance_ladder]


def first_passing(judge: QualityJudge, model, settings: list[dict]):
    """Bisection for the first setting whose samples meet the W2 target.

    Returns (verdict of that setting or None if even the last fails, verdict of the last
    setting, evaluations made).
    """
    cache = {}

    def verdict(i):
        if i not in cache:
            cache[i] = judge.judge(model, check_modes=False, **settings[i])
        return cache[i]

    last = verdict(len(settings) - 1)
    if not last.passed:
        return None, last, len(cache)
    low, high = -1, len(settings) - 1          # invariant: settings[high] passes, settings[low] fails
    while high - low > 1:
        middle = (low + high) // 2
        if verdict(middle).passed:
            high = middle
        else:
            low = middle
    return verdict(high), last, len(cache)


def nfe_to_quality(judge: QualityJudge, models: dict, solvers=None, step_ladder=STEP_LADDER,
                   tolerance_ladder=TOLERANCE_LADDER, log=print) -> dict:
    """``nfe_to_quality_<solver>_<coupling>`` for each model in ``models`` {coupling: model}.

    ``solvers``: method names (default: every one of ``solvers.solver_names()``).
    A combination that misses the target even at the end of its ladder is recorded at the
    ladder's largest NFE with ``nfe_to_quality_<solver>_<coupling>_reached = 0``.
    """
    metrics = {}
    for coupling, model in models.items():
        for method in solvers or solver_names():
            settings = _settings(method, step_ladder, tolerance_ladder)
            found, last, n_evaluations = first_passing(judge, model, settings)
            key = f"nfe_to_quality_{method}_{coupling}"
            if found is None:
                metrics[key], metrics[f"{key}_reached"] = last.nfe, 0
                log(f"  {method:8s} {coupling:11s} not reached within {last.nfe} NFE")
            else:
                metrics[key], metrics[f"{key}_reached"] = found.nfe, 1
                metrics[f"{key}_w2"] = found.w2
                log(f"  {method:8s} {coupling:11s} {found.nfe:4d} NFE  W2 {found.w2:.3f}"
                    f"  ({n_evaluations} evaluations)")
    return metrics
