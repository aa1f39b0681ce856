"""Run every benchmark and write benchmarks/results.json, figures/benchmarks.png and a table.

    python -m benchmarks.run            # the full run behind `make bench` (about 10-15 min, 2 cores)
    python -m benchmarks.run --quick    # a smoke run on tiny budgets (under a minute), written
                                        # to a temporary folder unless --out is given

results.json is one flat object, metric name -> number; strings about the machine go to
machine.json next to it. Flags ``..._reached`` and ``target_..._met`` are 1 or 0.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results.json"
FIGURE = REPO / "figures" / "benchmarks.png"
DATA_SIZE = 8000        # training points for the quality races (as the shipped recipes use)
OT_BATCH_SIZE = 256     # the OT-coupled model's batch: at the recipe's 512 it took 134 s of the budget


@dataclass
class Budget:
    """How much work each benchmark may do."""

    name: str = "full"
    judge_samples: int = 4000
    speed_chunk: int = 200
    speed_rounds: int = 2
    cap_s: float = 60.0
    ladder: tuple = (2000, 4000, 8000, 16000)
    check_every: dict | None = None
    step_ladder: tuple | None = None
    tolerance_ladder: tuple | None = None
    reflow_steps: int = 2000
    reflow_pairs: int = DATA_SIZE
    widget_repeats: int = 7
    notebooks: bool = True


FULL = Budget()
QUICK = Budget(name="quick", judge_samples=300, speed_chunk=5, speed_rounds=1, cap_s=2.0, ladder=(20,),
               check_every={"torchcfm": 10, "flow_matching": 2}, step_ladder=(1, 4, 16),
               tolerance_ladder=(1e-1, 1e-3), reflow_steps=10, reflow_pairs=200, widget_repeats=1, notebooks=False)


def available_peers() -> tuple[str, ...]:
    """The peer libraries that import here (``make bench`` installs both)."""
    names = []
    for name, module in (("torchcfm", "torchcfm.conditional_flow_matching"), ("flow_matching", "flow_matching.path")):
        try:
            __import__(module)
            names.append(name)
        except ImportError:
            print(f"  {name} is not installed: skipped (pip install --no-deps torchcfm flow-matching)")
    return tuple(names)


def reflow_model(base_model, n_steps: int, n_pairs: int = DATA_SIZE, seed: int = 0):
    """One reflow of ``base_model`` with gen_models_utilities.reflow: (model, seconds) or None
    when that module is not there."""
    try:
        from gen_models_utilities.reflow import reflow_pairs, train_on_pairs
    except ImportError:
        return None
    import copy

    from .clock import now

    start = now()
    pairs = reflow_pairs(base_model, n_pairs, seed=seed + 1)
    model = copy.deepcopy(base_model)
    train_on_pairs(model, pairs, n_steps=n_steps, seed=seed + 2)
    return model, now() - start


def run_all(budget: Budget = FULL, recipe: dict | None = None, seed: int = 0, log=print) -> dict:
    """Run every benchmark within ``budget``; returns the flat results dict (metric -> number)."""
    import torch

    from gen_models_utilities import create_ring_gaussians, train

    from .clock import clock_name, now
    from .contenders import fresh_model
    from .nfe import STEP_LADDER, TOLERANCE_LADDER, nfe_to_quality
    from .quality import QualityJudge
    from .speed import training_speed
    from .time_to_quality import time_to_quality
    from .widget import widget_callback_ms

    started = time.perf_counter()
    results: dict[str, float] = {"torch_threads": torch.get_num_threads(), "quick": int(budget.name == "quick"),
                                 "cpu_clock": int(clock_name() == "cpu")}

    log("Training speed: chapter DataLoader loop vs training.train (batch 1000, alternating)")
    results.update(training_speed(budget.speed_chunk, budget.speed_rounds, seed=seed))
    results["train_speedup_vs_chapter_loop"] = (results["train_steps_per_s_package"]
                                                / results["train_steps_per_s_chapter_loop"])
    log(f"  chapter loop {results['train_steps_per_s_chapter_loop']:.1f} steps/s, "
        f"package {results['train_steps_per_s_package']:.1f} steps/s")
    results.update(training_speed(budget.speed_chunk, budget.speed_rounds, seed=seed, batch_size=128))
    results["train_speedup_vs_chapter_loop_batch128"] = (results["train_steps_per_s_package_batch128"]
                                                         / results["train_steps_per_s_chapter_loop_batch128"])
    log(f"  batch 128 (the chapter's conditional loops): chapter loop "
        f"{results['train_steps_per_s_chapter_loop_batch128']:.1f} steps/s, "
        f"package {results['train_steps_per_s_package_batch128']:.1f} steps/s")

    judge = QualityJudge(budget.judge_samples, seed=2026 + seed)
    results["w2_floor"] = judge.floor
    results["w2_target"] = judge.w2_target
    results["quality_samples"] = budget.judge_samples
    log(f"W2 floor at {budget.judge_samples} samples: {judge.floor:.3f} (target {judge.w2_target:.3f})")

    log("Time to quality (Gaussian base, ring of 8 Gaussians)")
    data = create_ring_gaussians(DATA_SIZE, seed=seed)[0]
    race, package_model, package_steps = time_to_quality(
        judge, data, cap_s=budget.cap_s, ladder=budget.ladder, recipe=recipe, peers=available_peers(),
        seed=seed, check_every=budget.check_every, log=log)
    results.update(race)

    log(f"NFE to quality (models trained {package_steps} steps with the package's recipe)")
    ot_model = fresh_model(seed)
    start = now()
    train(ot_model, data, n_steps=package_steps, coupling="ot", seed=seed, progress=False,
          **{**(recipe or {}), "batch_size": OT_BATCH_SIZE})
    results["nfe_model_train_seconds_ot"] = now() - start
    results["nfe_model_batch_size_ot"] = OT_BATCH_SIZE
    models = {"independent": package_model, "ot": ot_model}
    reflowed = reflow_model(package_model, budget.reflow_steps, budget.reflow_pairs, seed)
    if reflowed is None:
        log("  gen_models_utilities.reflow is missing: no reflow row")
    else:
        models["reflow"], results["nfe_model_train_seconds_reflow"] = reflowed
    results.update(nfe_to_quality(judge, models, step_ladder=budget.step_ladder or STEP_LADDER,
                                  tolerance_ladder=budget.tolerance_ladder or TOLERANCE_LADDER, log=log))

    log("Widget redraw (draw_samples at 100 Euler steps, rendered to PNG)")
    milliseconds = widget_callback_ms(package_model, repeats=budget.widget_repeats)
    if milliseconds is None:
        log("  gen_models_utilities.widgets is missing: widget_callback_ms_median not measured")
    else:
        results["widget_callback_ms_median"] = milliseconds
        log(f"  {milliseconds:.0f} ms")

    if budget.notebooks:
        from .notebooks import notebook_seconds

        log("Notebooks (fresh kernel each, nbclient)")
        results.update(notebook_seconds(log=log))

    results.update(target_flags(results))
    results["benchmark_seconds"] = time.perf_counter() - started
    results["measured_unix_time"] = round(time.time())
    return results


def target_flags(results: dict) -> dict:
    """The issue's targets as 1/0 flags, plus the numbers they are judged on."""
    flags = {"target_train_speedup_2x_met": int(results["train_speedup_vs_chapter_loop"] >= 2.0)}
    package_time = results["time_to_quality_s_package"]
    beaten = [results[f"time_to_quality_s_{peer}"] > package_time
              for peer in ("torchcfm", "flow_matching") if f"time_to_quality_s_{peer}" in results]
    flags["target_time_to_quality_beats_peers_met"] = int(
        bool(results["time_to_quality_package_reached"]) and len(beaten) == 2 and all(beaten))
    reached = [value for key, value in results.items()
               if key.startswith("nfe_to_quality_") and results.get(f"{key}_reached") == 1]
    best = min(reached) if reached else math.inf
    if reached:
        flags["nfe_to_quality_best"] = best
    flags["target_nfe_at_most_2_met"] = int(best <= 2)
    return flags


def machine_info() -> dict:
    """Strings that say where the numbers were measured (kept out of the numeric results)."""
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    for name in ("torchcfm", "flow_matching"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:
            versions[name] = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
            "platform": platform.platform(), **versions}


def print_table(results: dict) -> None:
    """Every metric, one per line, rounded for reading."""
    width = max(map(len, results))
    for key in sorted(results):
        value = results[key]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run, not a measurement")
    parser.add_argument("--out", type=Path, help="results JSON path (default benchmarks/results.json; "
                                                 "--quick: a temporary folder)")
    parser.add_argument("--figure", type=Path, help="figure path (default figures/benchmarks.png)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time training with wall time (default) or this process's CPU time "
                             "(for a busy shared machine; use with --threads 1)")
    parser.add_argument("--no-notebooks", action="store_true", help="skip timing the notebooks")
    parser.add_argument("--lr", type=float, help="learning rate for training.train "
                                                 "(default: the shipped fm_gaussian recipe's)")
    parser.add_argument("--batch-size", type=int, help="batch size for training.train "
                                                       "(default: the shipped fm_gaussian recipe's)")
    args = parser.parse_args(argv)

    os.environ.setdefault("GEN_MODELS_PROGRESS", "0")
    import matplotlib
    import torch

    matplotlib.use("Agg")        # not MPLBACKEND: the notebooks timed here must draw inline
    if args.threads:
        torch.set_num_threads(args.threads)
    from .clock import use_clock

    use_clock(args.clock)
    budget = QUICK if args.quick else FULL
    if args.no_notebooks:
        budget = Budget(**{**budget.__dict__, "notebooks": False})
    from gen_models_utilities.recipes import RECIPES

    # The package trains with the recipe of its shipped checkpoint (all but the step count).
    shipped = RECIPES["fm_gaussian"]
    recipe = {key: shipped[key] for key in ("batch_size", "lr", "schedule", "time_sampling")}
    recipe.update({key: value for key, value in (("lr", args.lr), ("batch_size", args.batch_size)) if value})
    folder = Path(tempfile.gettempdir()) / "gen_models_bench_quick"
    out = args.out or (folder / "results.json" if args.quick else RESULTS)
    figure = args.figure or (folder / "benchmarks.png" if args.quick else FIGURE)

    results = run_all(budget, recipe=recipe)
    results.update({f"package_recipe_{key}": value for key, value in recipe.items()
                    if isinstance(value, (int, float))})
    write_results(results, out)
    from .plot import plot_results

    plot_results(results, figure)
    print()
    print_table(results)
    print(f"\nwrote {out}, {out.with_name('machine.json')} and {figure}")


def write_results(results: dict, out: Path) -> None:
    """results.json (numbers only) and machine.json beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    clean = {key: (int(value) if isinstance(value, bool) else value) for key, value in results.items()}
    out.write_text(json.dumps(clean, indent=1, sort_keys=True) + "\n")
    out.with_name("machine.json").write_text(json.dumps(machine_info(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
