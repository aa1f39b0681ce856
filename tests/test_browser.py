"""The explorers in a real browser: Debian's Chromium, driven by Playwright.

Three parts:

* **Parity**: explorer.js's exact fields (the ring's marginal field, one mode's field, guidance on
  them), its fixed-step solvers and its mode counts, evaluated in Chromium at fixed inputs, against
  ``marginal_field`` and ``solvers`` in float32: the largest difference is at most 1e-5.
* **A page without a kernel**: every explorer of ``widgets.EXPLORERS``, built from the shipped
  checkpoints, drawn by explorer.js from its saved state alone (a stand-in for the widget model,
  as the book site's manager gives it): drawn and not blank, redrawn when its control moves, the
  exact field at the flip of a control, and a setting that was not stored says so.
* **A lecture in JupyterLab**: JupyterLab on 127.0.0.1 with a random port and token opens a notebook
  of every explorer (``benchmarks.widget.write_explorer_notebook``, nothing stored, so every learned
  view is asked of the kernel), runs every cell, moves every explorer's control, drags a slider,
  starts and pauses the live trainer. No traceback may appear anywhere. The time from each input
  event to the new frame is printed, never asserted (``make bench`` reports it).

Screenshots go to tests/artifacts/ (ignored by git). The README's figures/jupyterlab_widgets.png and
figures/live_trainer.png are written when missing or when GEN_MODELS_UPDATE_FIGURES=1.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.widget import (KERNEL_STATE_JS, VIEWPORT, LabServer, control, explorer, find_chromium,
                               measure_frames, open_page, summary, write_explorer_notebook)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "gen_models_utilities" / "widgets" / "explorer.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
FIGURE = ROOT / "figures" / "jupyterlab_widgets.png"
TRAINER_FIGURE = ROOT / "figures" / "live_trainer.png"
ORIGIN = "http://explorer.test"
PARITY_TOLERANCE = 1e-5
RUN_ALL_TIMEOUT = 600          # seconds for the whole notebook (generous: CI machines are shared)


def skip_loudly(reason: str):
    """Skip with a reason that also shows up as a warning in the summary."""
    warnings.warn(f"BROWSER TEST SKIPPED: {reason}", stacklevel=2)
    pytest.skip(f"BROWSER TEST SKIPPED: {reason}")


@pytest.fixture(scope="module")
def playwright_instance():
    if find_chromium() is None:
        skip_loudly("Debian's chromium is not installed (run `make browser-deps` as root, "
                    "or `apt-get install chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_loudly("playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser_page(playwright_instance, tmp_path):
    """A Chromium page in a fresh profile, collecting JavaScript errors in ``page.js_errors``."""
    context, page = open_page(playwright_instance, tmp_path / "chromium-profile")
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.on("console", lambda message: page.js_errors.append(message.text) if message.type == "error" else None)
    try:
        yield page
    finally:
        context.close()


# A blank page that imports explorer.js and draws an explorer from a saved state with a stand-in
# for the widget model: get/set/on/off, a save_changes and a send that go nowhere (no kernel).
BLANK_PAGE = """<!doctype html><html><body><div id="explorers"></div><script type="module">
window.show = async (saved) => {
  const module = await import('/explorer.js');
  const state = saved.state;
  saved.paths.forEach((path, i) => {
    const raw = Uint8Array.from(atob(saved.buffers[i]), c => c.charCodeAt(0));
    let target = state;
    for (const key of path.slice(0, -1)) target = target[key];
    target[path[path.length - 1]] = new DataView(raw.buffer);
  });
  const listeners = {};
  const changed = k => (listeners['change:' + k] || []).forEach(f => f());
  const model = {get: k => state[k], set: (k, v) => { state[k] = v; changed(k); },
                 save_changes() { throw new Error('no comm channel'); }, send() {},
                 on(e, f) { (listeners[e] ||= []).push(f); }, off() {}};
  const el = document.createElement('div');
  document.getElementById('explorers').append(el);
  module.default.render({model, el});
};
window.loaded = import('/explorer.js').then(m => { window.explorerModule = m; return true; });
</script></body></html>"""


@pytest.fixture
def module_page(browser_page):
    """The blank page, served from a made-up origin (nothing leaves the machine)."""
    page = browser_page
    page.route(f"{ORIGIN}/**", lambda route: route.fulfill(
        body=MODULE.read_text() if route.request.url.endswith(".js") else BLANK_PAGE,
        content_type="text/javascript" if route.request.url.endswith(".js") else "text/html"))
    page.goto(f"{ORIGIN}/index.html")
    page.wait_for_function("window.explorerModule !== undefined")
    return page


def saved_state(widget) -> dict:
    """The widget's state as a notebook saves it: JSON, with its binary parts in base64."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, paths, buffers = _remove_buffers(widget.get_state())
    return {"state": state, "paths": paths, "buffers": [base64.b64encode(bytes(b)).decode() for b in buffers]}


# ------------------------------------------------------------------------------------------
# Parity: the browser's exact fields and solvers against marginal_field and solvers

PARITY_JS = """({x, times, centers, std, mode, w, steps}) => {
    const m = window.explorerModule, flat = Float64Array.from(x.flat()), out = {};
    const ring = m.ringField(Float64Array.from(centers.flat()), std);
    const one = m.ringField(Float64Array.from(centers[mode]), std);
    const guided = m.guidedField(ring, one, w);
    const at = (field, t) => Array.from(field(flat, t, new Float64Array(flat.length)));
    out.ring = times.map(t => at(ring, t));
    out.mode = times.map(t => at(one, t));
    out.guided = times.map(t => at(guided, t));
    out.paths = {};
    for (const method of Object.keys(m.SOLVERS))
        for (const n of steps)
            out.paths[`${method}/${n}`] = Array.from(m.solve(ring, Float32Array.from(x.flat()), n, method));
    out.guided_path = Array.from(m.solve(guided, Float32Array.from(x.flat()), 10, 'euler'));
    out.counts = m.modeCounts(Float32Array.from(x.flat()), Float64Array.from(centers.flat()), 3 * std);
    return out;
}"""


def test_the_browsers_exact_fields_and_solvers_match_python(module_page):
    from gen_models_utilities.marginal_field import RingMarginalField
    from gen_models_utilities.metrics import off_mode_fraction, samples_per_mode
    from gen_models_utilities.solvers import solve_ode, solver_names

    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 2, generator=generator) * 2.5).float()
    times, steps, mode, w = [0.0, 0.1, 0.37, 0.5, 0.9, 1.0], [1, 3, 10], 3, 2.5
    ring = RingMarginalField()
    one = RingMarginalField()
    one.centers = ring.centers[mode:mode + 1]                      # the flow to mode 3 alone
    got = module_page.evaluate(PARITY_JS, {"x": x.tolist(), "times": times, "centers": ring.centers.tolist(),
                                           "std": ring.std, "mode": mode, "w": w, "steps": steps})

    def guided(points, t):
        return ring(points, t) + w * (one(points, t) - ring(points, t))

    worst = {}
    for i, t in enumerate(times):
        for name, field in (("ring", ring), ("mode", one), ("guided", guided)):
            expected = field(x, t).numpy().ravel()
            worst[f"{name} t={t}"] = np.abs(np.float32(got[name][i]) - expected).max()
    assert set(solver_names(adaptive=False)) <= {key.split("/")[0] for key in got["paths"]}
    for key, path in got["paths"].items():
        method, n = key.split("/")
        expected = solve_ode(ring, x, n_steps=int(n), method=method, return_trajectory=True).trajectory.numpy()
        worst[key] = np.abs(np.asarray(path, np.float32).reshape(expected.shape) - expected).max()
    expected = solve_ode(guided, x, n_steps=10, method="euler", return_trajectory=True).trajectory.numpy()
    browser = np.asarray(got["guided_path"], np.float32).reshape(expected.shape)
    worst["guided euler/10"] = np.abs(browser - expected).max()
    print(f"\nlargest |browser - python| over {len(worst)} fields and solves: {max(worst.values()):.2e}")
    too_far = {key: value for key, value in worst.items() if value > PARITY_TOLERANCE}
    assert not too_far, f"explorer.js differs from Python by more than {PARITY_TOLERANCE}: {too_far}"
    assert got["counts"]["off"] == round(off_mode_fraction(x) * len(x))
    assert got["counts"]["perMode"] == samples_per_mode(x).tolist()


# ------------------------------------------------------------------------------------------
# A page without a kernel

CANVAS_JS = """(root) => {
    const canvas = root.querySelectorAll('canvas')[root.querySelectorAll('canvas').length - 1];
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = 0, hash = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i] < 235 || pixels[i + 1] < 235 || pixels[i + 2] < 235) inked++;
        hash = (hash * 31 + pixels[i] + 7 * pixels[i + 1] + 13 * pixels[i + 2]) % 1000000007;
    }
    return {inked: inked / (pixels.length / 4), hash, frames: Number(root.dataset.frames),
            view: root.dataset.view || null, text: root.querySelector('.gm-text').textContent};
}"""


def canvas_state(root) -> dict:
    return root.evaluate(CANVAS_JS)


@pytest.fixture(scope="module")
def shipped_explorers():
    """Every explorer of EXPLORERS, built as its example builds it in the notebooks' kernels."""
    from gen_models_utilities import pretrained, widgets
    from gen_models_utilities.widgets import EXPLORERS

    torch.set_num_threads(1)
    namespace = {"widgets": widgets, "pretrained": pretrained, "fm_models": pretrained.PretrainedModels("fm"),
                 "onehot_models": pretrained.PretrainedModels("onehot"),
                 "radius_models": pretrained.PretrainedModels("radius")}
    return {name: eval(entry.example, namespace) for name, entry in EXPLORERS.items()}


def test_every_explorer_draws_from_its_saved_state_alone(module_page, shipped_explorers, tmp_path):
    from gen_models_utilities.widgets import EXPLORERS

    page = module_page
    for name, widget in shipped_explorers.items():
        page.evaluate("saved => window.show(saved)", saved_state(widget))
        root = explorer(page, name)
        root.wait_for()
        first = canvas_state(root)
        assert first["inked"] > 0.02, f"{name}: the canvas is (almost) blank: {first}"
        assert "not stored" not in first["text"], f"{name}: the saved state lacks its first view: {first['text']}"
        frames = measure_frames(page, root, EXPLORERS[name].move, repeats=3)
        after = canvas_state(root)
        assert after["frames"] >= first["frames"] + 3 and after["hash"] != first["hash"], (
            f"{name}: moving {EXPLORERS[name].move!r} did not redraw: {first} -> {after}")
        print(f"\n{name}: input to new frame without a kernel {summary(frames)['median']:.1f} ms (median of 3)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorers_without_kernel.png"), full_page=True)
    assert not page.js_errors, page.js_errors


def test_the_exact_field_is_computed_by_the_browser(module_page, shipped_explorers):
    page = module_page
    for name in ("samples", "field", "modes", "guidance", "few_step"):
        page.evaluate("saved => window.show(saved)", saved_state(shipped_explorers[name]))
        root = explorer(page, name)
        control(root, "field").select_option(label="exact")
        page.wait_for_function("root => root.dataset.view === 'exact'", arg=root.element_handle())
        assert canvas_state(root)["inked"] > 0.02, f"{name}: the exact view is blank"
    assert not page.js_errors, page.js_errors


def test_a_setting_not_stored_says_so(module_page):
    from gen_models_utilities import pretrained, widgets

    page = module_page
    bare = widgets.sample_explorer({"gaussian": pretrained.PretrainedModels("fm")["gaussian"]}, n_steps=8, store=False)
    page.evaluate("saved => window.show(saved)", saved_state(bare))
    root = explorer(page, "samples")
    page.wait_for_function("root => root.dataset.frames > 0", arg=root.element_handle())
    shown = canvas_state(root)
    assert shown["view"] == "message" and shown["text"] == "not stored on this page: run the notebook"
    assert shown["inked"] > 0.02, "a setting not stored left a blank canvas"
    trainer = widgets.training_explorer(n_preview=50)
    page.evaluate("saved => window.show(saved)", saved_state(trainer))
    root = explorer(page, "trainer")
    root.locator("button", has_text="Start").click()
    assert root.locator(".gm-status").inner_text() == "training needs a running kernel: run the notebook"
    assert not page.js_errors, page.js_errors


# ------------------------------------------------------------------------------------------
# A lecture in JupyterLab

NOTEBOOK_NAME = "explorers.ipynb"
# Errors the kernel sends outside any cell (e.g. from a widget's message handler) reach the page as
# iopub messages; collect them from the moment the kernel is ready.
WATCH_KERNEL_JS = """() => {
    window.__kernelErrors = [];
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    kernel.iopubMessage.connect((_, msg) => {
        const type = msg.header.msg_type;
        if (type === 'error') window.__kernelErrors.push(msg.content.ename + ': ' + msg.content.evalue);
        if (type === 'stream' && /Traceback/.test(msg.content.text)) window.__kernelErrors.push(msg.content.text);
    });
}"""
MODEL_ERRORS_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget, found = [];
    for (const cell of panel.content.widgets) {
        if (cell.model.type !== 'code') continue;
        const outputs = cell.model.outputs;
        for (let i = 0; i < outputs.length; i++) {
            const output = outputs.get(i).toJSON();
            if (output.output_type === 'error') found.push(output.ename + ': ' + output.evalue);
        }
    }
    return found;
}"""


@pytest.fixture
def lab(tmp_path):
    """A running JupyterLab over a notebook of every explorer (nothing stored), written in tmp."""
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    write_explorer_notebook(workdir / NOTEBOOK_NAME, projector=True, store=False)
    server = LabServer(workdir, home)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    """Poll ``predicate()`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")


def run_all(page, lab: LabServer) -> float:
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK_NAME}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    wait_for(lambda: page.evaluate(KERNEL_STATE_JS).get("status") == "idle", 90, "the kernel to start")
    page.evaluate(WATCH_KERNEL_JS)
    start = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    def done():
        state = page.evaluate(KERNEL_STATE_JS)
        return state["unrun"] == 0 and state["status"] == "idle" and state["busy_prompts"] == 0
    wait_for(done, RUN_ALL_TIMEOUT, "every cell to run")
    return time.monotonic() - start


def problems_on_page(page, lab) -> list[str]:
    """Every sign of failure visible on the page or in the server's log."""
    problems = [f"error output in a cell: {text}" for text in page.evaluate(MODEL_ERRORS_JS)]
    problems += [f"kernel error outside a cell: {text[:300]}" for text in page.evaluate("() => window.__kernelErrors")]
    body = page.locator(".jp-Notebook").inner_text()
    for marker in ("Error displaying widget", "Error rendering output", "model not found", " explorer: {",
                   "could not compute this view", "Traceback"):
        if marker in body:
            problems.append(f"page says {marker!r}")
    problems += [f"JavaScript error: {text[:300]}" for text in page.js_errors]
    if "Traceback" in lab.log_tail(200_000):
        problems.append(f"the server or kernel logged a traceback:\n{lab.log_tail()}")
    return problems


def learned_and_live(root) -> bool:
    return root.evaluate("root => root.dataset.kernel === 'live' && root.dataset.view === 'learned'")


def test_lecture_in_jupyterlab(lab, browser_page):
    from gen_models_utilities.widgets import EXPLORERS

    page = browser_page
    started = time.monotonic()
    run_seconds = run_all(page, lab)
    problems = problems_on_page(page, lab)
    assert not problems, "after running every cell:\n" + "\n".join(problems)
    assert page.locator(".jp-Notebook .gm-explorer").count() == len(EXPLORERS), "not every explorer was drawn"

    # Every explorer asks the kernel for its learned view, draws it, and redraws when its control moves.
    latencies = {}
    for name, entry in EXPLORERS.items():
        root = explorer(page, name)
        root.scroll_into_view_if_needed()
        if name != "trainer":
            wait_for(lambda: learned_and_live(root), 60, f"the {name} explorer's first learned view from the kernel")
        before = canvas_state(root)
        assert before["inked"] > 0.02, f"{name}: blank canvas in JupyterLab"
        latencies[name] = summary(measure_frames(page, root, entry.move, repeats=5))   # odd: it ends elsewhere
        assert canvas_state(root)["hash"] != before["hash"], f"moving {entry.move!r} did not change the {name} picture"
    print("\ninput to new frame in JupyterLab, median/p95 over 5 changes: "
          + "; ".join(f"{name} {v['median']:.0f}/{v['p95']:.0f} ms" for name, v in latencies.items()))
    if not FIGURE.exists() or os.environ.get("GEN_MODELS_UPDATE_FIGURES") == "1":
        save_clean_figure(page, explorer(page, "samples"), FIGURE)

    # A setting the kernel has not computed yet: the view comes back from the kernel.
    samples = explorer(page, "samples")
    samples.scroll_into_view_if_needed()
    control(samples, "solver").select_option(label="rk4")
    wait_for(lambda: learned_and_live(samples) and "rk4" in canvas_state(samples)["text"], 60,
             "the kernel's RK4 paths")
    # A drag of the t slider: every position on the way is drawn.
    slider = control(samples, "t")
    box = slider.bounding_box()
    frames = canvas_state(samples)["frames"]
    page.mouse.move(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(box["x"] + box["width"] * (1 - i / 22), box["y"] + box["height"] / 2)
    page.mouse.up()
    wait_for(lambda: canvas_state(samples)["frames"] > frames, 10, "frames while dragging t")
    assert float(slider.evaluate("el => el.value")) < float(slider.evaluate("el => el.max")), "the drag did not move t"
    control(samples, "field").select_option(label="exact")
    wait_for(lambda: samples.get_attribute("data-view") == "exact", 10, "the exact field")

    # The live trainer: Start, watch frames arrive while another explorer answers, Pause.
    trainer = explorer(page, "trainer")
    trainer.scroll_into_view_if_needed()
    first = canvas_state(trainer)["hash"]
    trainer.locator("button", has_text="Start").click()
    seen = {first}
    deadline = time.monotonic() + 60
    while len(seen) < 4 and time.monotonic() < deadline:
        seen.add(canvas_state(trainer)["hash"])
        time.sleep(0.2)
    assert len(seen) >= 4, f"the trainer's picture changed {len(seen) - 1} times in 60 s of training"
    while_training = summary(measure_frames(page, explorer(page, "field"), "t", repeats=3))
    trainer.scroll_into_view_if_needed()
    time.sleep(2.0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live_trainer_running.png"))
    if not TRAINER_FIGURE.exists() or os.environ.get("GEN_MODELS_UPDATE_FIGURES") == "1":
        save_clean_figure(page, trainer, TRAINER_FIGURE)
    trainer.locator("button", has_text="Pause").click()
    status = trainer.locator(".gm-status")
    wait_for(lambda: status.inner_text().startswith("paused"), 30, "the trainer to say it paused")
    paused = canvas_state(trainer)["hash"]
    time.sleep(1.0)
    assert canvas_state(trainer)["hash"] == paused, "the trainer's picture kept changing after Pause"
    steps_done = int(status.inner_text().split()[-1])
    assert steps_done > 0, f"the status says {status.inner_text()!r}"

    problems = problems_on_page(page, lab)
    assert not problems, "after using the explorers:\n" + "\n".join(problems)
    print(f"\nthe field explorer while the trainer trains: {while_training['median']:.0f}/"
          f"{while_training['p95']:.0f} ms; trainer: {steps_done} steps; run all cells {run_seconds:.1f} s; "
          f"whole session {time.monotonic() - started:.1f} s")


def save_clean_figure(page, root, path: Path) -> None:
    """A README figure: the notebook alone (side bar closed), the explorer's cell at the top."""
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.evaluate("el => el.scrollIntoView({block: 'start'})", root.element_handle())
    page.mouse.move(0, VIEWPORT["height"] - 1)       # no hover highlight in the picture
    time.sleep(0.5)
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path))
    page.evaluate("() => window.jupyterapp.shell.expandLeft()")


def test_make_lab_opens_without_the_news_prompt(tmp_path):
    """``make lab`` installs jupyter/overrides.json into the environment: news are off, not asked."""
    if not os.access(sys.prefix, os.W_OK):
        skip_loudly(f"cannot install JupyterLab settings into {sys.prefix}")
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    installed.unlink(missing_ok=True)                  # only `make lab`'s own step may put it back
    subprocess.run(["make", "-s", "lab-settings", f"VENV={sys.prefix}"], cwd=ROOT, check=True)
    assert installed.read_text() == (ROOT / "jupyter" / "overrides.json").read_text()
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    server = LabServer(tmp_path / "work", tmp_path / "home", settings={})   # a user who never chose
    try:
        server.start()
        plugin = server.api("GET", "/lab/api/settings/@jupyterlab/apputils-extension:notification")
        defaults = {name: value.get("default") for name, value in plugin["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults
    finally:
        server.stop()
