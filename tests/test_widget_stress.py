"""The chapter's widgets under a heavy hand, without a browser.

Every explorer of the suite (the ``*_explorer`` builders of gen_models_utilities.widgets,
the chapter's, 17a's and 17b's) is driven through its controls, as the front end would drive
it: ``control.value = ...`` fires the same callback a slider drag or a dropdown choice
fires in JupyterLab. Checked: no exception escapes, no valid value is refused, the number
of open matplotlib figures stays flat, memory does not grow with use, and values out of range
or of the wrong type end as a visible message, never a traceback. The median callback time is
printed (run with -s to see it); nothing is timed-asserted.

Quick pictures (what a drag shows) are drawn on each change; every fifth change the controls
"rest" and the full picture is drawn (``settle()``), as the explorer's timer would do. The live
trainer is started, used, paused and reset 20 times. GEN_MODELS_STRESS_N sets the number of
random changes per explorer (default 150: about 1,000 over the seven explorers).

Memory is measured in a fresh process per workload (tests/_fresh_process.py), so the verdict
does not depend on which tests ran before in the pytest process. The workload warms up first,
then samples memory after every training (every fifth change for an explorer); the verdict is
the growth per training (per change) over those samples, a slope, so caches filling once do not
count and a leak of 1 MB per training does (test_an_injected_leak_is_caught proves it).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from _fresh_process import Memory, run_fresh, slope
from gen_models_utilities import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from gen_models_utilities import widgets
from gen_models_utilities.base_distributions import BASES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
N_CHANGES = int(os.environ.get("GEN_MODELS_STRESS_N", "150"))
N_TRAININGS = 20
WARM_UP = 25                  # changes before the memory baseline: first-use caches fill here
TRAINING_WARM_UP = 2          # trainings before the memory baseline
SAMPLE_EVERY = 5              # an explorer's memory is sampled when its controls rest (every fifth change)
# Limits on the growth of the heap (bytes held allocated, see _fresh_process.Memory) per step after
# the warm-up, from measured runs (torch 2.13 CPU, glibc 2.36, five fresh runs of each workload):
# 20 trainings grew it by 0.003 to 0.019 MB per training, and by 1.00 to 1.03 with 1 MB leaked per
# training (0.26 with 0.25 MB); the explorers by 0.02 (training_explorer) to 0.15 (few_step_explorer)
# MB per 100 changes, and by 10.1 to 10.2 with 0.1 MB leaked per change. Each limit sits about 10x
# above the largest honest slope and 5x below the injected leak's.
MAX_HEAP_MB_PER_TRAINING = 0.2
MAX_HEAP_MB_PER_100_CHANGES = 2.0
LEAK_PROOF_TRAININGS = 8      # trainings of test_an_injected_leak_is_caught
MAX_RSS_GROWTH_MB = 50        # a coarse bound on the resident set over the measured part, for what the heap
                              # misses (measured: 3 to 9 MB over 20 trainings, under 2 MB for an explorer)
_LEAKED: list = []            # where an injected leak keeps its tensors (test_an_injected_leak_is_caught)
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


class _ModelsByKind(dict):
    """{kind: {base: model}}, each kind loaded when first asked for (a fresh process loads what it uses)."""

    def __missing__(self, kind):
        self[kind] = chapter_models(kind)
        return self[kind]


def _leak(megabytes: float) -> None:
    """Keep ``megabytes`` MB alive for good: the deliberate leak of test_an_injected_leak_is_caught."""
    if megabytes:
        _LEAKED.append(torch.rand(int(megabytes * 2 ** 18)))        # float32: 2**18 numbers a MB, all written


def explorer_workload(name: str, n_changes: int = N_CHANGES, warm_up: int = WARM_UP, leak_mb: float = 0.0) -> dict:
    """Run in a fresh process: ``warm_up`` + ``n_changes`` random valid changes of explorer ``name``.

    Asserts as it goes (no refusal, one redraw per change, flat figures); returns the callback
    times and the memory sampled after the warm-up and every SAMPLE_EVERY changes after it.
    ``leak_mb``: MB leaked on purpose after every change.
    """
    widgets.Explorer.SETTLE_SECONDS = None        # the controls rest when the workload says so (settle())
    memory = Memory()
    rng = random.Random(1234)
    explorer = build(name, _ModelsByKind(), n_samples=N_STRESS_SAMPLES)
    controls = list(explorer.controls.items())
    figures_before = len(plt.get_fignums())
    durations, cpu_times, cached_durations, heap, rss, cached_mb = [], [], [], [], [], []

    def sample_memory():
        heap_now, rss_now = memory.sample()
        heap.append(heap_now)
        rss.append(rss_now)
        cached_mb.append(picture_cache_mb(explorer))

    for i in range(n_changes + warm_up):
        if i >= warm_up and (i - warm_up) % SAMPLE_EVERY == 0:
            sample_memory()
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
        _leak(leak_mb)
    sample_memory()
    return {"durations": durations, "cpu_times": cpu_times, "n_cached": len(cached_durations),
            "heap_mb": None if heap[0] is None else heap, "rss_mb": rss, "cached_mb": cached_mb,
            "cache_size": len(getattr(explorer, "_cache", ())), "cache_limit": explorer.CACHE_SIZE,
            "shows_picture": shown_png(explorer) is not None, "traceback": "Traceback" in shown_text(explorer),
            "torch_threads": torch.get_num_threads()}


def picture_cache_mb(explorer) -> float:
    """MB held by the explorer's cache of full pictures (PNG bytes and text), bounded by its CACHE_SIZE."""
    return sum(sys.getsizeof(png) + sys.getsizeof(text)
               for png, text in getattr(explorer, "_cache", {}).values()) / 2 ** 20


def explorer_memory_verdict(run: dict) -> dict:
    """Heap growth per 100 changes (a slope) and the resident set's growth, from an explorer_workload run.

    The picture cache fills over hundreds of changes (32 PNGs of up to ~65 kB), which is growth
    with a limit, checked on its own (cache_size <= cache_limit): its bytes are left out of the slope.
    """
    rss = run["rss_mb"]
    heap = None if run["heap_mb"] is None else [h - c for h, c in zip(run["heap_mb"], run["cached_mb"])]
    verdict = {"heap_per_100": None if heap is None else 100 * slope(heap) / SAMPLE_EVERY,
               "heap_growth": None if heap is None else heap[-1] - heap[0], "rss_growth": rss[-1] - rss[0]}
    n_changes = SAMPLE_EVERY * (len(rss) - 1)
    problems = []
    if verdict["heap_per_100"] is not None and verdict["heap_per_100"] >= MAX_HEAP_MB_PER_100_CHANGES:
        problems.append(f"the heap grew by {verdict['heap_per_100']:.2f} MB per 100 changes "
                        f"({verdict['heap_growth']:+.1f} MB over {n_changes} changes)")
    if verdict["rss_growth"] >= MAX_RSS_GROWTH_MB:
        problems.append(f"resident memory grew by {verdict['rss_growth']:.1f} MB over {n_changes} changes")
    return {**verdict, "problem": "; ".join(problems) or None}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPLORER_MODELS))
def test_explorer_survives_random_use(name, capsys):
    """N_CHANGES random valid changes: no exception, no refusal, flat figures, no memory growth.

    Memory, in a fresh process after WARM_UP changes, sampled every fifth change: the heap (less
    the bounded picture cache) grows by less than MAX_HEAP_MB_PER_100_CHANGES per 100 changes, the
    resident set by less than MAX_RSS_GROWTH_MB over the N_CHANGES changes.
    """
    if name not in explorer_builders():
        pytest.skip(f"widgets.{name} does not exist")
    run = run_fresh("test_widget_stress", "explorer_workload", timeout=120 + 1.5 * (N_CHANGES + WARM_UP),
                    name=name, n_changes=N_CHANGES)
    verdict = explorer_memory_verdict(run)
    durations, cpu_times = run["durations"], run["cpu_times"]
    with capsys.disabled():
        wall = 1000 * statistics.median(durations or [math.nan])
        cpu = 1000 * statistics.median(cpu_times or [math.nan])
        heap = ("heap not measured" if verdict["heap_per_100"] is None else
                f"heap {verdict['heap_per_100']:+.2f} MB per 100 changes ({verdict['heap_growth']:+.1f} MB in all)")
        print(f"\n{name}: {N_CHANGES + WARM_UP} random changes; when drawn ({len(durations)}x) the median "
              f"callback took {wall:.0f} ms wall, {cpu:.0f} ms CPU (slowest {1000 * max(durations, default=0):.0f} "
              f"ms); {run['n_cached']} came from the picture cache; after {WARM_UP} changes: {heap}, RSS "
              f"{verdict['rss_growth']:+.1f} MB (n_samples={N_STRESS_SAMPLES}, torch threads {run['torch_threads']})")
    assert run["shows_picture"], "the explorer shows no picture after the run"
    assert run["cache_size"] <= run["cache_limit"], f"{run['cache_size']} pictures cached, over {run['cache_limit']}"
    assert not run["traceback"], "a traceback is shown below the picture"
    assert verdict["problem"] is None, verdict["problem"]
    if verdict["heap_per_100"] is None:
        pytest.skip("the heap is measured with glibc's mallinfo2, missing here (the resident set was checked)")


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


def training_workload(n_trainings: int = N_TRAININGS, warm_up: int = TRAINING_WARM_UP, leak_mb: float = 0.0) -> dict:
    """Run in a fresh process: ``warm_up`` + ``n_trainings`` live trainings started, watched (a
    frame, the t slider moved), paused and reset, some settings changed before each.

    Asserts as it goes (no error, no trainer left running, flat figures); returns the steps of
    each training and the memory sampled after the warm-up and after every training since.
    ``leak_mb``: MB leaked on purpose after every training.
    """
    import threading

    widgets.Explorer.SETTLE_SECONDS = None
    memory = Memory()
    rng = random.Random(99)
    explorer = widgets.training_explorer(batch_size=64, n_preview=200)
    figures_before = len(plt.get_fignums())
    steps, heap, rss = [], [], []
    for i in range(warm_up + n_trainings):
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
        _leak(leak_mb)
        if i >= warm_up - 1:                      # the baseline once warm, then after every training
            heap_now, rss_now = memory.sample()
            heap.append(heap_now)
            rss.append(rss_now)
    return {"steps": steps, "n_redraws": explorer.n_redraws, "heap_mb": None if heap[0] is None else heap,
            "rss_mb": rss, "traceback": "Traceback" in shown_text(explorer),
            "alive": [thread.name for thread in threading.enumerate() if thread.name == "live-trainer"]}


def training_memory_verdict(run: dict) -> dict:
    """Heap growth per training (a slope) and the resident set's growth, from a training_workload run."""
    heap, rss = run["heap_mb"], run["rss_mb"]
    verdict = {"heap_per_training": None if heap is None else slope(heap),
               "heap_growth": None if heap is None else heap[-1] - heap[0], "rss_growth": rss[-1] - rss[0]}
    n_trainings = len(rss) - 1
    problems = []
    if verdict["heap_per_training"] is not None and verdict["heap_per_training"] >= MAX_HEAP_MB_PER_TRAINING:
        problems.append(f"the heap grew by {verdict['heap_per_training']:.2f} MB per training "
                        f"({verdict['heap_growth']:+.1f} MB over {n_trainings} trainings)")
    if verdict["rss_growth"] >= MAX_RSS_GROWTH_MB:
        problems.append(f"resident memory grew by {verdict['rss_growth']:.1f} MB over {n_trainings} trainings")
    return {**verdict, "problem": "; ".join(problems) or None}


@pytest.mark.slow
def test_live_trainings_started_paused_and_reset(capsys):
    """20 trainings started, watched (a frame, the t slider moved), paused and reset: no
    exception, no trainer left running, flat figures, no memory growth.

    Memory, in a fresh process after TRAINING_WARM_UP trainings, sampled after each training:
    the heap grows by less than MAX_HEAP_MB_PER_TRAINING per training, the resident set by less
    than MAX_RSS_GROWTH_MB over the 20 trainings.
    """
    run = run_fresh("test_widget_stress", "training_workload")
    verdict = training_memory_verdict(run)
    steps = run["steps"]
    with capsys.disabled():
        heap = ("heap not measured" if verdict["heap_per_training"] is None else
                f"heap {verdict['heap_per_training']:+.3f} MB per training ({verdict['heap_growth']:+.1f} MB in all)")
        print(f"\n{len(steps)} live trainings, {min(steps)} to {max(steps)} steps each; {run['n_redraws']} "
              f"frames drawn; after {TRAINING_WARM_UP} trainings: {heap}, RSS {verdict['rss_growth']:+.1f} MB")
    assert not run["alive"], f"trainer threads still running: {run['alive']}"
    assert min(steps) >= 10 and not run["traceback"]
    assert verdict["problem"] is None, verdict["problem"]
    if verdict["heap_per_training"] is None:
        pytest.skip("the heap is measured with glibc's mallinfo2, missing here (the resident set was checked)")


@pytest.mark.slow
@pytest.mark.parametrize("workload, leak_mb", [("training", 1.0), ("guidance_explorer", 0.1)])
def test_an_injected_leak_is_caught(workload, leak_mb, capsys):
    """The memory verdicts above catch a real leak: ``leak_mb`` MB kept alive after every training
    (every change of an explorer), in the same fresh-process workload and verdict.

    Shorter runs than the tests' own (LEAK_PROOF_TRAININGS trainings; the quickest explorer): the
    slope is growth per step, so the run's length does not change what it measures.
    """
    if workload == "training":
        run = run_fresh("test_widget_stress", "training_workload", n_trainings=LEAK_PROOF_TRAININGS, leak_mb=leak_mb)
        verdict, measured, unit = training_memory_verdict(run), "heap_per_training", "MB per training"
    else:
        run = run_fresh("test_widget_stress", "explorer_workload", name=workload, leak_mb=leak_mb)
        verdict, measured, unit = explorer_memory_verdict(run), "heap_per_100", "MB per 100 changes"
    if verdict[measured] is None:
        pytest.skip("the heap is measured with glibc's mallinfo2, missing here")
    with capsys.disabled():
        print(f"\n{workload} leaking {leak_mb} MB a step: heap {verdict[measured]:+.2f} {unit}, "
              f"RSS {verdict['rss_growth']:+.1f} MB; verdict: {verdict['problem']}")
    assert verdict["problem"] is not None, f"a leak of {leak_mb} MB a step went unnoticed: {verdict}"
