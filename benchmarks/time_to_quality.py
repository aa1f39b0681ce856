"""Time to quality: what the recipe buys, with the implementation held fixed.

Every contender is ``training.train`` on the same data, network, batch and learning rate; only
the learning-rate schedule ('constant' or 'cosine') and the sampling of t ('uniform' or
'logit_normal') change (``recipe_variants``), so any difference is the recipe's, not the
implementation's. A cosine rate is tied to the number of steps, so each contender runs a ladder
of budgets, each from scratch (with a constant rate and the same seed, a shorter rung is exactly
the start of a longer one), and its time is the training time of the first budget that meets the
target of :mod:`.quality`; the ladder's total is reported too. Rungs alternate between recipes,
evaluation time is never counted, and a recipe whose next rung is projected past ``cap_s`` stops,
recorded at the cap with ``..._reached = 0``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .contenders import fresh_model, package_run
from .quality import QualityJudge, Verdict


def recipe_variants(shipped: dict) -> dict:
    """{'<schedule>_<time_sampling>': train keyword arguments} at the batch and lr of ``shipped``.

    'constant_uniform' is the chapter's recipe; the shipped checkpoints use 'cosine_logit_normal'.
    """
    return {f"{schedule}_{times}": {"batch_size": shipped["batch_size"], "lr": shipped["lr"],
                                    "schedule": schedule, "time_sampling": times}
            for schedule in ("constant", "cosine") for times in ("uniform", "logit_normal")}


@dataclass
class Race:
    """One recipe's progress: the seconds and steps of its last rung, their total, its verdict."""

    seconds: float = 0.0
    steps: int = 0
    ladder_seconds: float = 0.0
    verdict: Verdict | None = None
    done: bool = False
    model: object = None


def time_to_quality(judge: QualityJudge, data, recipes: dict, cap_s: float = 60.0,
                    ladder=(2000, 4000, 8000, 16000), seed: int = 0, log=print):
    """Train every recipe of ``recipes`` {name: train kwargs} up the ``ladder`` to the quality target.

    Returns:
        (metrics dict, {name: (last model trained, its steps)})
    """
    races = {name: Race() for name in recipes}
    for index, n_steps in enumerate(ladder):
        for name, recipe in recipes.items():
            race = races[name]
            if race.done:
                continue
            race.model = fresh_model(seed)
            race.seconds, race.steps = package_run(race.model, data, n_steps, seed=seed, **recipe), n_steps
            race.ladder_seconds += race.seconds
            race.verdict = judge.judge(race.model)
            race.done = race.verdict.passed or race.seconds >= cap_s
            log(f"  {name:22s}{n_steps:6d} steps {race.seconds:7.1f} s  {_describe(race.verdict)}")
            if not race.done and index + 1 < len(ladder) and ladder[index + 1] * race.seconds / n_steps > cap_s:
                race.done = True
                log(f"  {name:22s}next budget would exceed the {cap_s:.0f} s cap: stopped")
    metrics = {}
    for name, race in races.items():
        reached = bool(race.verdict and race.verdict.passed)
        metrics[f"time_to_quality_s_{name}"] = race.seconds if reached else max(cap_s, race.seconds)
        metrics[f"time_to_quality_{name}_reached"] = int(reached)
        metrics[f"time_to_quality_{name}_steps"] = race.steps
        metrics[f"time_to_quality_{name}_ladder_s"] = race.ladder_seconds
        metrics[f"time_to_quality_{name}_off_mode"] = race.verdict.off_mode
        if race.verdict.w2 == race.verdict.w2:
            metrics[f"time_to_quality_{name}_w2"] = race.verdict.w2
    return metrics, {name: (race.model, race.steps) for name, race in races.items()}


def _describe(verdict: Verdict) -> str:
    w2 = "skipped" if verdict.w2 != verdict.w2 else f"{verdict.w2:.3f}"
    return f"off-mode {100 * verdict.off_mode:5.1f}%  W2 {w2}{'  MET' if verdict.passed else ''}"
