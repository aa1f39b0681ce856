"""Retrain the checkpoints the package ships: one per model kind and base distribution, and the
companion notebooks' models (``pretrained.MODEL_KINDS``, e.g. fm_ot_block64, fm_reflow).

    python -m tools.retrain_checkpoints                         # list them, present or missing
    python -m tools.retrain_checkpoints --retrain               # retrain and overwrite every one
    python -m tools.retrain_checkpoints --retrain --only fm_gaussian onehot_uniform
    python -m tools.retrain_checkpoints --remeasure             # keep the weights, re-measure quality
    python -m tools.retrain_checkpoints --radius-range          # keep the weights, recompute the radius range
    python -m tools.retrain_checkpoints --floors                # re-measure the shipped W2 floors

Each is trained by ``pretrained.recipes.train_recipe(kind, base)`` and written atomically by
``pretrained.save_checkpoint`` to ``gen_models_utilities/pretrained/<kind>_<base>.pt``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from gen_models_utilities import metrics
from gen_models_utilities import pretrained as checkpoints
from gen_models_utilities.data import create_ring_gaussians
from gen_models_utilities.files import atomic_write
from gen_models_utilities.loaders import radius_of
from gen_models_utilities.pretrained import recipes


def checkpoint_names() -> dict[str, tuple[str, str]]:
    """{'<kind>_<base>': (kind, base)} for every shipped checkpoint (``pretrained.shipped()``), a
    reflow's teacher before it."""
    return {f"{kind}_{base}": (kind, base) for kind, base in checkpoints.shipped()}


def training_radius_range() -> torch.Tensor:
    """The range ``train`` stores in a radius model trained on the recipes' data: the 1st and
    99th percentiles of the training radii, (2,)."""
    points, _ = create_ring_gaussians(recipes.DATA_SIZE, seed=recipes.DATA_SEED)
    return torch.quantile(radius_of(torch.as_tensor(points))[:, 0], torch.tensor([0.01, 0.99]))


def store_radius_range(names) -> None:
    """Rewrite the named radius checkpoints with ``training_radius_range()``, weights and metadata kept."""
    for name in names:
        kind, base = checkpoint_names()[name]
        if kind != "radius":
            continue
        model, metadata = checkpoints.load_pretrained(kind, base)
        model.trained_radius_range.copy_(training_radius_range())
        checkpoints.save_checkpoint(model, checkpoints.pretrained_path(kind, base), **metadata)
        low, high = model.trained_radius_range.tolist()
        print(f"{name:24s} trained radius range {low:.3f} to {high:.3f}", flush=True)


# (samples, reference) sizes whose W2 floor is shipped: what the notebooks, widgets and benchmarks use.
FLOOR_SIZES = ((500, 2000), (1000, 2000), (2000, 2000), (4000, 4000))


def store_w2_floors(sizes=FLOOR_SIZES) -> dict:
    """Measure ``metrics.w2_floor`` afresh at ``sizes`` and write ``metrics.FLOORS_FILE`` atomically."""
    floors = {f"{n}x{m}": list(metrics.measure_w2_floor(n, m)) for n, m in sizes}
    payload = {"reference_seed": metrics.REFERENCE_SEED, "floor_seeds": list(metrics.FLOOR_SEEDS), "floors": floors}
    atomic_write(metrics.FLOORS_FILE, lambda file: file.write(json.dumps(payload, indent=1).encode()))
    return floors


def main(argv=None) -> int:
    names = checkpoint_names()
    parser = argparse.ArgumentParser(prog="python -m tools.retrain_checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true", help="retrain and overwrite the checkpoints")
    parser.add_argument("--remeasure", action="store_true",
                        help="keep the weights, store freshly measured quality figures (after a yardstick change)")
    parser.add_argument("--floors", action="store_true", help="re-measure the shipped W2 floors (metrics.FLOORS_FILE)")
    parser.add_argument("--radius-range", action="store_true",
                        help="keep the weights, store the trained radius range of the radius checkpoints "
                             "(1st to 99th percentile of the training radii)")
    parser.add_argument("--only", nargs="+", choices=list(names), metavar="KIND_BASE",
                        help=f"checkpoints to retrain (default: all of {', '.join(names)})")
    args = parser.parse_args(argv)
    if args.floors:
        for size, (mean, spread) in store_w2_floors().items():
            print(f"W2 floor {size:10s} {mean:.4f} ± {spread:.4f}", flush=True)
        return 0
    if args.radius_range:
        store_radius_range(args.only or names)
        return 0
    if args.remeasure:
        for name in args.only or names:
            kind, base = names[name]
            model, metadata = checkpoints.load_pretrained(kind, base)
            if "quality" not in metadata:          # diffusion and the CNF are judged in 17b itself
                continue
            metadata["quality"] = recipes.measure_quality(model, base)
            checkpoints.save_checkpoint(model, checkpoints.pretrained_path(kind, base), **metadata)
            print(f"{name:24s} {metadata['quality']}", flush=True)
        return 0
    if not args.retrain:
        if args.only:
            parser.error("--only needs --retrain, --remeasure or --radius-range")
        for name, (kind, base) in names.items():
            print(f"{name:24s} {'present' if checkpoints.pretrained_path(kind, base).is_file() else 'missing'}")
        return 0
    for name in args.only or names:
        kind, base = names[name]
        start = time.perf_counter()
        model, metadata = recipes.train_recipe(kind, base)
        checkpoints.save_checkpoint(model, checkpoints.pretrained_path(kind, base), **metadata)
        print(f"{name:24s} {time.perf_counter() - start:6.1f} s  {metadata.get('quality', '')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
