"""What minibatch OT costs per training step: ``train`` with each OT coupling against independent pairs.

Every run trains the same VelocityField from the same weights with the shipped recipe
(``recipes.recipe("fm", "gaussian")``: batch 512, lr 2e-3, cosine, logit-normal t); only the
coupling differs. The couplings take turns in chunks, so a change in machine load hits all
alike, and each cost is reported as a multiple of an independent step of the same run.
"""
from __future__ import annotations

from gen_models_utilities import create_ring_gaussians

from .contenders import fresh_model, package_run

OT_COUPLINGS = ("ot", "ot_block256", "ot_block128", "ot_block64")


def ot_step_cost(recipe: dict, chunk_steps: int = 100, rounds: int = 3, couplings=OT_COUPLINGS,
                 n_points: int = 8000, seed: int = 0) -> dict:
    """Milliseconds per step of ``train`` with each coupling and its ratio to independent pairs.

    ``recipe``: the shipped recipe (its batch_size, lr, schedule and time_sampling are used).
    Returns {"ot_cost_ms_per_step_<coupling>_batch<B>": float, "ot_cost_ratio_<coupling>_batch<B>":
    float (ms of the coupling / ms of 'independent')} for 'independent' and every coupling.
    """
    data = create_ring_gaussians(n_points, seed=seed)[0]
    same = {key: recipe[key] for key in ("batch_size", "lr", "schedule", "time_sampling")}
    names = ("independent", *couplings)
    models = {name: fresh_model(seed) for name in names}
    for name in names:
        package_run(models[name], data, 2, seed=seed, coupling=name, **same)     # warm up every code path
    seconds = dict.fromkeys(names, 0.0)
    for round_ in range(rounds):
        for name in names:
            seconds[name] += package_run(models[name], data, chunk_steps, seed=seed + round_, coupling=name, **same)
    ms = {name: 1000 * total / (rounds * chunk_steps) for name, total in seconds.items()}
    batch = same["batch_size"]
    results = {f"ot_cost_ms_per_step_{name}_batch{batch}": value for name, value in ms.items()}
    results.update({f"ot_cost_ratio_{name}_batch{batch}": ms[name] / ms["independent"] for name in couplings})
    return results
