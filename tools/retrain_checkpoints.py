"""Retrain the checkpoints the package ships: one per model kind and base distribution.

    python -m tools.retrain_checkpoints                         # list them, present or missing
    python -m tools.retrain_checkpoints --retrain               # retrain and overwrite every one
    python -m tools.retrain_checkpoints --retrain --only fm_gaussian onehot_uniform
    python -m tools.retrain_checkpoints --remeasure             # keep the weights, re-measure quality

Each is trained by ``recipes.train_recipe(kind, base)`` and written atomically by
``checkpoints.save_checkpoint`` to ``gen_models_utilities/pretrained/<kind>_<base>.pt``.
"""
from __future__ import annotations

import argparse
import time

from gen_models_utilities import checkpoints, recipes
from gen_models_utilities.base_distributions import BASES


def checkpoint_names() -> dict[str, tuple[str, str]]:
    """{'<kind>_<base>': (kind, base)} for every kind of ``recipes.MODEL_KINDS`` and base of ``BASES``."""
    return {f"{kind}_{base}": (kind, base) for kind in recipes.MODEL_KINDS for base in BASES}


def main(argv=None) -> int:
    names = checkpoint_names()
    parser = argparse.ArgumentParser(prog="python -m tools.retrain_checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true", help="retrain and overwrite the checkpoints")
    parser.add_argument("--remeasure", action="store_true",
                        help="keep the weights, store freshly measured quality figures (after a yardstick change)")
    parser.add_argument("--only", nargs="+", choices=list(names), metavar="KIND_BASE",
                        help=f"checkpoints to retrain (default: all of {', '.join(names)})")
    args = parser.parse_args(argv)
    if args.remeasure:
        for name in args.only or names:
            kind, base = names[name]
            model, metadata = checkpoints.load_pretrained(kind, base)
            metadata["quality"] = recipes.measure_quality(model, base)
            checkpoints.save_checkpoint(model, checkpoints.pretrained_path(kind, base), **metadata)
            print(f"{name:24s} {metadata['quality']}", flush=True)
        return 0
    if not args.retrain:
        if args.only:
            parser.error("--only needs --retrain or --remeasure")
        for name, (kind, base) in names.items():
            print(f"{name:24s} {'present' if checkpoints.pretrained_path(kind, base).is_file() else 'missing'}")
        return 0
    for name in args.only or names:
        kind, base = names[name]
        start = time.perf_counter()
        model, metadata = recipes.train_recipe(kind, base)
        checkpoints.save_checkpoint(model, checkpoints.pretrained_path(kind, base), **metadata)
        print(f"{name:24s} {time.perf_counter() - start:6.1f} s  {metadata['quality']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
