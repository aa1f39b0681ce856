"""Implementation speed at one recipe: ``training.train`` against the chapter's loop and the peers.

Every contender trains the same VelocityField from the same weights on the chapter's 1000 ring
points, with the same batch, AdamW at the same learning rate, a constant rate and t ~ U[0, 1]
(``SAME_RECIPE``), so a difference in steps per second is the implementation's alone. They take
turns in chunks, so a change in machine load hits all alike and their ratios stay fair.
"""
from __future__ import annotations

from gen_models_utilities import create_ring_gaussians

from .contenders import PEERS, ChapterLoop, fresh_model, package_run

BATCH_SIZES = (256, 1000)     # 1000: the chapter's first model (one epoch is one step)
N_POINTS = 1000               # the chapter trains on create_ring_gaussians(n_samples=1000)
SAME_RECIPE = {"lr": 1e-3, "schedule": "constant", "time_sampling": "uniform"}


class PackageLoop:
    """``training.train`` at ``SAME_RECIPE`` in chunks, on one model kept between chunks."""

    def __init__(self, model, data, batch_size: int, seed: int = 0):
        self.model, self.data, self.batch_size, self.seed = model, data, batch_size, seed

    def run(self, n_steps: int) -> tuple[int, float]:
        seconds = package_run(self.model, self.data, n_steps, seed=self.seed, batch_size=self.batch_size,
                              **SAME_RECIPE)
        return n_steps, seconds


def contenders(data, batch_size: int, peers=(), seed: int = 0) -> dict:
    """{name: run(n_steps) -> (steps taken, seconds)} for the package, the chapter's loop and ``peers``."""
    runs = {"package": PackageLoop(fresh_model(seed), data, batch_size, seed).run,
            "chapter_loop": ChapterLoop(fresh_model(seed), data, batch_size, SAME_RECIPE["lr"], seed).run}
    for name in peers:
        runs[name] = PEERS[name](fresh_model(seed), data, batch_size, SAME_RECIPE["lr"], seed).run
    return runs


def training_speed(chunk_steps: int = 200, rounds: int = 2, peers=(), batch_sizes=BATCH_SIZES, seed: int = 0) -> dict:
    """Steps per second of every contender over ``rounds`` alternating chunks of ``chunk_steps``.

    Returns {"speed_steps_per_s_<name>_batch<B>": float, "speed_ratio_package_vs_<name>_batch<B>":
    float} for every contender name and batch size B.
    """
    data = create_ring_gaussians(N_POINTS, seed=seed)[0]
    results = {}
    for batch_size in batch_sizes:
        runs = contenders(data, batch_size, peers, seed)
        for run in runs.values():
            run(2)                                              # warm up every code path
        totals = {name: [0, 0.0] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                steps, seconds = run(chunk_steps)
                totals[name][0] += steps
                totals[name][1] += seconds
        speed = {name: steps / seconds for name, (steps, seconds) in totals.items()}
        for name, value in speed.items():
            results[f"speed_steps_per_s_{name}_batch{batch_size}"] = value
            if name != "package":
                results[f"speed_ratio_package_vs_{name}_batch{batch_size}"] = speed["package"] / value
    return results
