"""The benchmark figure: four panels drawn from the flat results dict."""
from __future__ import annotations

from pathlib import Path


def _bars(ax, labels, values, title, ylabel, capped=(), log=False):
    colors = ["tab:red" if label.startswith(("package", "cosine\nlogit")) else "tab:gray" for label in labels]
    bars = ax.bar(range(len(values)), values, color=colors)
    for bar, is_capped in zip(bars, capped or [False] * len(values)):
        if is_capped:
            bar.set_hatch("//")
            bar.set_alpha(0.5)
    ax.set_xticks(range(len(values)), labels, rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    for i, value in enumerate(values):
        ax.annotate(f"{value:.3g}", (i, value), ha="center", va="bottom", fontsize=8)


def plot_results(results: dict, path: Path) -> Path:
    """Draw steps/s, time to quality, NFE to quality and notebook seconds; save to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gen_models_utilities.solvers import solver_names

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    batches = sorted({int(key.rsplit("_batch", 1)[1]) for key in results if key.startswith("speed_steps_per_s_")})
    names = [n for n in ("package", "chapter_loop", "torchcfm", "flow_matching")
             if f"speed_steps_per_s_{n}_batch{batches[0]}" in results]
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        ax.bar([i + j * width for i in range(len(batches))],
               [results.get(f"speed_steps_per_s_{name}_batch{b}", float("nan")) for b in batches], width,
               label=name, color="tab:red" if name == "package" else None)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(batches))], [f"batch {b}" for b in batches])
    ax.set_title("implementation speed at one recipe (same network, AdamW, lr)")
    ax.set_ylabel("steps per second")
    ax.legend(fontsize=8)

    names = sorted(key[len("time_to_quality_s_"):] for key in results if key.startswith("time_to_quality_s_"))
    _bars(axes[0, 1], [name.replace("_", "\n", 1) for name in names],
          [results[f"time_to_quality_s_{n}"] for n in names],
          "train by recipe: seconds to the quality target\n(hatched: cap, not reached)", "training seconds",
          capped=[not results.get(f"time_to_quality_{n}_reached", 0) for n in names])

    ax = axes[1, 0]
    couplings = sorted({key.rsplit("_", 1)[1] for key in results
                        if key.startswith("nfe_to_quality_") and f"{key}_reached" in results})
    solvers = solver_names()
    width = 0.8 / max(len(couplings), 1)
    for j, coupling in enumerate(couplings):
        values = [results.get(f"nfe_to_quality_{s}_{coupling}", float("nan")) for s in solvers]
        reached = [results.get(f"nfe_to_quality_{s}_{coupling}_reached", 0) for s in solvers]
        bars = ax.bar([i + j * width for i in range(len(solvers))], values, width, label=coupling)
        for bar, ok in zip(bars, reached):
            if not ok:
                bar.set_hatch("//")
    ax.axhline(2, color="k", linestyle="--", linewidth=1, label="target: 2 NFE")
    ax.set_xticks([i + width * (len(couplings) - 1) / 2 for i in range(len(solvers))], solvers)
    ax.set_yscale("log")
    ax.set_ylabel("network evaluations")
    ax.set_title("fewest NFE for W2 <= 1.5x floor (hatched: not reached)")
    ax.legend(fontsize=8)

    notebooks = sorted(key for key in results if key.startswith("notebook_seconds_"))
    if notebooks:
        _bars(axes[1, 1], [key[len("notebook_seconds_"):] for key in notebooks],
              [results[key] for key in notebooks], "notebook run time (fresh kernel)", "seconds")
    else:
        axes[1, 1].text(0.5, 0.5, "notebooks not timed", ha="center", va="center")
        axes[1, 1].set_axis_off()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path
