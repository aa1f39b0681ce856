"""Handwritten digits for notebook 17c: flow matching on 64-dimensional points.

scikit-learn ships 1,797 greyscale digits of 8 x 8 pixels in its wheel (``load_digits``): no
download. Each image is one point of R^64, scaled from the pixel values 0..16 to [-1, 1]; the
chapter's loss, solvers and guidance then work on those points unchanged. What changes is the
network (``DigitVelocity``), the metric (a Fréchet distance in the feature space of a small
digit classifier, ``DigitClassifier``) and the cost.

    split = load_digit_split()                      # fixed: 1,297 training and 500 held-out images
    images = sample_digits(model, labels=[3] * 8, guidance_scale=2.0, n_steps=16, seed=0).x
    frechet_distance(features(classifier, images), features(classifier, split.test_images))
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import (MAX_SAMPLES, MAX_TRAIN_STEPS, _short, as_labels, as_points, check_choice, check_device,
                      check_module, check_positive_int, check_real, make_generator)
from .guidance import GuidedVelocity
from .models import class_code, mlp, register_model_class
from .paths import pairs_loss
from .solvers import ODESolution, solve_ode, solver_names
from .training import TrainingResult, run_steps

SIDE = 8                       # images are SIDE x SIDE pixels
PIXELS = SIDE * SIDE           # the width of a point: 64
N_DIGITS = 10
HELD_OUT = 500                 # images kept out of every training run
SPLIT_SEED = 0                 # numpy's RandomState(0): a permutation that no numpy release changes
MAX_PIXEL = 16.0               # load_digits stores whole numbers 0..16


@dataclass(frozen=True)
class DigitSplit:
    """The fixed split: images float32 (N, 64) in [-1, 1], row by row; labels int64 (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@functools.lru_cache(maxsize=1)
def _split() -> DigitSplit:
    from sklearn.datasets import load_digits      # scikit-learn's import costs a second; only here

    digits = load_digits()
    images = torch.tensor(digits.data / (MAX_PIXEL / 2) - 1, dtype=torch.float32)   # 0..16 -> [-1, 1]
    labels = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(len(images)))
    train, test = order[:-HELD_OUT], order[-HELD_OUT:]
    return DigitSplit(images[train], labels[train], images[test], labels[test])


def load_digit_split() -> DigitSplit:
    """scikit-learn's 1,797 digits as 1,297 training and 500 held-out images (a copy; the split never changes)."""
    split = _split()
    return DigitSplit(*(tensor.clone() for tensor in (split.train_images, split.train_labels, split.test_images,
                                                       split.test_labels)))


def as_images(points) -> np.ndarray:
    """Points (N, 64) as pixel arrays (N, 8, 8) for plotting, clipped to [-1, 1]."""
    return as_points("points", points, dim=PIXELS).detach().cpu().clamp(-1, 1).reshape(-1, SIDE, SIDE).numpy()


def check_images(name: str, images) -> torch.Tensor:
    """``images`` as a finite float32 tensor (N, 64) (a tensor keeps its device)."""
    return as_points(name, images, dim=PIXELS)


# ------------------------------------------------------------------------------------- networks

def time_features(t: torch.Tensor, n_frequencies: int = 8) -> torch.Tensor:
    """t (B, 1) -> (B, 2 n_frequencies): sines and cosines of t at frequencies 1, 2, 4, ... (times pi)."""
    frequencies = torch.pi * 2.0 ** torch.arange(n_frequencies, device=t.device, dtype=t.dtype)
    return torch.cat([torch.sin(t * frequencies), torch.cos(t * frequencies)], dim=1)


@register_model_class
class DigitVelocity(nn.Module):
    """v(x, t, c) for 8 x 8 digits: an MLP on [pixels x (B, 64), features of t, one-hot digit c (B, 10)].

    The all-zero code is "no digit", as for the ring's one-hot model, so one network trained with
    condition dropout gives classifier-free guidance.
    """

    dim = PIXELS
    condition_kind = "onehot"
    condition_dim = N_DIGITS
    predicts = "velocity"

    def __init__(self, hidden_dim: int = 256, n_hidden: int = 3):
        super().__init__()
        hidden_dim = check_positive_int("hidden_dim", hidden_dim, maximum=4096)
        n_hidden = check_positive_int("n_hidden", n_hidden, maximum=16)
        self.config = {"hidden_dim": hidden_dim, "n_hidden": n_hidden}
        self.net = mlp([PIXELS + 16 + N_DIGITS] + [hidden_dim] * n_hidden + [PIXELS], activation=nn.SiLU)

    def forward(self, x: torch.Tensor, t, condition: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(len(x), 1)
        c = torch.zeros(len(x), N_DIGITS, device=x.device) if condition is None else condition.expand(len(x), -1)
        return self.net(torch.cat([x, time_features(t), c], dim=1))


@register_model_class
class DigitConvVelocity(nn.Module):
    """v(x, t, c) for 8 x 8 digits by 3 x 3 convolutions; t and the one-hot digit shift every layer's channels."""

    dim = PIXELS
    condition_kind = "onehot"
    condition_dim = N_DIGITS
    predicts = "velocity"

    def __init__(self, channels: int = 32, n_layers: int = 3):
        super().__init__()
        channels = check_positive_int("channels", channels, maximum=1024)
        n_layers = check_positive_int("n_layers", n_layers, maximum=16)
        self.config = {"channels": channels, "n_layers": n_layers}
        self.embed = mlp([16 + N_DIGITS, 128, 128], final_activation=True, activation=nn.SiLU)
        self.shifts = nn.ModuleList(nn.Linear(128, channels) for _ in range(n_layers))
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else channels, channels, 3, padding=1)
                                   for i in range(n_layers))
        self.out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t, condition: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(len(x), 1)
        c = torch.zeros(len(x), N_DIGITS, device=x.device) if condition is None else condition.expand(len(x), -1)
        e = self.embed(torch.cat([time_features(t), c], dim=1))
        h = x.reshape(-1, 1, SIDE, SIDE)
        for conv, shift in zip(self.convs, self.shifts):
            h = nn.functional.silu(conv(h) + shift(e)[:, :, None, None])
        return self.out(h).reshape(-1, PIXELS)


@register_model_class
class DigitClassifier(nn.Module):
    """A small classifier of 8 x 8 digits: an MLP (B, 64) -> features (B, 64) -> logits (B, 10)."""

    dim = PIXELS

    def __init__(self, hidden_dim: int = 128, feature_dim: int = 64):
        super().__init__()
        hidden_dim = check_positive_int("hidden_dim", hidden_dim, maximum=4096)
        feature_dim = check_positive_int("feature_dim", feature_dim, maximum=4096)
        self.config = {"hidden_dim": hidden_dim, "feature_dim": feature_dim}
        self.body = mlp([PIXELS, hidden_dim, feature_dim], final_activation=True)
        self.head = nn.Linear(feature_dim, N_DIGITS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


# ------------------------------------------------------------------------------------- training

def digit_batch_loss(model: nn.Module, images: torch.Tensor, codes: torch.Tensor, batch_size: int,
                     condition_dropout: float, rng: torch.Generator):
    """``batch_loss()`` for ``run_steps``: the chapter's flow matching loss on a fresh batch of digits.

    The same step as on the ring: images x1 (B, 64) with their one-hot digits c, noise x0 from
    N(0, I), t ~ U[0, 1], each c replaced by zeros with probability ``condition_dropout``, then
    mse(v(x_t, t, c), x1 - x0) by the package's ``pairs_loss``.
    """
    def batch_loss() -> torch.Tensor:
        rows = torch.randint(len(images), (batch_size,), generator=rng).to(images.device)
        x1, c = images[rows], codes[rows]
        x0 = torch.randn(x1.shape, generator=rng).to(images.device)
        t = torch.rand(batch_size, 1, generator=rng).to(images.device)
        keep = (torch.rand(batch_size, 1, generator=rng) >= condition_dropout).to(images.device)
        return pairs_loss(model, x0, x1, t, c * keep)

    return batch_loss


def _training_data(images, labels, device) -> tuple[torch.Tensor, torch.Tensor]:
    images = check_images("images", images)
    labels = as_labels("labels", labels, len(images), N_DIGITS)
    device = check_device("device", device) or images.device
    return images.to(device), labels.to(device)


def train_digit_flow(model: nn.Module, images, labels, n_steps: int = 3000, batch_size: int = 128, lr: float = 2e-3,
                     condition_dropout: float = 0.2, schedule: str = "cosine", seed: int = 0, progress=None,
                     device=None, after_step=None) -> TrainingResult:
    """Train a digit velocity model by flow matching with condition dropout; returns its TrainingResult.

    images: (N, 64) in [-1, 1]; labels: (N,) digits. ``after_step()`` (optional) runs after every step.
    """
    check_module("model", model)
    if getattr(model, "condition_kind", None) != "onehot" or getattr(model, "dim", None) != PIXELS:
        raise TypeError(f"model must be a one-hot model of {PIXELS}-pixel images such as DigitVelocity, "
                        f"got {type(model).__name__}")
    images, labels = _training_data(images, labels, device)
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_TRAIN_STEPS)
    batch_size = check_positive_int("batch_size", batch_size, maximum=MAX_SAMPLES)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    condition_dropout = check_real("condition_dropout", condition_dropout, low=0.0, high=1.0)
    check_choice("schedule", schedule, ("constant", "cosine"))
    rng = make_generator(seed)
    model.to(images.device)
    batch_loss = digit_batch_loss(model, images, class_code(labels, N_DIGITS), batch_size, condition_dropout, rng)
    result = TrainingResult(base="gaussian", recipe={"n_steps": n_steps, "batch_size": batch_size, "lr": lr,
                                                     "condition_dropout": condition_dropout, "schedule": schedule})
    return run_steps(model, batch_loss, n_steps, lr, schedule, result, desc="digits", progress=progress,
                     after_step=after_step)


def train_classifier(model: nn.Module, images, labels, n_steps: int = 2000, batch_size: int = 128, lr: float = 2e-3,
                     schedule: str = "cosine", seed: int = 0, progress=None, device=None) -> TrainingResult:
    """Train ``model`` (e.g. DigitClassifier) by cross-entropy on images (N, 64) and labels (N,)."""
    check_module("model", model)
    images, labels = _training_data(images, labels, device)
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_TRAIN_STEPS)
    batch_size = check_positive_int("batch_size", batch_size, maximum=MAX_SAMPLES)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    check_choice("schedule", schedule, ("constant", "cosine"))
    rng = make_generator(seed)
    model.to(images.device)

    def batch_loss() -> torch.Tensor:
        rows = torch.randint(len(images), (batch_size,), generator=rng).to(images.device)
        return nn.functional.cross_entropy(model(images[rows]), labels[rows])

    result = TrainingResult(base="gaussian", recipe={"n_steps": n_steps, "batch_size": batch_size, "lr": lr,
                                                     "schedule": schedule})
    return run_steps(model, batch_loss, n_steps, lr, schedule, result, desc="classifier", progress=progress)


# ------------------------------------------------------------------------------------- sampling

def sample_digits(model: nn.Module, labels, guidance_scale: float = 1.0, n_steps: int = 16, method: str = "midpoint",
                  seed=None, x0=None, return_trajectory: bool = False) -> ODESolution:
    """Digits ``labels`` (N,) from noise along the guided field v_uncond + w (v_cond - v_uncond), w = guidance_scale.

    At w = 1 that is the conditional field v_cond, evaluated alone; otherwise each evaluation runs the
    network once on a doubled batch (the digit's code and the all-zero code), as ``GuidedVelocity`` does.

    x0: the starting noise (N, 64); None draws it from N(0, I) with ``seed``. Returns the ODESolution
    of ``solve_ode`` (x: the images (N, 64); trajectory: (n_steps + 1, N, 64) if asked for).
    """
    labels = as_labels("labels", labels, None, N_DIGITS)
    if len(labels) == 0:
        raise ValueError("labels must hold at least one digit, got none")
    if x0 is None:
        x0 = torch.randn(len(labels), PIXELS, generator=make_generator(seed))
    x0 = check_images("x0", x0)
    if len(x0) != len(labels):
        raise ValueError(f"x0 has {len(x0)} rows for {len(labels)} labels (one noise per digit)")
    method = check_choice("method", method, solver_names(adaptive=False))
    codes = class_code(labels, N_DIGITS)
    if check_real("guidance_scale", guidance_scale, low=0.0) == 1.0:      # v_w is v_cond itself: one pass, not two
        return solve_ode(model, x0, n_steps=n_steps, method=method, condition=codes,
                         return_trajectory=return_trajectory)
    return solve_ode(GuidedVelocity(model, codes, guidance_scale), x0, n_steps=n_steps, method=method,
                     return_trajectory=return_trajectory)


# ------------------------------------------------------------------------------------- measuring

@torch.no_grad()
def features(classifier: nn.Module, images) -> np.ndarray:
    """The classifier's features (its last hidden layer) of images (N, 64): float64 (N, feature_dim)."""
    if not isinstance(classifier, DigitClassifier):
        raise TypeError(f"classifier must be a DigitClassifier, got {_short(classifier)}")
    images = check_images("images", images)
    weights = next(classifier.parameters())
    return classifier.eval().body(images.to(weights.device, weights.dtype)).double().cpu().numpy()


@torch.no_grad()
def predict(classifier: nn.Module, images) -> torch.Tensor:
    """The digit the classifier reads in each image (N, 64): int64 (N,) on the CPU."""
    if not isinstance(classifier, DigitClassifier):
        raise TypeError(f"classifier must be a DigitClassifier, got {_short(classifier)}")
    images = check_images("images", images)
    weights = next(classifier.parameters())
    return classifier.eval()(images.to(weights.device, weights.dtype)).argmax(dim=1).cpu()


def _feature_array(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number) or value.dtype == bool:
        raise TypeError(f"{name} must be a real-valued array or tensor (N, F), got {_short(value)}")
    if value.ndim != 2 or value.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N, F) with N >= 2 rows, got shape {value.shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{name} must not contain NaN or inf values")
    return value.astype(np.float64)


def frechet_terms(a, b) -> tuple[float, float]:
    """The two terms of the Fréchet distance between Gaussians fitted to feature sets a (N, F) and b (M, F).

    (||mu_a - mu_b||^2, tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)): how far the means are apart, and
    how differently the sets spread around them. Both are 0 for identical sets.
    """
    a, b = _feature_array("a", a), _feature_array("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same number of features, got {a.shape[1]} and {b.shape[1]}")
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T            # S_a^1/2 (symmetric)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)        # eigenvalues of S_a^1/2 S_b S_a^1/2
    spread = np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(cross).sum()
    return float(((a.mean(axis=0) - b.mean(axis=0)) ** 2).sum()), float(max(spread, 0.0))


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets a (N, F) and b (M, F): the sum of
    ``frechet_terms``, 0 for identical sets (the squared 2-Wasserstein distance of the two Gaussians)."""
    return sum(frechet_terms(a, b))


# ------------------------------------------------------------------------------------- pictures

def mosaic(images, n_columns: int) -> np.ndarray:
    """Images (N, 64) tiled into one array, ``n_columns`` a row, one blank (NaN) pixel between tiles."""
    tiles = as_images(images)
    n_columns = check_positive_int("n_columns", n_columns, maximum=1000)
    n_rows = -(-len(tiles) // n_columns)
    canvas = np.full((n_rows * (SIDE + 1) - 1, n_columns * (SIDE + 1) - 1), np.nan)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, n_columns)
        canvas[row * (SIDE + 1):row * (SIDE + 1) + SIDE, column * (SIDE + 1):column * (SIDE + 1) + SIDE] = tile
    return canvas


def show_digits(images, n_columns: int, ax=None, title: str | None = None, row_labels=None, column_labels=None,
                size: float = 0.6):
    """Draw images (N, 64) as a grid, ink dark on white (-1 white, 1 black, values beyond drawn as -1 or 1);
    returns the Figure.

    row_labels, column_labels: texts beside each row and above each column. size: inches a tile (new figure).
    """
    import matplotlib.pyplot as plt

    canvas = mosaic(images, n_columns)
    if ax is None:
        rows = (canvas.shape[0] + 1) // (SIDE + 1)
        _, ax = plt.subplots(figsize=(n_columns * size + (1.2 if row_labels else 0.3),
                                      rows * size + 0.3 * bool(title) + 0.3 * bool(column_labels) + 0.2))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="#dde3ea")
    ax.imshow(canvas, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks([(SIDE + 1) * i + (SIDE - 1) / 2 for i in range(len(column_labels or []))],
                  list(column_labels or []))
    ax.set_yticks([(SIDE + 1) * i + (SIDE - 1) / 2 for i in range(len(row_labels or []))], list(row_labels or []))
    ax.tick_params(length=0, labeltop=bool(column_labels), labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, pad=20 if column_labels else 6)
    ax.figure.tight_layout()
    return ax.figure


def draw_digits(model: nn.Module, classifier: nn.Module, label: int = 3, guidance_scale: float = 1.0,
                n_steps: int = 16, method: str = "midpoint", n_samples: int = 16, seed: int = 0):
    """The explorer's picture: ``n_samples`` samples of digit ``label``; returns (Figure, text).

    The text says how many of them ``classifier`` reads as ``label``.
    """
    import matplotlib.pyplot as plt

    label = check_positive_int("label", label, minimum=0, maximum=N_DIGITS - 1)
    n_samples = check_positive_int("n_samples", n_samples, maximum=256)
    images = sample_digits(model, [label] * n_samples, guidance_scale, n_steps, method, seed=seed).x
    fig, ax = plt.subplots(figsize=(6.0, 1.8))
    show_digits(images, min(n_samples, 8), ax=ax,
                title=f"digit {label}, w = {guidance_scale:g}, {method} x {n_steps} steps")
    read = int((predict(classifier, images) == label).sum())
    return fig, f"the classifier reads {read} of {n_samples} as a {label}"


def digit_explorer(model: nn.Module, classifier: nn.Module, label: int = 3, guidance_scale: float = 1.0,
                   n_steps: int = 8, method: str = "midpoint"):
    """Sliders for the digit, the guidance weight w and the steps, redrawing ``draw_digits``: an ipywidgets VBox."""
    import ipywidgets
    import matplotlib.pyplot as plt

    controls = {"label": ipywidgets.IntSlider(check_positive_int("label", label, minimum=0, maximum=N_DIGITS - 1),
                                              min=0, max=N_DIGITS - 1, description="digit"),
                "guidance_scale": ipywidgets.FloatSlider(check_real("guidance_scale", guidance_scale, low=0.0,
                                                                    high=8.0), min=0.0, max=8.0, step=0.5,
                                                         description="w"),
                "n_steps": ipywidgets.IntSlider(check_positive_int("n_steps", n_steps, maximum=32), min=1, max=32,
                                                description="steps")}
    for control in controls.values():
        control.continuous_update = False
    image, words = ipywidgets.Image(format="png"), ipywidgets.Label()

    def redraw(change=None) -> None:
        fig, text = draw_digits(model, classifier, method=method, **{name: c.value for name, c in controls.items()})
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
        image.value, words.value = buffer.getvalue(), text

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), image, words])
