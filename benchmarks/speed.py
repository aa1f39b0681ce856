"""Training speed: the chapter's DataLoader loop against ``training.train``, same network.

Both sides train a VelocityField on the chapter's 1000 ring points, with batches of 1000 as
in the chapter's first model (one epoch is one step) and, as a second reading, of 128 as in
its conditional models. They take turns in chunks, so a change in machine load hits both
alike and their ratio stays fair.
"""
from __future__ import annotations

from gen_models_utilities import create_ring_gaussians

from .contenders import ChapterLoop, fresh_model, package_run

BATCH_SIZE = 1000
N_POINTS = 1000          # the chapter trains on create_ring_gaussians(n_samples=1000)


def training_speed(chunk_steps: int = 200, rounds: int = 3, seed: int = 0, batch_size: int = BATCH_SIZE) -> dict:
    """Steps per second of both loops over ``rounds`` alternating chunks of about ``chunk_steps``.

    Returns:
        {"train_steps_per_s_chapter_loop": float, "train_steps_per_s_package": float}, with the
        suffix ``_batch<batch_size>`` when batch_size is not 1000.
    """
    data = create_ring_gaussians(N_POINTS, seed=seed)[0]
    chapter = ChapterLoop(fresh_model(seed), data, batch_size=batch_size)
    package_model = fresh_model(seed)
    batches_per_epoch = -(-N_POINTS // batch_size)
    epochs = max(1, chunk_steps // batches_per_epoch)
    chapter.run(1)                                             # warm up both code paths
    package_run(package_model, data, 2, batch_size=batch_size, seed=seed)
    totals = {"chapter_loop": [0, 0.0], "package": [0, 0.0]}
    for round_index in range(rounds):
        steps, seconds = chapter.run(epochs)
        totals["chapter_loop"][0] += steps
        totals["chapter_loop"][1] += seconds
        seconds = package_run(package_model, data, steps, batch_size=batch_size, seed=seed + round_index)
        totals["package"][0] += steps
        totals["package"][1] += seconds
    suffix = "" if batch_size == BATCH_SIZE else f"_batch{batch_size}"
    return {f"train_steps_per_s_{name}{suffix}": steps / seconds for name, (steps, seconds) in totals.items()}
