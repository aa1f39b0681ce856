"""What a MeanFlow training step costs against a flow matching step of the same network.

Both train an ``AverageVelocityField`` (the chapter's network with a second time input) from
the same weights with the shipped MeanFlow recipe (``recipes.recipe("meanflow", "gaussian")``:
its batch, lr, schedule and time sampling); only the loss differs. Flow matching (``train``)
calls the network once a step and back-propagates through it; MeanFlow (``train_meanflow``)
pushes a tangent through it too (``torch.func.jvp``) before back-propagating. The two take turns
in chunks, so a change in machine load hits both alike.
"""
from __future__ import annotations

import torch

from gen_models_utilities import create_ring_gaussians, train
from gen_models_utilities.meanflow import AverageVelocityField, train_meanflow

from .clock import now


def _model(spec: dict, seed: int) -> AverageVelocityField:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AverageVelocityField(activation=spec.get("activation", "silu"))


def meanflow_step_cost(recipe: dict, chunk_steps: int = 100, rounds: int = 3, n_points: int = 8000,
                       seed: int = 0) -> dict:
    """Milliseconds per step of MeanFlow and of flow matching on the same network, and their ratio.

    ``recipe``: the shipped MeanFlow recipe (batch_size, lr, schedule, time_sampling, equal_share,
    activation). Returns {"meanflow_cost_ms_per_step_<flow_matching|meanflow>_batch<B>": float,
    "meanflow_cost_ratio_batch<B>": float (ms of a MeanFlow step / ms of a flow matching step)}.
    """
    data = create_ring_gaussians(n_points, seed=seed)[0]
    same = {key: recipe[key] for key in ("batch_size", "lr", "schedule", "time_sampling")}
    runs = {"flow_matching": lambda model, n, s: train(model, data, n_steps=n, seed=s, progress=False, **same),
            "meanflow": lambda model, n, s: train_meanflow(model, data, n_steps=n, seed=s, progress=False,
                                                           equal_share=recipe.get("equal_share", 0.75), **same)}
    models = {name: _model(recipe, seed) for name in runs}
    for name, run in runs.items():
        run(models[name], 2, seed)                                    # warm up every code path
    seconds = dict.fromkeys(runs, 0.0)
    for round_ in range(rounds):
        for name, run in runs.items():
            start = now()
            run(models[name], chunk_steps, seed + round_)
            seconds[name] += now() - start
    ms = {name: 1000 * total / (rounds * chunk_steps) for name, total in seconds.items()}
    batch = same["batch_size"]
    results = {f"meanflow_cost_ms_per_step_{name}_batch{batch}": value for name, value in ms.items()}
    results[f"meanflow_cost_ratio_batch{batch}"] = ms["meanflow"] / ms["flow_matching"]
    return results
