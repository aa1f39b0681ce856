"""Run every benchmark and write benchmarks/results.json, figures/benchmarks.png and a table.

    python -m benchmarks.run            # the full run behind `make bench` (about 10-15 min, 2 cores)
    python -m benchmarks.run --quick    # a smoke run on tiny budgets (under a minute), written
                                        # to a temporary folder unless --out is given

results.json is one flat object, metric name -> number; strings about the machine go to
machine.json next to it. Flags ``..._reached`` and ``target_..._met`` are 1 or 0. The full run
also grades 30 copies of the exercise notebook with ``tools.grade`` (benchmarks/grading.py, about
5 more minutes; --no-grading skips it).
"""
from __future__ import annotations

import argparse
import json
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
PEER_MODULES = {"torchcfm": "torchcfm.conditional_flow_matching", "flow_matching": "flow_matching.path"}


@dataclass
class Budget:
    """How much work each benchmark may do."""

    name: str = "full"
    judge_samples: int = 4000
    speed_chunk: int = 200
    speed_rounds: int = 3
    speed_batch_sizes: tuple | None = None       # None: speed.BATCH_SIZES
    cap_s: float = 60.0
    ladder: tuple = (2000, 4000, 8000, 16000)
    step_ladder: tuple | None = None
    tolerance_ladder: tuple | None = None
    reflow_steps: int = 2000
    reflow_pairs: int = DATA_SIZE
    widget_repeats: int = 7
    ot_chunk: int = 100                          # the per-step cost benchmarks (OT's and MeanFlow's)
    ot_rounds: int = 3                           # run chunks of ot_chunk steps, ot_rounds times
    notebooks: bool = True
    grading: bool = False        # 30 notebooks graded (benchmarks/grading.py); only the full run does it


FULL = Budget(grading=True)
QUICK = Budget(name="quick", judge_samples=300, speed_chunk=5, speed_rounds=1, cap_s=2.0, ladder=(20,),
               step_ladder=(1, 4, 16), tolerance_ladder=(1e-1, 1e-3), reflow_steps=10, reflow_pairs=200,
               widget_repeats=1, ot_chunk=2, ot_rounds=1, notebooks=False)


def available_peers() -> tuple[str, ...]:
    """The peer libraries that import here (``make bench`` installs both)."""
    names = []
    for name, module in PEER_MODULES.items():
        try:
            __import__(module)
            names.append(name)
        except ImportError:
            print(f"  {name} is not installed: skipped (pip install --no-deps torchcfm flow-matching)")
    return tuple(names)


def run_all(budget: Budget = FULL, shipped: dict | None = None, seed: int = 0, log=print) -> dict:
    """Run every benchmark within ``budget``; returns the flat results dict (metric -> number).

    ``shipped``: the shipped checkpoints' recipe (``recipes.recipe("fm", "gaussian")``), whose batch
    and learning rate the recipe comparison keeps and whose schedule and time sampling it varies.
    """
    import copy

    import torch

    from gen_models_utilities import create_ring_gaussians, reflow_pairs, train, train_on_pairs
    from gen_models_utilities.pretrained.recipes import recipe as shipped_recipe

    from .clock import clock_name, now
    from .contenders import fresh_model
    from .nfe import STEP_LADDER, TOLERANCE_LADDER, nfe_to_quality
    from .quality import QualityJudge
    from .speed import BATCH_SIZES, training_speed
    from .time_to_quality import recipe_variants, time_to_quality
    from .widget import learned_view_ms

    shipped = shipped or shipped_recipe("fm", "gaussian")
    started = time.perf_counter()
    results: dict[str, float] = {"torch_threads": torch.get_num_threads(), "quick": int(budget.name == "quick"),
                                 "cpu_clock": int(clock_name() == "cpu")}

    log("Implementation speed at one recipe (same network, batch, AdamW lr 1e-3, constant rate, t ~ U[0, 1])")
    results.update(training_speed(budget.speed_chunk, budget.speed_rounds, available_peers(),
                                  budget.speed_batch_sizes or BATCH_SIZES, seed=seed))
    for key in sorted(key for key in results if key.startswith("speed_steps_per_s_")):
        log(f"  {key[len('speed_steps_per_s_'):]:28s}{results[key]:7.1f} steps/s")

    judge = QualityJudge(budget.judge_samples, seed=2026 + seed)
    results.update(w2_floor=judge.floor, w2_target=judge.w2_target, quality_samples=budget.judge_samples)
    log(f"W2 floor at {budget.judge_samples} samples: {judge.floor:.3f} (target {judge.w2_target:.3f})")

    log("Time to quality by recipe, all trained by training.train (Gaussian base, ring of 8 Gaussians)")
    data = create_ring_gaussians(DATA_SIZE, seed=seed)[0]
    recipes = recipe_variants(shipped)
    race, models = time_to_quality(judge, data, recipes, cap_s=budget.cap_s, ladder=budget.ladder, seed=seed,
                                   log=log)
    results.update(race)
    shipped_name = f"{shipped['schedule']}_{shipped['time_sampling']}"
    package_model, package_steps = models[shipped_name]

    log(f"NFE to quality (models trained {package_steps} steps with the shipped recipe)")
    ot_model = fresh_model(seed)
    start = now()
    train(ot_model, data, n_steps=package_steps, coupling="ot", seed=seed, progress=False,
          **{**recipes[shipped_name], "batch_size": OT_BATCH_SIZE})
    results["nfe_model_train_seconds_ot"] = now() - start
    results["nfe_model_batch_size_ot"] = OT_BATCH_SIZE
    start = now()
    reflowed = copy.deepcopy(package_model)
    train_on_pairs(reflowed, reflow_pairs(package_model, budget.reflow_pairs, seed=seed + 1),
                   n_steps=budget.reflow_steps, seed=seed + 2)
    results["nfe_model_train_seconds_reflow"] = now() - start
    models = {"independent": package_model, "ot": ot_model, "reflow": reflowed}
    results.update(nfe_to_quality(judge, models, step_ladder=budget.step_ladder or STEP_LADDER,
                                  tolerance_ladder=budget.tolerance_ladder or TOLERANCE_LADDER, log=log))

    from .ot_cost import ot_step_cost

    log(f"Minibatch OT's cost per training step (the shipped recipe, batch {shipped['batch_size']}; "
        "only the coupling differs)")
    results.update(ot_step_cost(shipped, budget.ot_chunk, budget.ot_rounds, seed=seed))
    for key in sorted(key for key in results if key.startswith("ot_cost_ratio_")):
        log(f"  {key[len('ot_cost_ratio_'):]:28s}{results[key]:6.2f}x an independent step")

    from .meanflow_cost import meanflow_step_cost

    meanflow_recipe = shipped_recipe("meanflow", "gaussian")
    log(f"MeanFlow's cost per training step (the shipped MeanFlow recipe, batch {meanflow_recipe['batch_size']}; "
        "the same network trained by flow matching for comparison)")
    results.update(meanflow_step_cost(meanflow_recipe, budget.ot_chunk, budget.ot_rounds, seed=seed))
    for key in sorted(key for key in results if key.startswith("meanflow_cost_ratio_")):
        log(f"  {key[len('meanflow_cost_ratio_'):]:28s}{results[key]:6.2f}x a flow matching step")

    log("One learned view computed in the kernel (the sample explorer's 100 paths, 100 Euler steps)")
    results["widget_view_ms_median"] = learned_view_ms(package_model, repeats=budget.widget_repeats)
    log(f"  {results['widget_view_ms_median']:.0f} ms")
    if budget.name != "quick":
        from .widget import browser_frame_times

        log("Explorers in Chromium, input event to new frame (ms): JupyterLab, the static site, today's PNG ones")
        for name, figures in (browser_frame_times(log=log) or {}).items():
            results.update({f"widget_frame_ms_{stat}_{name}": figures[stat] for stat in ("median", "p95")})

    if budget.notebooks:
        from .notebooks import notebook_seconds

        log("Notebooks (fresh kernel each, nbclient)")
        results.update(notebook_seconds(log=log))

    if budget.grading:
        from .grading import grading_seconds

        log("Grading a class (tools.grade: 30 copies of the solution notebook, two at a time)")
        results.update(grading_seconds(log=log))

    results.update(target_flags(results))
    results.update({f"shipped_recipe_{key}": value for key, value in shipped.items()
                    if key in ("batch_size", "lr")})
    results["benchmark_seconds"] = time.perf_counter() - started
    results["measured_unix_time"] = round(time.time())
    return results


def target_flags(results: dict) -> dict:
    """The issue's targets as 1/0 flags: ``train`` at least 2x the chapter's loop at batch 1000,
    and faster per step than both peers at every batch measured; NFE <= 2 for the W2 target."""
    ratios = {key: value for key, value in results.items() if key.startswith("speed_ratio_package_vs_")}
    chapter = results.get("speed_ratio_package_vs_chapter_loop_batch1000", 0.0)
    versus_peers = [value for key, value in ratios.items() if "chapter_loop" not in key]
    peers_measured = {key.split("_vs_")[1].rsplit("_batch", 1)[0] for key in ratios} >= set(PEER_MODULES)
    flags = {"target_train_2x_chapter_loop_met": int(chapter >= 2.0),
             "target_train_faster_than_peers_met": int(peers_measured and all(v > 1.0 for v in versus_peers))}
    reached = [value for key, value in results.items()
               if key.startswith("nfe_to_quality_") and results.get(f"{key}_reached") == 1]
    if reached:
        flags["nfe_to_quality_best"] = min(reached)
    flags["target_nfe_at_most_2_met"] = int(bool(reached) and min(reached) <= 2)
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
    parser.add_argument("--no-grading", action="store_true", help="skip grading 30 notebooks")
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
    if args.no_grading:
        budget = Budget(**{**budget.__dict__, "grading": False})
    folder = Path(tempfile.gettempdir()) / "gen_models_bench_quick"
    out = args.out or (folder / "results.json" if args.quick else RESULTS)
    figure = args.figure or (folder / "benchmarks.png" if args.quick else FIGURE)

    results = run_all(budget)
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
