"""Shared test settings: no progress bars, a small thread count, and common fixtures."""
import os

os.environ.setdefault("GEN_MODELS_PROGRESS", "0")

import matplotlib  # noqa: E402

# Not MPLBACKEND: nbval's kernels would inherit the variable and show no inline plots.
matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# The fuzz tests draw the same examples on every run, so a run's verdict does not depend on luck.
# HYPOTHESIS_PROFILE=explore draws new ones each run, for hunting bugs by hand.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# The tests train and sample tiny models: one thread is faster for them and is not disturbed by
# whatever else runs on the machine. (Notebooks run in their own kernels, with the default.)
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def ring_data():
    """A fixed ring data set: points float32 (2000, 2), labels int64 (2000,)."""
    from gen_models_utilities import create_ring_gaussians

    return create_ring_gaussians(2000, seed=0)


@pytest.fixture(scope="session")
def trained_fm():
    """The shipped unconditional model on the Gaussian base (built by `make checkpoints`)."""
    from gen_models_utilities.pretrained import load_pretrained

    model, _ = load_pretrained("fm", "gaussian")
    return model
