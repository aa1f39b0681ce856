"""Time to quality: training seconds until a model meets the target of :mod:`.quality`.

The package trains with ``training.train``'s default recipe, whose cosine learning rate is
tied to the number of steps, so it cannot be stopped half way: it runs a ladder of budgets
(each from scratch, skipping budgets projected to exceed the cap) and its time is the
training time of the first budget that meets the target; the ladder's total is reported too. The peers train with a constant rate, as in their tutorials, and are checked every
``check_every`` steps. Turns alternate between contenders; evaluation time is never counted.
A contender that has not met the target within ``cap_s`` training seconds is recorded at
the cap with ``..._reached = 0``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .contenders import FlowMatchingLoop, TorchCFMLoop, fresh_model, package_run
from .quality import QualityJudge, Verdict

PEERS = {"torchcfm": TorchCFMLoop, "flow_matching": FlowMatchingLoop}
# Steps between checks: a few seconds of training for each peer (batches of 256 and 4096).
CHECK_EVERY = {"torchcfm": 250, "flow_matching": 50}


@dataclass
class Race:
    """Progress of one contender: training seconds and steps so far, and its last verdict."""

    name: str
    seconds: float = 0.0
    steps: int = 0
    verdict: Verdict | None = None
    done: bool = False
    history: list = field(default_factory=list)   # (steps, seconds, w2, off_mode)

    def record(self, verdict: Verdict, cap_s: float) -> None:
        self.verdict = verdict
        self.history.append((self.steps, self.seconds, verdict.w2, verdict.off_mode))
        self.done = verdict.passed or self.seconds >= cap_s


def _peer_turn(race: Race, loop, judge: QualityJudge, check_every: int, cap_s: float, until_s: float) -> None:
    """Train a peer in chunks of ``check_every`` steps, judging after each, until its clock
    passes ``until_s`` or it is done."""
    while not race.done and race.seconds < until_s:
        race.seconds += loop.run(check_every)
        race.steps += check_every
        race.record(judge.judge(loop.model), cap_s)


def time_to_quality(judge: QualityJudge, data, cap_s: float = 90.0, ladder=(2000, 4000, 8000, 16000),
                    recipe: dict | None = None, peers=tuple(PEERS), seed: int = 0, check_every=None,
                    log=print):
    """Race the package against the peers to the quality target.

    Args:
        judge: the quality judge. data: (N, 2) training points shared by every contender.
        cap_s: training seconds after which a contender gives up.
        ladder: the package's step budgets, tried in order.
        recipe: keyword arguments for ``training.train`` (default: its defaults).
        peers: names from PEERS to race (missing libraries are skipped by the caller).
        check_every: {peer: steps between checks} (default CHECK_EVERY).

    Returns:
        (metrics dict, the package's final model, the package's step budget used)
    """
    recipe = dict(recipe or {})
    check_every = {**CHECK_EVERY, **(check_every or {})}
    package = Race("package")
    loops = {name: PEERS[name](fresh_model(seed), data, seed=seed) for name in peers}
    races = {name: Race(name) for name in peers}
    package_model, package_steps, package_clock = None, None, 0.0
    for index, n_steps in enumerate(ladder):
        model = fresh_model(seed)
        seconds = package_run(model, data, n_steps, seed=seed, **recipe)
        package_clock += seconds
        package.seconds, package.steps = seconds, n_steps
        package.record(judge.judge(model), cap_s)
        package_model, package_steps = model, n_steps
        log(f"  package    {n_steps:6d} steps {seconds:7.1f} s  {_describe(package.verdict)}")
        for name, loop in loops.items():          # let each peer catch up with the package's clock
            _peer_turn(races[name], loop, judge, check_every[name], cap_s, package_clock)
            log(f"  {name:13s}{races[name].steps:6d} steps {races[name].seconds:7.1f} s  "
                f"{_describe(races[name].verdict)}")
        if package.done:
            break
        if index + 1 < len(ladder) and ladder[index + 1] * seconds / n_steps > cap_s:
            package.done = True           # the next budget would take longer than the cap
            log(f"  package    next budget would exceed the {cap_s:.0f} s cap: stopped")
            break
    while not all(race.done for race in races.values()):      # peers still racing: alternate
        for name, loop in loops.items():
            race = races[name]
            _peer_turn(race, loop, judge, check_every[name], cap_s, race.seconds + 1e-9)
        log("  " + "  ".join(f"{name} {race.steps} steps {race.seconds:.1f} s {_describe(race.verdict)}"
                             for name, race in races.items()))
    metrics = {}
    for race in [package, *races.values()]:
        reached = bool(race.verdict and race.verdict.passed)
        metrics[f"time_to_quality_s_{race.name}"] = race.seconds if reached else max(cap_s, race.seconds)
        metrics[f"time_to_quality_{race.name}_reached"] = int(reached)
        metrics[f"time_to_quality_{race.name}_steps"] = race.steps
        if race.verdict is not None:
            metrics[f"time_to_quality_{race.name}_off_mode"] = race.verdict.off_mode
            if race.verdict.w2 == race.verdict.w2:
                metrics[f"time_to_quality_{race.name}_w2"] = race.verdict.w2
    metrics["time_to_quality_package_ladder_s"] = package_clock
    return metrics, package_model, package_steps


def _describe(verdict: Verdict | None) -> str:
    if verdict is None:
        return "-"
    w2 = "skipped" if verdict.w2 != verdict.w2 else f"{verdict.w2:.3f}"
    return f"off-mode {100 * verdict.off_mode:5.1f}%  W2 {w2}{'  MET' if verdict.passed else ''}"
