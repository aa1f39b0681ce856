"""The chapter's widgets under a heavy hand, without a browser.

Every explorer of the suite (the ``*_explorer`` builders of gen_models_utilities.widgets,
the chapter's, 17a's and 17b's) is driven through its controls, as the front end would drive
it: ``control.value = ...`` fires the same callback a slider drag or a dropdown choice
fires in JupyterLab. Checked: no exception escapes, no valid value is refused, the number
of open matplotlib figures stays flat, the process memory (RSS) grows by less than 50 MB,
and values out of range or of the wrong type end as a visible message, never a traceback.
The median callback time is printed (run with -s to see it); nothing is timed-asserted.

Quick pictures (what a drag shows) are drawn on each change; every fifth change the controls
"rest" and the full picture is drawn (``settle()``), as the explorer's timer would do. The live
trainer is started, used, paused and reset 20 times. GEN_MODELS_STRESS_N sets the number of
random changes per explorer (default 150: about 1,000 over the seven explorers).
"""
from __future__ import annotations

import gc
import inspect
import json
import math
import os
import random
import statistics
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from gen_models_utilities import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from gen_models_utilities import widgets
from gen_models_utilities.base_distributions import BASES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
N_CHANGES = int(os.environ.get("GEN_MODELS_STRESS_N", "150"))
N_TRAININGS = 20
WARM_UP = 25                  # changes before the memory baseline: first-use caches fill here
MAX_RSS_GROWTH_MB = 50
N_STRESS_SAMPLES = 64         # points per redraw in the volume test (same code path, less arithmetic)
# What each explorer draws from, given {kind: {base: model}}: the models of one kind by base,
# 17a's models by coupling, or 17b's one guided one-hot model.
EXPLORER_MODELS = {
    "sample_explorer": lambda by_kind: by_kind["fm"],
    "field_explorer": lambda by_kind: by_kind["fm"],
    "mode_explorer": lambda by_kind: by_kind["onehot"],
    "radius_explorer": lambda by_kind: by_kind["radius"],
    "few_step_explorer": lambda by_kind: {"independent": by_kind["fm"]["gaussian"],
                                          "one-hot": by_kind["onehot"]["gaussian"]},
    "guidance_explorer": lambda by_kind: by_kind["onehot"]["gaussian"],
    "training_explorer": lambda by_kind: None,       # its own fresh model, on 1000 ring points
}
MODEL_CLASSES = {"fm": VelocityField, "onehot": ConditionalVelocityField, "radius": ConditionalVelocityFieldRadius}


def rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def explorer_builders() -> list[str]:
    """Names of every explorer builder in the widgets module."""
    return sorted(name for name, value in vars(widgets).items()
                  if name.endswith("_explorer") and inspect.isfunction(value))


def chapter_models(kind: str) -> dict:
    """{base: model} of ``kind``: the shipped checkpoints the notebook uses, else fresh models.

    Redraw cost and memory do not depend on how well a model is trained, so fresh (seeded)
    models stand in when the checkpoints have not been built.
    """
    models = {}
    for base in BASES:
        try:
            from gen_models_utilities.pretrained import load_pretrained

            models[base] = load_pretrained(kind, base)[0]
        except (FileNotFoundError, ValueError, ImportError):
            torch.manual_seed(len(models))
            models[base] = MODEL_CLASSES[kind]().eval()
    return models


@pytest.fixture(scope="module")
def models_by_kind():
    torch.set_num_threads(1)
    return {kind: chapter_models(kind) for kind in MODEL_CLASSES}


def build(name: str, models_by_kind: dict, **options):
    """Build explorer ``name`` over its models (``n_samples`` only where accepted)."""
    builder = getattr(widgets, name)
    accepted = inspect.signature(builder).parameters
    if "draw_options" in accepted:                 # guidance_explorer passes these to its draw function
        accepted = {**accepted, **inspect.signature(widgets.draw_guidance).parameters}
    options = {key: value for key, value in options.items() if key in accepted}
    return builder(EXPLORER_MODELS[name](models_by_kind), **options)


def random_valid_value(control, rng: random.Random):
    """A value the control's own front end could send (an option, a slider position), other
    than the current one, so that every change fires the callback."""
    if hasattr(control, "_options_values"):
        return rng.choice([value for value in control._options_values if value != control.value])
    if isinstance(control.value, bool):
        return not control.value
    n_positions = int(round((control.max - control.min) / control.step))
    while True:
        value = control.min + rng.randint(0, n_positions) * control.step
        value = int(value) if isinstance(control.value, int) else round(value, 10)
        if value != control.value:
            return value


def cache_holds(explorer, values: dict) -> bool:
    """Whether the explorer has a full picture for ``values`` already (then a change costs ~nothing)."""
    cache = getattr(explorer, "_cache", None)
    return cache is not None and (False,) + tuple(sorted(values.items())) in cache


@pytest.fixture(autouse=True)
def no_settle_timer(monkeypatch):
    """The controls rest when the test says so (settle()), not when a timer thread decides."""
    monkeypatch.setattr(widgets.Explorer, "SETTLE_SECONDS", None)


def shown_text(explorer) -> str:
    """All text in the explorer's Output area."""
    return "".join(output.get("text", "") for output in explorer.output.outputs)


def shown_png(explorer):
    return explorer.image.value or None


def test_every_explorer_is_covered():
    """The stress tests know how to build every explorer the module offers, and no notebook wires one itself."""
    builders = explorer_builders()
    assert builders, "gen_models_utilities.widgets has no *_explorer builders"
    unknown = sorted(set(builders) - set(EXPLORER_MODELS))
    assert not unknown, f"add {unknown} to EXPLORER_MODELS so the stress test drives them"
    for notebook in NOTEBOOKS:
        source = "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]
                           if cell["cell_type"] == "code")
        for marker in ("interact(", "interactive(", ".observe(", "widgets.Output("):
            assert marker not in source, (f"{notebook.name} wires a widget itself ({marker!r}); "
                                          "build it in widgets.py so this test can drive it")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPLORER_MODELS))
def test_explorer_survives_random_use(name, models_by_kind, capsys):
    """N_CHANGES random valid changes: no exception, no refusal, flat figures, bounded memory."""
    if name not in explorer_builders():
        pytest.skip(f"widgets.{name} does not exist")
    rng = random.Random(1234)
    explorer = build(name, models_by_kind, n_samples=N_STRESS_SAMPLES)
    controls = list(explorer.controls.items())
    figures_before = len(plt.get_fignums())
    durations, cpu_times, cached_durations, baseline = [], [], [], None
    for i in range(N_CHANGES + WARM_UP):
        if i == WARM_UP:
            gc.collect()
            baseline = rss_mb()
        description, control = rng.choice(controls)
        value = random_valid_value(control, rng)
        redraws = explorer.n_redraws
        cached = cache_holds(explorer, {**explorer.values(), description: value})
        start, cpu_start = time.perf_counter(), time.process_time()
        control.value = value                     # fires the callback as a front-end change would
        (cached_durations if cached else durations).append(time.perf_counter() - start)
        if not cached:
            cpu_times.append(time.process_time() - cpu_start)
        assert explorer.n_redraws == redraws + 1, f"{description}={value!r} did not redraw exactly once"
        assert explorer.last_error is None, f"{description}={value!r} was refused: {explorer.last_error}"
        assert len(plt.get_fignums()) == figures_before, f"a figure was left open after {description}={value!r}"
        if i % 5 == 4:
            explorer.settle()                     # the controls rest: the full picture
            assert explorer.last_error is None, explorer.last_error
    gc.collect()
    growth = rss_mb() - baseline
    assert shown_png(explorer) is not None, "the explorer shows no picture after the run"
    assert "Traceback" not in shown_text(explorer)
    with capsys.disabled():
        wall = 1000 * statistics.median(durations or [math.nan])
        cpu = 1000 * statistics.median(cpu_times or [math.nan])
        print(f"\n{name}: {N_CHANGES + WARM_UP} random changes; when drawn ({len(durations)}x) the median "
              f"callback took {wall:.0f} ms wall, {cpu:.0f} ms CPU (slowest {1000 * max(durations, default=0):.0f} "
              f"ms); {len(cached_durations)} came from the picture cache; RSS growth {growth:+.1f} MB "
              f"(n_samples={N_STRESS_SAMPLES}, torch threads {torch.get_num_threads()})")
    assert growth < MAX_RSS_GROWTH_MB, f"memory grew by {growth:.1f} MB over {N_CHANGES} changes"


@pytest.mark.slow
def test_sample_redraw_latency(models_by_kind, capsys):
    """The median time of one uncached sample redraw at 100 steps, with the chapter's settings."""
    explorer = build("sample_explorer", models_by_kind)
    cache = getattr(explorer, "_cache", None)
    durations, cpu_times = [], []
    explorer.controls["solver"].value = "euler"
    explorer.controls["steps"].value = 100
    for base in ("gaussian", "uniform", "gaussian", "uniform", "gaussian"):
        explorer.controls["base"].value = base
        if cache is not None:                     # a cached picture would cost nothing
            cache.clear()
        start, cpu_start = time.perf_counter(), time.process_time()
        explorer.redraw()
        durations.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        assert explorer.last_error is None, explorer.last_error
    with capsys.disabled():
        print(f"\nsample redraw at 100 steps ({explorer.values()}): "
              f"median {1000 * statistics.median(durations):.0f} ms wall, "
              f"{1000 * statistics.median(cpu_times):.0f} ms CPU, over {len(durations)} uncached redraws "
              f"with {torch.get_num_threads()} torch thread(s)")
    assert shown_png(explorer) is not None


# Values a student could type or a broken front end could send, per kind of control.
def bad_values(control, direct: bool = False) -> list:
    if hasattr(control, "_options_values"):
        return ["not an option", 3.5] + ([None] if direct else [])
    if isinstance(control.value, bool):
        return ["yes"]
    span = control.max - control.min
    values = [control.max + 10 * span + 1, control.min - 10 * span - 1, 10 ** 9, -(10 ** 9), "ten", None]
    if isinstance(control.value, float):
        values += [math.nan, math.inf, -math.inf]
    return values


@pytest.mark.parametrize("name", sorted(EXPLORER_MODELS))
def test_out_of_range_values_give_a_message(name, models_by_kind):
    """Out-of-range or ill-typed values are clamped or refused with a message in the Output area."""
    if name not in explorer_builders():
        pytest.skip(f"widgets.{name} does not exist")
    explorer = build(name, models_by_kind, n_samples=N_STRESS_SAMPLES)
    figures_before = len(plt.get_fignums())
    for description, control in explorer.controls.items():
        for value in bad_values(control):
            kept = control.value
            message = explorer.set(**{description: value})          # the Explorer's own entry point
            shown = shown_text(explorer)
            assert message, f"{name}: {description}={value!r} was taken silently (now {control.value!r})"
            assert "Traceback" not in shown and message.splitlines()[0] in shown, (
                f"{name}: the message for {description}={value!r} is not shown: {shown!r}")
            assert shown_png(explorer) is not None, f"{name}: the picture vanished after {description}={value!r}"
            now = control.value
            if hasattr(control, "_options_values"):
                assert now in control._options_values
            elif not isinstance(now, bool) and now == now:          # NaN is refused by the draw
                assert control.min <= now <= control.max, f"{description}={now!r} outside the slider range"
            control.value = kept
        # The same values sent straight to the control (as the front end's comm does): a slider
        # clamps them, anything else raises the widget's own TraitError, and nothing reaches
        # the Output area as a traceback.
        kept = control.value
        for value in bad_values(control, direct=True):
            try:
                control.value = value
            except Exception as error:
                assert type(error).__name__ == "TraitError", f"{description}={value!r} raised {error!r}"
            assert "Traceback" not in shown_text(explorer)
            assert explorer.last_error is None or explorer.last_error.startswith(("Refused", "Could not")), (
                explorer.last_error)
            assert "Could not draw" not in (explorer.last_error or ""), explorer.last_error
        control.value = kept
    assert len(plt.get_fignums()) == figures_before


@pytest.mark.slow
def test_live_trainings_started_paused_and_reset(capsys):
    """20 trainings started, watched (a frame, the t slider moved), paused and reset: no
    exception, no trainer left running, flat figures, bounded memory."""
    import threading

    rng = random.Random(99)
    explorer = widgets.training_explorer(batch_size=64, n_preview=200)
    figures_before = len(plt.get_fignums())
    baseline, steps = None, []
    for i in range(N_TRAININGS + 2):
        if i == 2:
            gc.collect()
            baseline = rss_mb()
        for name, control in explorer.settings.items():
            if rng.random() < 0.3:
                control.value = random_valid_value(control, rng)
        explorer.start()
        deadline = time.monotonic() + 30
        while explorer.trainer.n_steps < 10 and time.monotonic() < deadline:
            explorer.controls["t"].value = random_valid_value(explorer.controls["t"], rng)   # answers meanwhile
        explorer.pause()
        assert not explorer.trainer.running and explorer.last_error is None, explorer.last_error
        steps.append(explorer.trainer.n_steps)
        explorer.reset()
        assert explorer.trainer.n_steps == 0
        assert len(plt.get_fignums()) == figures_before
    gc.collect()
    growth = rss_mb() - baseline
    alive = [thread.name for thread in threading.enumerate() if thread.name == "live-trainer"]
    with capsys.disabled():
        print(f"\n{N_TRAININGS + 2} live trainings, {min(steps)} to {max(steps)} steps each; {explorer.n_redraws} "
              f"frames drawn; RSS growth {growth:+.1f} MB")
    assert not alive, f"trainer threads still running: {alive}"
    assert min(steps) >= 10 and "Traceback" not in shown_text(explorer)
    assert growth < MAX_RSS_GROWTH_MB, f"memory grew by {growth:.1f} MB over {N_TRAININGS} trainings"
