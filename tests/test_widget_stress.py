"""The explorers' kernel side under a heavy hand, without a browser.

Every explorer of ``widgets.EXPLORERS`` is driven as its front end drives it: a control moves
(``set``, what a synced setting does) and the browser asks for the learned views of the new
setting (a "request" message, answered through a stand-in for the comm). Nothing is stored at
construction, so every view is computed on request. Checked: no exception escapes, every request
is answered with a view, memory does not grow with use beyond the bounded cache of views, and
values no control offers (from Python or from a broken front end) end as a message, never a
traceback. The median time to answer a request is printed (run with -s); nothing is timed-asserted.

The live trainer is started, used, paused and reset 20 times. GEN_MODELS_STRESS_N sets the number
of random changes per explorer (default 150: about 1,000 over the seven explorers).

Memory is measured in a fresh process per workload (tests/_fresh_process.py), so the verdict does
not depend on which tests ran before in the pytest process. The workload warms up first, then samples
memory after every training (every fifth change for an explorer); the verdict is the growth per
training (per change) over those samples, a slope, so caches filling once do not count and a leak of
1 MB per training does (test_an_injected_leak_is_caught proves it).
"""
from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from pathlib import Path

import pytest
import torch

from _fresh_process import Memory, run_fresh, slope
from gen_models_utilities import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from gen_models_utilities import widgets
from gen_models_utilities.base_distributions import BASES
from gen_models_utilities.widgets import EXPLORERS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
N_CHANGES = int(os.environ.get("GEN_MODELS_STRESS_N", "150"))
N_TRAININGS = 20
WARM_UP = 25                  # changes before the memory baseline: first-use caches fill here
TRAINING_WARM_UP = 2          # trainings before the memory baseline
SAMPLE_EVERY = 5              # an explorer's memory is sampled every fifth change
# Limits on the growth of the heap (bytes held allocated, see _fresh_process.Memory) per step after the
# warm-up, less the explorer's own cache of computed views (bounded by the settings it offers). The
# injected leaks of test_an_injected_leak_is_caught (1 MB a training, 0.1 MB a change: 10 MB per 100
# changes) sit well above them.
MAX_HEAP_MB_PER_TRAINING = 0.2
MAX_HEAP_MB_PER_100_CHANGES = 2.0
LEAK_PROOF_TRAININGS = 8      # trainings of test_an_injected_leak_is_caught
MAX_RSS_GROWTH_MB = 50        # a coarse bound on the resident set over the measured part, for what the heap misses
_LEAKED: list = []            # where an injected leak keeps its tensors (test_an_injected_leak_is_caught)
N_STRESS_SAMPLES = 64         # particles per view in the volume test (same code path, less arithmetic)
# What each explorer draws from, given {kind: {base: model}}.
EXPLORER_MODELS = {
    "samples": lambda by_kind: by_kind["fm"],
    "field": lambda by_kind: by_kind["fm"],
    "modes": lambda by_kind: by_kind["onehot"],
    "radius": lambda by_kind: by_kind["radius"],
    "few_step": lambda by_kind: {"independent": by_kind["fm"]["gaussian"], "uniform base": by_kind["fm"]["uniform"]},
    "guidance": lambda by_kind: by_kind["onehot"]["gaussian"],
    "trainer": lambda by_kind: None,       # its own fresh model, on 1000 ring points
}
MODEL_CLASSES = {"fm": VelocityField, "onehot": ConditionalVelocityField, "radius": ConditionalVelocityFieldRadius}


def chapter_models(kind: str) -> dict:
    """{base: model} of ``kind``: the shipped checkpoints the notebook uses, else fresh (seeded) models."""
    from gen_models_utilities.pretrained import load_pretrained

    models = {}
    for base in BASES:
        try:
            models[base] = load_pretrained(kind, base)[0]
        except (FileNotFoundError, ValueError):
            torch.manual_seed(len(models))
            models[base] = MODEL_CLASSES[kind]().eval()
    return models


class _ModelsByKind(dict):
    """{kind: {base: model}}, each kind loaded when first asked for (a fresh process loads what it uses)."""

    def __missing__(self, kind):
        self[kind] = chapter_models(kind)
        return self[kind]


def build(name: str, models_by_kind, **options):
    """Explorer ``name`` over its models, nothing stored (options its builder does not take are dropped)."""
    import inspect

    builder = EXPLORERS[name].build
    accepted = inspect.signature(builder).parameters
    options = {key: value for key, value in {"store": False, **options}.items() if key in accepted}
    models = EXPLORER_MODELS[name](models_by_kind)
    return builder(**options) if models is None else builder(models, **options)


class Front:
    """A stand-in for the browser: records what the kernel sends and asks for views as the page does."""

    def __init__(self, explorer):
        self.explorer, self.sent = explorer, []
        explorer.send = lambda content, buffers=None: self.sent.append(content)

    def ask_for_views(self) -> list[dict]:
        """Request every learned layer's view of the current settings; the kernel's answers."""
        answers = []
        for layer in self.explorer.layers:
            self.explorer._on_message(self.explorer, {"kind": "request", "layer": layer,
                                                      "key": self.explorer.key(layer)}, [])
            answers.append(self.sent[-1])
        return answers


def random_valid_value(control, current, rng: random.Random):
    """A value the control offers, other than the current one."""
    return rng.choice([value for value in control.values if value != current])


def cached_views_mb(explorer) -> float:
    """MB held by the explorer's computed views (bounded: one per setting it offers)."""
    return sum(len(value) for view in explorer._computed.values() for value in view.values()
               if isinstance(value, bytes)) / 2 ** 20


def _leak(megabytes: float) -> None:
    """Keep ``megabytes`` MB alive for good: the deliberate leak of test_an_injected_leak_is_caught."""
    if megabytes:
        _LEAKED.append(torch.rand(int(megabytes * 2 ** 18)))        # float32: 2**18 numbers a MB, all written


def test_every_explorer_is_covered():
    """The stress tests know how to build every explorer of the table, and no notebook wires one itself."""
    assert set(EXPLORERS) == set(EXPLORER_MODELS), f"update EXPLORER_MODELS for {sorted(EXPLORERS)}"
    for notebook in NOTEBOOKS:
        source = "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]
                           if cell["cell_type"] == "code")
        for marker in ("interact(", "interactive(", ".observe(", "widgets.Output(", "AnyWidget"):
            assert marker not in source, (f"{notebook.name} wires a widget itself ({marker!r}); "
                                          "build it in gen_models_utilities.widgets so this test can drive it")


def explorer_workload(name: str, n_changes: int = N_CHANGES, warm_up: int = WARM_UP, leak_mb: float = 0.0) -> dict:
    """Run in a fresh process: ``warm_up`` + ``n_changes`` random valid changes of explorer ``name``, each
    followed by the front end's requests for the new setting's views. Asserts every request is answered
    with a view; returns the answer times and the memory sampled every SAMPLE_EVERY changes after warm-up."""
    memory = Memory()
    rng = random.Random(1234)
    explorer = build(name, _ModelsByKind(), n_samples=N_STRESS_SAMPLES)
    front = Front(explorer)
    controls = [control for control in explorer.controls.values() if len(control.values) > 1]
    durations, heap, rss, cached = [], [], [], []
    for i in range(n_changes + warm_up):
        if i >= warm_up and (i - warm_up) % SAMPLE_EVERY == 0:
            heap_now, rss_now = memory.sample()
            heap.append(heap_now)
            rss.append(rss_now)
            cached.append(cached_views_mb(explorer))
        control = rng.choice(controls)
        explorer.set(**{control.name: random_valid_value(control, explorer.settings[control.name], rng)})
        start = time.perf_counter()
        answers = front.ask_for_views()
        durations.append(time.perf_counter() - start)
        for answer in answers:
            assert answer["kind"] == "view", f"{name}: {explorer.settings} was answered with {answer}"
        _leak(leak_mb)
    return {"durations": durations, "heap_mb": None if heap[0] is None else heap, "rss_mb": rss,
            "cached_mb": cached, "n_views": len(explorer._computed), "torch_threads": torch.get_num_threads()}


def explorer_memory_verdict(run: dict) -> dict:
    """Heap growth per 100 changes (a slope, less the bounded cache of views) and the resident set's growth."""
    rss = run["rss_mb"]
    heap = None if run["heap_mb"] is None else [h - c for h, c in zip(run["heap_mb"], run["cached_mb"])]
    verdict = {"heap_per_100": None if heap is None else 100 * slope(heap) / SAMPLE_EVERY,
               "heap_growth": None if heap is None else heap[-1] - heap[0], "rss_growth": rss[-1] - rss[0]}
    n_changes = SAMPLE_EVERY * (len(rss) - 1)
    problems = []
    if verdict["heap_per_100"] is not None and verdict["heap_per_100"] >= MAX_HEAP_MB_PER_100_CHANGES:
        problems.append(f"the heap grew by {verdict['heap_per_100']:.2f} MB per 100 changes "
                        f"({verdict['heap_growth']:+.1f} MB over {n_changes} changes)")
    if verdict["rss_growth"] - (run["cached_mb"][-1] - run["cached_mb"][0]) >= MAX_RSS_GROWTH_MB:
        problems.append(f"resident memory grew by {verdict['rss_growth']:.1f} MB over {n_changes} changes")
    return {**verdict, "problem": "; ".join(problems) or None}


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in EXPLORERS if name != "trainer"])
def test_explorer_survives_random_use(name, capsys):
    """N_CHANGES random valid changes, each with its requests: every one answered, no memory growth."""
    run = run_fresh("test_widget_stress", "explorer_workload", timeout=120 + 3 * (N_CHANGES + WARM_UP),
                    name=name, n_changes=N_CHANGES)
    verdict = explorer_memory_verdict(run)
    with capsys.disabled():
        heap = ("heap not measured" if verdict["heap_per_100"] is None else
                f"heap {verdict['heap_per_100']:+.2f} MB per 100 changes ({verdict['heap_growth']:+.1f} MB in all)")
        print(f"\n{name}: {N_CHANGES + WARM_UP} random changes, the kernel's answers took "
              f"{1000 * statistics.median(run['durations'] or [math.nan]):.0f} ms (median), slowest "
              f"{1000 * max(run['durations'], default=0):.0f} ms; {run['n_views']} views computed; after {WARM_UP} "
              f"changes: {heap}, RSS {verdict['rss_growth']:+.1f} MB (n_samples={N_STRESS_SAMPLES})")
    assert verdict["problem"] is None, verdict["problem"]
    if verdict["heap_per_100"] is None:
        pytest.skip("the heap is measured with glibc's mallinfo2, missing here (the resident set was checked)")


def bad_values(control) -> list:
    """Values a student could type or a broken front end could send: none of them offered."""
    numbers = [value for value in control.values if isinstance(value, (int, float)) and not isinstance(value, bool)]
    values = ["not an option", None, [1], {"a": 1}]
    if numbers:
        values += [max(numbers) + 1000, min(numbers) - 1000, math.nan, math.inf, (numbers[0] + numbers[-1]) / 2 + 1e-3]
    return values


@pytest.fixture(scope="module")
def models_by_kind():
    torch.set_num_threads(1)
    return _ModelsByKind()


@pytest.mark.parametrize("name", list(EXPLORERS))
def test_values_no_control_offers_are_refused_by_name(name, models_by_kind):
    """From Python, ``set`` raises a ValueError naming the control and keeps the settings; from a broken
    front end (a request for a key no control offers), the kernel answers 'refused', never a traceback."""
    explorer = build(name, models_by_kind, n_samples=N_STRESS_SAMPLES)
    front = Front(explorer)
    for control in explorer.controls.values():
        for value in bad_values(control):
            kept = dict(explorer.settings)
            with pytest.raises(ValueError, match=f"{control.label} must be one of"):
                explorer.set(**{control.name: value})
            assert explorer.settings == kept
    for layer in explorer.layers:
        for key in ("", "nonsense", f"{explorer.layers[layer].keys[0]}=999", "t=0|t=1|t=2"):
            explorer._on_message(explorer, {"kind": "request", "layer": layer, "key": key}, [])
            assert front.sent[-1]["kind"] == "refused", (layer, key, front.sent[-1])
    if name == "trainer":                                  # settings straight from a broken front end
        explorer.settings = {**explorer.settings, "lr": 0.5}
        assert explorer.status.startswith("refused: learning rate must be one of")
        explorer.pause()


def training_workload(n_trainings: int = N_TRAININGS, warm_up: int = TRAINING_WARM_UP, leak_mb: float = 0.0) -> dict:
    """Run in a fresh process: ``warm_up`` + ``n_trainings`` live trainings started, watched (t moved while
    it trains), paused and reset, some settings changed before each. Asserts as it goes (no trainer left
    running); returns the steps of each training and the memory sampled after the warm-up and each training."""
    import threading

    memory = Memory()
    rng = random.Random(99)
    explorer = widgets.training_explorer(batch_size=64, n_preview=200)
    steps, heap, rss = [], [], []
    for i in range(warm_up + n_trainings):
        for control in explorer.controls.values():
            if rng.random() < 0.3:
                explorer.set(**{control.name: random_valid_value(control, explorer.settings[control.name], rng)})
        explorer.start()
        deadline = time.monotonic() + 30
        while explorer.trainer.n_steps < 10 and time.monotonic() < deadline:
            explorer.set(t=random_valid_value(explorer.controls["t"], explorer.settings["t"], rng))
        explorer.pause()
        assert not explorer.trainer.running and explorer.status.startswith("paused"), explorer.status
        steps.append(explorer.trainer.n_steps)
        explorer.reset()
        assert explorer.trainer.n_steps == 0
        _leak(leak_mb)
        if i >= warm_up - 1:                      # the baseline once warm, then after every training
            heap_now, rss_now = memory.sample()
            heap.append(heap_now)
            rss.append(rss_now)
    return {"steps": steps, "heap_mb": None if heap[0] is None else heap, "rss_mb": rss,
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
    """20 trainings started, watched, paused and reset: no trainer left running, no memory growth."""
    run = run_fresh("test_widget_stress", "training_workload")
    verdict = training_memory_verdict(run)
    steps = run["steps"]
    with capsys.disabled():
        heap = ("heap not measured" if verdict["heap_per_training"] is None else
                f"heap {verdict['heap_per_training']:+.3f} MB per training ({verdict['heap_growth']:+.1f} MB in all)")
        print(f"\n{len(steps)} live trainings, {min(steps)} to {max(steps)} steps each; after {TRAINING_WARM_UP} "
              f"trainings: {heap}, RSS {verdict['rss_growth']:+.1f} MB")
    assert not run["alive"], f"trainer threads still running: {run['alive']}"
    assert min(steps) >= 10
    assert verdict["problem"] is None, verdict["problem"]
    if verdict["heap_per_training"] is None:
        pytest.skip("the heap is measured with glibc's mallinfo2, missing here (the resident set was checked)")


@pytest.mark.slow
@pytest.mark.parametrize("workload, leak_mb", [("training", 1.0), ("guidance", 0.1)])
def test_an_injected_leak_is_caught(workload, leak_mb, capsys):
    """The memory verdicts above catch a real leak: ``leak_mb`` MB kept alive after every training
    (every change of an explorer), in the same fresh-process workload and verdict."""
    if workload == "training":
        run = run_fresh("test_widget_stress", "training_workload", n_trainings=LEAK_PROOF_TRAININGS, leak_mb=leak_mb)
        verdict, measured, unit = training_memory_verdict(run), "heap_per_training", "MB per training"
    else:
        run = run_fresh("test_widget_stress", "explorer_workload", timeout=600, name=workload, leak_mb=leak_mb)
        verdict, measured, unit = explorer_memory_verdict(run), "heap_per_100", "MB per 100 changes"
    if verdict[measured] is None:
        pytest.skip("the heap is measured with glibc's mallinfo2, missing here")
    with capsys.disabled():
        print(f"\n{workload} leaking {leak_mb} MB a step: heap {verdict[measured]:+.2f} {unit}, "
              f"RSS {verdict['rss_growth']:+.1f} MB; verdict: {verdict['problem']}")
    assert verdict["problem"] is not None, f"a leak of {leak_mb} MB a step went unnoticed: {verdict}"
