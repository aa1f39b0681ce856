"""Render the README's benchmark section (markdown) from benchmarks/results.json.

    python -m benchmarks.report [results.json]  > section.md

The date and machine come from machine.json, written beside results.json by the run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .run import RESULTS

CONTENDERS = {"package": "`training.train`", "chapter_loop": "the chapter's DataLoader loop",
              "torchcfm": "TorchCFM's tutorial loop", "flow_matching": "flow_matching's tutorial loop"}


def _mark(flag) -> str:
    return "yes" if flag else "**no**"


def _seconds(results: dict, name: str) -> str:
    value = results[f"time_to_quality_s_{name}"]
    if results.get(f"time_to_quality_{name}_reached"):
        return f"{value:.0f} s"
    return f"not within {value:.0f} s"


def _batches(results: dict) -> list[int]:
    return sorted({int(key.rsplit("_batch", 1)[1]) for key in results if key.startswith("speed_steps_per_s_")})


def speed_lines(results: dict) -> list[str]:
    """Question 1: implementation speed at one recipe, a row per batch size."""
    names = [name for name in CONTENDERS if any(key.startswith(f"speed_steps_per_s_{name}_batch") for key in results)]
    lines = ["| Batch | " + " | ".join(CONTENDERS[name] for name in names) + " |", "|---" * (len(names) + 1) + "|"]
    for batch in _batches(results):
        cells = []
        for name in names:
            speed = results.get(f"speed_steps_per_s_{name}_batch{batch}")
            ratio = results.get(f"speed_ratio_package_vs_{name}_batch{batch}")
            cells.append("-" if speed is None else f"{speed:.0f}" + (f" (train {ratio:.2f}x)" if ratio else ""))
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return lines


def recipe_lines(results: dict) -> list[str]:
    """Question 2: time to quality by recipe, all trained by ``training.train``."""
    from .time_to_quality import recipe_variants

    names = [name for name in recipe_variants({"batch_size": 0, "lr": 0}) if f"time_to_quality_s_{name}" in results]
    notes = {"constant_uniform": " (the chapter's)", "cosine_logit_normal": " (the shipped checkpoints')"}
    lines = ["| Schedule, times | Seconds to target | Steps | Whole ladder | W2 | Off-mode |",
             "|---|---|---|---|---|---|"]
    for name in names:
        w2 = results.get(f"time_to_quality_{name}_w2")
        schedule, times = name.split("_", 1)
        lines.append(f"| {schedule}, {times.replace('_', '-')}{notes.get(name, '')} | {_seconds(results, name)} | "
                     f"{int(results[f'time_to_quality_{name}_steps'])} | "
                     f"{results[f'time_to_quality_{name}_ladder_s']:.0f} s | {'-' if w2 is None else f'{w2:.3f}'} | "
                     f"{100 * results[f'time_to_quality_{name}_off_mode']:.1f}% |")
    return lines


def nfe_lines(results: dict) -> list[str]:
    """Fewest NFE reaching the W2 target, a row per solver found in the results."""
    from gen_models_utilities.solvers import solver_names

    couplings = [c for c in ("independent", "ot", "reflow")
                 if any(f"nfe_to_quality_{s}_{c}" in results for s in solver_names())]
    solvers = [s for s in solver_names() if any(f"nfe_to_quality_{s}_{c}" in results for c in couplings)]
    lines = ["| Solver | " + " | ".join(couplings) + " |", "|---" * (len(couplings) + 1) + "|"]
    for solver in solvers:
        cells = []
        for coupling in couplings:
            key = f"nfe_to_quality_{solver}_{coupling}"
            cells.append("-" if key not in results else
                         f"{'' if results.get(f'{key}_reached') else '> '}{int(results[key])}")
        lines.append(f"| {solver} | " + " | ".join(cells) + " |")
    return lines


def ot_cost_lines(results: dict) -> list[str]:
    """Minibatch OT's cost per training step, a row per OT coupling found in the results."""
    keys = sorted((key for key in results if key.startswith("ot_cost_ratio_")),
                  key=lambda key: -results[key])
    lines = ["| Coupling | ms per step | x an independent step |", "|---|---|---|"]
    for key in keys:
        name, batch = key[len("ot_cost_ratio_"):].rsplit("_batch", 1)
        independent = results[f"ot_cost_ms_per_step_independent_batch{batch}"]
        lines.append(f"| {name} (batch {batch}) | {results[f'ot_cost_ms_per_step_{name}_batch{batch}']:.1f} "
                     f"(independent {independent:.1f}) | {results[key]:.2f}x |")
    return lines


def meanflow_cost_lines(results: dict) -> list[str]:
    """MeanFlow's cost per training step against flow matching's, a row per batch found in the results."""
    lines = ["| Batch | flow matching, ms per step | MeanFlow, ms per step | x a flow matching step |",
             "|---|---|---|---|"]
    for key in sorted(key for key in results if key.startswith("meanflow_cost_ratio_batch")):
        batch = key.rsplit("_batch", 1)[1]
        lines.append(f"| {batch} | {results[f'meanflow_cost_ms_per_step_flow_matching_batch{batch}']:.1f} | "
                     f"{results[f'meanflow_cost_ms_per_step_meanflow_batch{batch}']:.1f} | {results[key]:.2f}x |")
    return lines


def grading_lines(results: dict) -> list[str]:
    """The claims table's row for grading a class (benchmarks/grading.py), if it was measured."""
    if "grading_seconds_30" not in results:
        return []
    cpu = results.get("grading_cpu_seconds_per_core")
    return [f"| grading 30 submissions, two at a time (`make grade`) | {results['grading_seconds_30']:.0f} s "
            f"(load average {results['grading_load_before']:.1f} before, {results['grading_load_during_mean']:.1f} "
            f"during, on {int(results['grading_cores'])} cores; the two kernels add about 2)"
            + (f"; {cpu:.0f} CPU s per core" if cpu is not None else "")
            + f" | <= 300 s | {_mark(results['target_grading_5_min_met'])} |"]


def frame_lines(results: dict) -> list[str]:
    """The explorers side by side: input event to new frame in JupyterLab, on the static site, and today's
    PNG explorers (benchmarks/widget.py), median and p95 in ms; empty when not measured."""
    prefix = "widget_frame_ms_median_"
    names = [key[len(prefix):] for key in results if key.startswith(prefix)]      # where_name: lab_samples, ...
    if not names:
        return []

    def cell(where: str, name: str) -> str:
        key = f"widget_frame_ms_median_{where}_{name}"
        return f"{results[key]:.0f} / {results[f'widget_frame_ms_p95_{where}_{name}']:.0f}" if key in results else "-"

    lines = ["", "**The explorers in Chromium**, input event to new frame, ms (median / p95): drawn by the browser "
                 "in JupyterLab and on the static book site (no kernel), next to today's PNG explorers drawn by "
                 "Python in the same JupyterLab.", "",
             "| Explorer | JupyterLab | static site | today's PNG explorer |", "|---|---|---|---|"]
    explorers = sorted({name.split("_", 1)[1] for name in names})
    lines += [f"| {name} | {cell('lab', name)} | {cell('site', name)} | {cell('png', name)} |" for name in explorers]
    return lines


def markdown(results: dict, machine: dict) -> str:
    """The benchmark section as markdown text."""
    threads = int(results.get("torch_threads", 0))
    batches = _batches(results)
    peer_ratios = [f"vs {name} " + ", ".join(f"{results[key]:.2f}x ({batch})" for batch in batches
                                              if (key := f"speed_ratio_package_vs_{name}_batch{batch}") in results)
                   for name in ("torchcfm", "flow_matching")
                   if any(f"speed_ratio_package_vs_{name}_batch{batch}" in results for batch in batches)]
    lines = [
        f"Measured {machine.get('date', '?')} on {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores, "
        f"{threads} torch thread{'' if threads == 1 else 's'}, no GPU), torch {machine.get('torch', '?')}, "
        f"TorchCFM {machine.get('torchcfm', '?')}, flow_matching {machine.get('flow_matching', '?')}; "
        f"the run took {results.get('benchmark_seconds', float('nan')) / 60:.1f} min.",
        *(["Training was timed in CPU seconds of the benchmark process (`--clock cpu`): the machine was "
           "shared and busy, and wall time would have counted the waits."] if results.get("cpu_clock") else []),
        "",
        "| Claim | Measured | Target | Met |",
        "|---|---|---|---|",
        f"| implementation speed, batch 1000 | `train` "
        f"{results.get('speed_ratio_package_vs_chapter_loop_batch1000', float('nan')):.2f}x the chapter's "
        f"DataLoader loop | >= 2x | {_mark(results['target_train_2x_chapter_loop_met'])} |",
        f"| implementation speed, batches {' and '.join(map(str, batches))} | `train` "
        f"{'; '.join(peer_ratios) or 'not compared with the peers'} | faster than both peers' loops | "
        f"{_mark(results['target_train_faster_than_peers_met'])} |",
    ]
    best = results.get("nfe_to_quality_best")
    lines.append(f"| fewest network evaluations for the W2 target | "
                 f"{'%d' % best if best is not None else 'not reached'} | <= 2 | "
                 f"{_mark(results['target_nfe_at_most_2_met'])} |")
    ot_ratios = {key[len("ot_cost_ratio_"):]: value for key, value in results.items()
                 if key.startswith("ot_cost_ratio_")}
    if ot_ratios:
        cheapest = min(ot_ratios, key=ot_ratios.get)
        lines.append(f"| minibatch OT's cost per training step | {cheapest.replace('_batch', ', batch ')}: "
                     f"{ot_ratios[cheapest]:.2f}x an independent step (whole batch: "
                     f"{max(ot_ratios.values()):.2f}x) | <= 2x | {_mark(ot_ratios[cheapest] <= 2.0)} |")
    frames = [key[len("widget_frame_ms_median_"):] for key in results if key.startswith("widget_frame_ms_median_")]
    for where in ("lab", "site"):
        for name in sorted(key.split("_", 1)[1] for key in frames if key.startswith(f"{where}_")):
            median, p95 = (results[f"widget_frame_ms_{stat}_{where}_{name}"] for stat in ("median", "p95"))
            place = "JupyterLab" if where == "lab" else "the static site (no kernel)"
            lines.append(f"| {name} explorer in {place}, input event to new frame | {median:.0f} ms median, "
                         f"{p95:.0f} ms p95 | <= 33 ms median | {_mark(median <= 33)} |")
    lines += grading_lines(results)
    if "widget_view_ms_median" in results:
        lines.append(f"| one learned view computed in the kernel (100 paths, 100 Euler steps) | "
                     f"{results['widget_view_ms_median']:.0f} ms (median) | - | - |")
    lines += ["", "**1. Implementation speed at one recipe** (steps per second). Every loop trains the same "
                  "`VelocityField` from the same weights with the same batch, AdamW at lr 1e-3, a constant "
                  "rate and t ~ U[0, 1]; only the implementation differs.", "", *speed_lines(results)]
    lines += ["", f"**2. What the recipe buys, implementation fixed.** Every row is `training.train` at batch "
                  f"{int(results.get('shipped_recipe_batch_size', 0))} and lr {results.get('shipped_recipe_lr', 0):g} "
                  f"on 8000 points; only the learning-rate schedule and the sampling of t change. Quality target: "
                  f"at most 2.5% of samples off every mode and W2 to fresh data at most 1.5x the data-to-data "
                  f"floor ({results['w2_floor']:.3f} at {int(results.get('quality_samples', 4000))} samples, so "
                  f"W2 <= {results['w2_target']:.3f}), sampled with 100 Euler steps.", "", *recipe_lines(results)]
    lines += ["", "Fewest network evaluations (NFE) reaching W2 <= 1.5x floor, by solver and coupling "
                  "(\"> n\": not reached within n). independent: the shipped recipe's model above; ot: "
                  f"`train(coupling=\"ot\")` with that recipe at batch "
                  f"{int(results.get('nfe_model_batch_size_ot', 0))} "
                  "(exact OT's cost grows steeply with the batch); reflow: the independent model reflowed once "
                  "(`reflow_pairs` + `train_on_pairs`).", "", *nfe_lines(results)]
    if ot_ratios:
        lines += ["", "**Minibatch OT's cost per training step.** `train` with the shipped recipe, the same "
                      "network and weights; only the coupling differs (`ot`: exact OT over the whole batch; "
                      "`ot_blockN`: exact OT inside blocks of N rows). The runs take turns in chunks. A worker "
                      "thread that pairs the next batch while the current step trains would hide the pairing "
                      "only where a core is idle: POT's network simplex releases the GIL, but on the shared "
                      "2-core machine the overlapped run took as long as the two in turn.", "",
                  *ot_cost_lines(results)]
    if any(key.startswith("meanflow_cost_ratio_") for key in results):
        lines += ["", "**MeanFlow's cost per training step.** The same `AverageVelocityField` from the same weights, "
                      "trained with the shipped MeanFlow recipe's batch, learning rate, schedule and times; only the "
                      "loss differs: flow matching's (`train`) or MeanFlow's (`meanflow.train_meanflow`, one "
                      "`torch.func.jvp` a step). The runs take turns in chunks.", "", *meanflow_cost_lines(results)]
    lines += frame_lines(results)
    notebooks = sorted(key for key in results if key.startswith("notebook_seconds_"))
    if notebooks:
        lines += ["", "| Notebook | Seconds from a fresh kernel to the last output |", "|---|---|"]
        lines += [f"| {key[len('notebook_seconds_'):]} | {results[key]:.1f} |" for key in notebooks]
    lines += ["", "![benchmarks](figures/benchmarks.png)"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else RESULTS
    results = json.loads(path.read_text())
    machine_path = path.with_name("machine.json")
    machine = json.loads(machine_path.read_text()) if machine_path.exists() else {}
    sys.stdout.write(markdown(results, machine))


if __name__ == "__main__":
    main()
