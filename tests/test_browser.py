"""Every explorer in a real browser: JupyterLab driven through Debian's Chromium.

A lecture, end to end: JupyterLab starts on 127.0.0.1 with a random port and token, Chromium
(headless, fresh profile, no background networking, a 1280 x 720 window) opens a small
notebook written for the test (``benchmarks.widget.write_explorer_notebook``: every explorer
built from the shipped checkpoints, in the projector style, and the live trainer), runs every
cell, then moves every explorer's slider or dropdown and measures the time from the input
event to the new pixels (printed, never asserted: ``make bench`` reports the same figures),
drags a slider, types a value out of range, starts the live trainer, watches its picture
change while another explorer still answers, and pauses it. No traceback may appear anywhere;
the widgets must render as widgets (a missing front-end extension shows their text repr).

Screenshots go to tests/artifacts/ (ignored by git). The figures README shows,
figures/jupyterlab_widgets.png and figures/live_trainer.png, are written when missing or
when GEN_MODELS_UPDATE_FIGURES=1. The server is stopped at the end, pass or fail.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from benchmarks.widget import (EXPLORER_CELLS, KERNEL_STATE_JS, VIEWPORT, LabServer, control_box, explorer_box,
                               find_chromium, measure_latency, open_page, picture_source, summary,
                               wait_until_still, write_explorer_notebook)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAME = "explorers.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
FIGURE = ROOT / "figures" / "jupyterlab_widgets.png"
TRAINER_FIGURE = ROOT / "figures" / "live_trainer.png"
LATENCY_REPEATS = 8
RUN_ALL_TIMEOUT = 420          # seconds for the whole notebook (generous: CI machines are shared)
REDRAW_TIMEOUT = 90            # seconds for one redraw after a change
# Text that means a widget was printed instead of rendered (the front-end extension is missing).
WIDGET_REPRS = ("IntSlider(", "FloatSlider(", "Dropdown(", "ToggleButtons(", "VBox(children=", "HBox(children=",
                "Output(", "Explorer object", "Loading widget...", "Error displaying widget")

def skip_loudly(reason: str):
    """Skip with a reason that also shows up as a warning in the summary."""
    warnings.warn(f"BROWSER TEST SKIPPED: {reason}", stacklevel=2)
    pytest.skip(f"BROWSER TEST SKIPPED: {reason}")


@pytest.fixture
def lab(tmp_path):
    """A running JupyterLab over a notebook of every explorer, written in tmp; stopped at teardown."""
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    write_explorer_notebook(workdir / NOTEBOOK_NAME, projector=True)
    server = LabServer(workdir, home)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser_page(tmp_path):
    """A Chromium page in a fresh, throw-away profile; skips loudly when Chromium is missing."""
    chromium = find_chromium()
    if chromium is None:
        skip_loudly("Debian's chromium is not installed (run `make browser-deps` as root, "
                    "or `apt-get install chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_loudly("playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        context, page = open_page(playwright, tmp_path / "chromium-profile")
        try:
            page.js_errors = []
            page.on("pageerror", lambda error: page.js_errors.append(str(error)))
            yield page
        finally:
            context.close()


# ------------------------------------------------------------------------------------------
# What the page shows



MODEL_ERRORS_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const found = [];
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

# Errors the kernel sends outside any cell (e.g. from a widget callback) reach the page as iopub
# messages; collect them from the moment the kernel is ready.
WATCH_KERNEL_JS = """() => {
    window.__kernelErrors = [];
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    kernel.iopubMessage.connect((_, msg) => {
        const type = msg.header.msg_type;
        if (type === 'error') window.__kernelErrors.push(msg.content.ename + ': ' + msg.content.evalue);
        if (type === 'stream' && /Traceback/.test(msg.content.text)) window.__kernelErrors.push(msg.content.text);
    });
}"""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    """Poll ``predicate()`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")


def kernel_idle(page, settle: float = 1.0) -> None:
    """Wait until the kernel is idle and no cell is queued, twice in a row ``settle`` s apart."""
    def idle():
        state = page.evaluate(KERNEL_STATE_JS)
        return state["ready"] and state["status"] == "idle" and state["busy_prompts"] == 0
    deadline = time.monotonic() + RUN_ALL_TIMEOUT
    while time.monotonic() < deadline:
        if idle():
            time.sleep(settle)
            if idle():
                return
        time.sleep(0.3)
    pytest.fail(f"kernel still busy after {RUN_ALL_TIMEOUT} s: {page.evaluate(KERNEL_STATE_JS)}")


def problems_on_page(page) -> list[str]:
    """Every sign of failure visible on the page: tracebacks, error outputs, widget reprs."""
    problems = [f"error output in a cell: {text}" for text in page.evaluate(MODEL_ERRORS_JS)]
    problems += [f"kernel error outside a cell: {text[:300]}"
                 for text in page.evaluate("() => window.__kernelErrors || []")]
    stderr = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
    for text in stderr.all_inner_texts():
        if "Traceback" in text or re.search(r"^\w*(Error|Exception)\b", text, re.M) or "Could not draw" in text:
            problems.append(f"stderr output: {text[:300]}")
    plain = page.locator('.jp-Notebook .jp-RenderedText[data-mime-type="text/plain"]').all_inner_texts()
    for text in plain:
        markers = [marker for marker in WIDGET_REPRS if marker in text]
        if markers:
            problems.append(f"a widget shown as text ({markers[0]!r}): {text[:200]}")
    body = page.locator(".jp-Notebook").inner_text()
    for marker in ("Error displaying widget", "Error rendering output", "model not found"):
        if marker in body:
            problems.append(f"page says {marker!r}")
    problems += [f"JavaScript error: {text[:300]}" for text in page.js_errors]
    return problems


# ------------------------------------------------------------------------------------------
# Using the widgets as a student

controls_named, explorer_of, picture = control_box, explorer_box, picture_source


def slider_value(control) -> str:
    return control.locator(".widget-readout").inner_text().strip()


def drag_slider(page, control, fraction: float) -> None:
    """Drag the slider's handle with the mouse to ``fraction`` of its track."""
    control.scroll_into_view_if_needed()
    track = control.locator(".noUi-target, .slider").first.bounding_box()
    handle = control.locator(".noUi-handle").first.bounding_box()
    start_x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(start_x, y)
    page.mouse.down()
    target_x = track["x"] + fraction * track["width"]
    for i in range(1, 11):
        page.mouse.move(start_x + (target_x - start_x) * i / 10, y)
    page.mouse.up()


def type_into_readout(page, control, text: str) -> None:
    """Type ``text`` into the slider's readout box and press Enter, as a student would."""
    readout = control.locator(".widget-readout")
    readout.scroll_into_view_if_needed()
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def choose_other_option(control) -> str:
    """Pick another entry of a dropdown (or another toggle button); returns its label."""
    control.scroll_into_view_if_needed()
    select = control.locator("select")
    if select.count():
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        choice = next(o for o in options if o != current)
        select.select_option(label=choice)
        return choice
    buttons = control.locator("button:not(.mod-active)")
    choice = buttons.first.inner_text()
    buttons.first.click()
    return choice


REDRAW_SECONDS: dict[str, float] = {}


def expect_redraw(page, explorer, before: str, what: str) -> str:
    """Wait for the explorer's picture to change from ``before``; returns the new picture."""
    start = time.monotonic()
    deadline = start + REDRAW_TIMEOUT
    while picture(explorer) in ("", before):
        if time.monotonic() > deadline:
            shown = explorer.locator(".widget-output").inner_text()
            pytest.fail(f"no new picture {REDRAW_TIMEOUT} s after {what}; the explorer shows:\n{shown}")
        time.sleep(0.5)
    REDRAW_SECONDS[what] = time.monotonic() - start
    kernel_idle(page, settle=0.5)
    return picture(explorer)


def screenshot(page, name: str, locator=None) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    (locator or page).screenshot(path=str(path))
    return path


def save_clean_figure(page, explorer) -> None:
    """The README figure: the notebook alone (side bar closed), the explorer's cell at the top."""
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    cell = explorer.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-CodeCell ')][1]")
    page.evaluate("el => el.scrollIntoView({block: 'start'})", cell.element_handle())
    page.mouse.move(0, VIEWPORT["height"] - 1)       # no hover highlight in the picture
    time.sleep(0.5)
    FIGURE.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(FIGURE))
    page.evaluate("() => window.jupyterapp.shell.expandLeft()")


def open_and_run_all(page, lab: LabServer) -> float:
    """Open the notebook, wait for its kernel and run every cell."""
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK_NAME}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    wait_for(lambda: page.evaluate(KERNEL_STATE_JS).get("status") == "idle", 90, "the kernel to start")
    page.evaluate(WATCH_KERNEL_JS)
    state = page.evaluate(KERNEL_STATE_JS)
    assert state["unrun"] == state["n_code"], f"the fresh notebook has execution counts: {state}"
    start = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    wait_for(lambda: page.evaluate(KERNEL_STATE_JS)["unrun"] == 0, RUN_ALL_TIMEOUT, "every cell to run")
    kernel_idle(page)
    return time.monotonic() - start


def button(explorer, name: str):
    return explorer.locator("button.jupyter-button", has_text=name).first


def status_text(explorer) -> str:
    return explorer.locator(".widget-label").first.inner_text().strip()


def test_lecture_in_jupyterlab(lab, browser_page):
    page = browser_page
    started = time.monotonic()
    run_seconds = open_and_run_all(page, lab)
    problems = problems_on_page(page)
    assert not problems, "after running every cell:\n" + "\n".join(problems) + "\n" + lab.log_tail()
    assert page.locator(".jp-Notebook .jupyter-widgets").count() > 0, "no ipywidgets rendered on the page"
    assert page.locator(".jp-Notebook img.widget-image").count() == len(EXPLORER_CELLS) + 1, (
        "every explorer and the trainer should show one picture")

    # Every explorer answers: input event to new pixels (printed, not asserted).
    latencies = {}
    for name, (_, description, how) in EXPLORER_CELLS.items():
        control = control_box(page, description).first
        assert control.count() == 1, f"no {description!r} control on the page"
        before = picture(explorer_of(control))
        latencies[name] = summary(measure_latency(page, control, how, LATENCY_REPEATS))
        assert picture(explorer_of(control)) != before, f"moving {description!r} did not change the picture"
    table = "; ".join(f"{name} {v['median']:.0f}/{v['p95']:.0f} ms" for name, v in latencies.items())
    print(f"\ninput to pixels, median/p95 over {LATENCY_REPEATS} changes: {table}")
    if not FIGURE.exists() or os.environ.get("GEN_MODELS_UPDATE_FIGURES") == "1":
        save_clean_figure(page, explorer_of(control_box(page, "steps").first))

    # A drag, and a value typed far outside the slider's range.
    steps = controls_named(page, "steps").first
    sampler = explorer_of(steps)
    before, old_steps = wait_until_still(sampler), slider_value(steps)
    drag_slider(page, steps, 0.08)
    before = expect_redraw(page, sampler, before, "dragging 'steps'")
    assert slider_value(steps) != old_steps, "dragging the 'steps' handle did not change its value"
    radius = controls_named(page, "radius").first
    radius_explorer = explorer_of(radius)
    before = wait_until_still(radius_explorer)
    type_into_readout(page, radius, "99")
    expect_redraw(page, radius_explorer, before, "typing radius 99")
    assert float(slider_value(radius)) < 99, "a radius of 99 was accepted by the slider"

    # The live trainer: Start, watch its picture change while another explorer answers, Pause.
    trainer = explorer_of(control_box(page, "batch size").first)
    assert trainer.count() == 1, "no live trainer on the page"
    trainer.scroll_into_view_if_needed()
    first = picture(trainer)
    button(trainer, "Start").click()
    frames = {first}
    deadline = time.monotonic() + 60
    while len(frames) < 4 and time.monotonic() < deadline:
        frames.add(picture(trainer))
        time.sleep(0.1)
    assert len(frames) >= 4, f"the trainer's picture changed {len(frames) - 1} times in 60 s of training"
    while_training = summary(measure_latency(page, control_box(page, "t").first, "arrow", 3))
    trainer.scroll_into_view_if_needed()
    time.sleep(2.0)                                  # a few more frames for the picture in the README
    screenshot(page, "live_trainer_running.png")
    if not TRAINER_FIGURE.exists() or os.environ.get("GEN_MODELS_UPDATE_FIGURES") == "1":
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        page.evaluate("el => el.scrollIntoView({block: 'start'})", trainer.element_handle())
        page.mouse.move(0, VIEWPORT["height"] - 1)
        time.sleep(0.5)
        page.screenshot(path=str(TRAINER_FIGURE))
        page.evaluate("() => window.jupyterapp.shell.expandLeft()")
    button(trainer, "Pause").click()
    wait_for(lambda: status_text(trainer).startswith("paused"), 30, "the trainer to say it paused")
    paused = wait_until_still(trainer, quiet=1.0)
    time.sleep(1.0)
    assert picture(trainer) == paused, "the trainer's picture kept changing after Pause"
    steps_done = int(status_text(trainer).split()[-1])
    assert steps_done > 0, f"the status says {status_text(trainer)!r}"

    problems = problems_on_page(page)
    assert not problems, "after using the widgets:\n" + "\n".join(problems) + "\n" + lab.log_tail()
    server_log = lab.log_tail(200_000)
    assert "Traceback" not in server_log, f"the server or kernel logged a traceback:\n{lab.log_tail()}"
    print(f"\nthe field explorer while "
          f"the trainer trains: {while_training['median']:.0f}/{while_training['p95']:.0f} ms; "
          f"trainer: {steps_done} steps, {len(frames) - 1}+ frames; run all cells {run_seconds:.1f} s; "
          f"whole session {time.monotonic() - started:.1f} s")


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
