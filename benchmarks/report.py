"""Render the README's benchmark section (markdown) from benchmarks/results.json.

    python -m benchmarks.report [results.json]  > section.md

The date and machine come from machine.json, written beside results.json by the run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .run import RESULTS

SOLVERS = ("euler", "midpoint", "heun", "rk4", "dopri5")
RECIPES = {
    "package": "training.train defaults (AdamW, cosine schedule), budget ladder",
    "torchcfm": "ConditionalFlowMatcher(sigma=0), Adam 1e-3, batch 256",
    "flow_matching": "AffineProbPath(CondOTScheduler()), Adam 1e-3, batch 4096",
}


def ot_batch_note(results: dict) -> str:
    """How the OT model's batch differs from the recipe's, if it does."""
    batch = results.get("nfe_model_batch_size_ot")
    if batch is None:
        return ""
    return (f" (the ot model at batch {int(batch)}, trained in {results['nfe_model_train_seconds_ot']:.0f} s: "
            f"exact OT's cost grows steeply with the batch)")


def package_recipe_text(results: dict) -> str | None:
    """'batch_size=512, lr=0.002' for the settings the package trained with, or None (defaults)."""
    keys = sorted(key for key in results if key.startswith("package_recipe_"))
    return ", ".join(f"{key[len('package_recipe_'):]}={results[key]:g}" for key in keys) or None


def _mark(flag) -> str:
    return "yes" if flag else "**no**"


def _seconds(results: dict, name: str) -> str:
    value = results[f"time_to_quality_s_{name}"]
    if results.get(f"time_to_quality_{name}_reached"):
        return f"{value:.0f} s"
    return f"not within {value:.0f} s"


def markdown(results: dict, machine: dict) -> str:
    """The benchmark section as markdown text."""
    lines = [
        f"Measured {machine.get('date', '?')} on {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores, "
        f"{int(results.get('torch_threads', 0))} torch thread{'' if results.get('torch_threads') == 1 else 's'}, no GPU), torch {machine.get('torch', '?')}, "
        f"TorchCFM {machine.get('torchcfm', '?')}, flow_matching {machine.get('flow_matching', '?')}; "
        f"the run took {results.get('benchmark_seconds', float('nan')) / 60:.1f} min.",
        *(["Training was timed in CPU seconds of the benchmark process (`--clock cpu`, one torch thread): "
           "the machine was shared and busy, and wall time would have counted the waits."]
          if results.get("cpu_clock") else []),
        *([f"The package trained with {package_recipe_text(results)} instead of `train`'s defaults."]
          if package_recipe_text(results) else []),
        "",
        f"Quality target: at most 2.5% of samples off every mode and W2 to fresh data at most 1.5x the "
        f"data-to-data floor ({results['w2_floor']:.3f} at {int(results.get('quality_samples', 4000))} "
        f"samples, so W2 <= {results['w2_target']:.3f}), sampled with 100 Euler steps.",
        "",
        "| Claim | Measured | Target | Met |",
        "|---|---|---|---|",
        f"| training speed, batch 1000 | package {results['train_steps_per_s_package']:.0f} steps/s vs the chapter's "
        f"DataLoader loop {results['train_steps_per_s_chapter_loop']:.0f} steps/s "
        f"({results['train_speedup_vs_chapter_loop']:.2f}x) | >= 2x | "
        f"{_mark(results['target_train_speedup_2x_met'])} |",
    ]
    if "train_speedup_vs_chapter_loop_batch128" in results:
        lines.append(f"| training speed, batch 128 (the chapter's conditional loops) | package "
                     f"{results['train_steps_per_s_package_batch128']:.0f} vs chapter loop "
                     f"{results['train_steps_per_s_chapter_loop_batch128']:.0f} steps/s "
                     f"({results['train_speedup_vs_chapter_loop_batch128']:.2f}x) | - | - |")
    peers = [name for name in ("torchcfm", "flow_matching") if f"time_to_quality_s_{name}" in results]
    lines.append(
        f"| time to the quality target | package {_seconds(results, 'package')}; "
        + "; ".join(f"{name} {_seconds(results, name)}" for name in peers)
        + f" | faster than both peers | {_mark(results['target_time_to_quality_beats_peers_met'])} |")
    best = results.get("nfe_to_quality_best")
    lines.append(f"| fewest network evaluations for the W2 target | "
                 f"{'%d' % best if best is not None else 'not reached'} | <= 2 | "
                 f"{_mark(results['target_nfe_at_most_2_met'])} |")
    if "widget_callback_ms_median" in results:
        lines.append(f"| sample-redraw widget callback (100 Euler steps) | "
                     f"{results['widget_callback_ms_median']:.0f} ms (median) | - | - |")
    lines += ["", "| Contender | Recipe | Seconds to target | Steps | W2 | Off-mode |", "|---|---|---|---|---|---|"]
    for name in ("package", *peers):
        w2 = results.get(f"time_to_quality_{name}_w2")
        off = results.get(f"time_to_quality_{name}_off_mode")
        recipe = RECIPES[name]
        if name == "package" and package_recipe_text(results):
            recipe = recipe.replace("defaults", "with " + package_recipe_text(results))
        lines.append(f"| {name} | {recipe} | {_seconds(results, name)} | "
                     f"{int(results[f'time_to_quality_{name}_steps'])} | "
                     f"{'-' if w2 is None else f'{w2:.3f}'} | {'-' if off is None else f'{100 * off:.1f}%'} |")
    couplings = [c for c in ("independent", "ot", "reflow")
                 if any(f"nfe_to_quality_{s}_{c}" in results for s in SOLVERS)]
    if couplings:
        lines += ["", "Fewest network evaluations (NFE) reaching W2 <= 1.5x floor, by solver and coupling "
                      "(\"> n\": not reached within n). independent and ot: `train(coupling=...)` with the "
                      "package's recipe" + ot_batch_note(results) + "; reflow: the independent model reflowed once "
                      "(`reflow.reflow_pairs` + `train_on_pairs`). class_ot pairs within classes and "
                      "only applies to conditional models, so it has no row here.", "",
                  "| Solver | " + " | ".join(couplings) + " |", "|---" * (len(couplings) + 1) + "|"]
        for solver in SOLVERS:
            cells = []
            for coupling in couplings:
                key = f"nfe_to_quality_{solver}_{coupling}"
                if key not in results:
                    cells.append("-")
                elif results.get(f"{key}_reached"):
                    cells.append(f"{int(results[key])}")
                else:
                    cells.append(f"> {int(results[key])}")
            lines.append(f"| {solver} | " + " | ".join(cells) + " |")
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
