"""How long the chapter's sample-redraw callback takes: draw 100 Euler steps, render, close."""
from __future__ import annotations

import statistics

from .clock import now


def widget_callback_ms(model, n_steps: int = 100, repeats: int = 7) -> float | None:
    """Median milliseconds of one uncached redraw of the sample explorer, or None when
    ``gen_models_utilities.widgets`` is not there.

    One redraw is what ``Explorer.redraw`` does on a cache miss: ``draw_samples`` (generate
    1000 samples, measure their quality, plot them), then render the figure to PNG and close it.
    """
    try:
        from gen_models_utilities.widgets import background_data, draw_samples, figure_png
    except ImportError:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = background_data()[0]
    times = []
    for seed in range(repeats + 1):                 # the first draw warms up matplotlib
        start = now()
        fig, _ = draw_samples(model, n_steps=n_steps, seed=seed, data=data)
        figure_png(fig)
        plt.close(fig)
        times.append(1000 * (now() - start))
    return statistics.median(times[1:])
