"""Static pictures beside the explorers, for readers without a kernel or a browser (GitHub, nbviewer)."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt

from ..live_training import LiveTrainer
from ..metrics import off_mode_fraction, samples_per_mode
from ..plotting import plot_loss, plot_samples, plot_velocity_field


def figure_png(fig, dpi: int = 72) -> bytes:
    """The figure as PNG bytes (no timestamp or version written, so equal figures give equal bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def training_figure(trainer: LiveTrainer, t: float = 0.5):
    """A live training as it stands: its loss, samples from the fixed noise, the field at t. Returns (fig, text)."""
    frame = trainer.frame(t)
    fig, (curve, samples, field) = plt.subplots(1, 3, figsize=(13, 4.3))
    plot_loss(frame.losses, ax=curve, window=min(50, max(1, len(frame.losses))),
              title=f"loss after {len(frame.losses)} steps")
    plot_samples(frame.samples, data=trainer.data.numpy(), ax=samples,
                 title=f"{trainer.preview_steps} Euler steps from fixed noise")
    with trainer.lock:
        plot_velocity_field(trainer.model, t, ax=field, data=trainer.data.numpy()[:300], n_grid=15,
                            title=f"velocity at t = {t:.2f}")
    fig.tight_layout()
    recent = f"{sum(frame.losses[-50:]) / len(frame.losses[-50:]):.3f}" if frame.losses else "-"
    text = (f"step {len(frame.losses)} ({trainer.base} base, {trainer.coupling_label}, lr {trainer.lr:g}, "
            f"batch {trainer.batch_size}) | loss (mean of the last 50) {recent}\n"
            f"samples: off every mode {100 * off_mode_fraction(frame.samples):.1f}% | "
            f"per mode {samples_per_mode(frame.samples).tolist()}")
    return fig, text
