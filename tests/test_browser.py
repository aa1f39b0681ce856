"""The chapter notebook in a real browser: JupyterLab driven through Debian's Chromium.

A student's session, end to end: JupyterLab starts on 127.0.0.1 with a random port and token,
Chromium (headless, fresh profile, no background networking) opens a working copy of
notebooks/17_flow_matching.ipynb, runs every cell, and then moves the step slider, switches
the base distribution, picks another mode and another radius. Each change must redraw its
explorer's picture; no traceback may appear anywhere; the widgets must render as widgets
(a missing front-end extension shows their text repr instead).

Screenshots before and after go to tests/artifacts/ (ignored by git). The figure README shows,
figures/jupyterlab_widgets.png, is written when it is missing or when
GEN_MODELS_UPDATE_FIGURES=1. GEN_MODELS_BROWSER_NOTEBOOK points the test at another notebook
(used while developing the harness). The server is stopped at the end, pass or fail.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = Path(os.environ.get("GEN_MODELS_BROWSER_NOTEBOOK", ROOT / "notebooks" / "17_flow_matching.ipynb"))
ARTIFACTS = ROOT / "tests" / "artifacts"
FIGURE = ROOT / "figures" / "jupyterlab_widgets.png"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-default-apps", "--metrics-recording-only", "--mute-audio"]
VIEWPORT = {"width": 1280, "height": 860}
RUN_ALL_TIMEOUT = 420          # seconds for the whole notebook (generous: CI machines are shared)
REDRAW_TIMEOUT = 90            # seconds for one redraw after a change
# Text that means a widget was printed instead of rendered (the front-end extension is missing).
WIDGET_REPRS = ("IntSlider(", "FloatSlider(", "Dropdown(", "ToggleButtons(", "VBox(children=", "HBox(children=",
                "Output(", "Explorer object", "Loading widget...", "Error displaying widget")
# JupyterLab user settings for a test session: every cell kept in the page (no virtual
# scrolling, so every widget can be found) and no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def find_chromium() -> str | None:
    """Path of the system Chromium (Debian's package), or None."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def skip_loudly(reason: str):
    """Skip with a reason that also shows up as a warning in the summary."""
    warnings.warn(f"BROWSER TEST SKIPPED: {reason}", stacklevel=2)
    pytest.skip(f"BROWSER TEST SKIPPED: {reason}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_mentioning(text: str) -> list[int]:
    """Ids of live processes whose command line contains ``text`` (our temp dir: ours only)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


class LabServer:
    """A JupyterLab server on a private port, token and config, serving a temp working folder."""

    def __init__(self, workdir: Path, home: Path):
        self.workdir, self.home = workdir, home
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict:
        env = dict(os.environ)
        # conftest.py sets MPLBACKEND=Agg for the tests; a kernel inheriting it would show no plots.
        env.pop("MPLBACKEND", None)
        config = self.home / "config"
        for name, settings in LAB_SETTINGS.items():
            path = config / "lab" / "user-settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
                   JUPYTER_DATA_DIR=str(self.home / "data"), IPYTHONDIR=str(self.home / "ipython"),
                   JUPYTER_PLATFORM_DIRS="1", GEN_MODELS_PROGRESS="0", PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout: float = 90) -> None:
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                   "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.workdir}",
                   "--LabApp.expose_app_in_browser=True",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.news_url=", "--ServerApp.terminals_enabled=False"]
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=self.workdir, env=self.environment(), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n{self.log_tail()}")

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Shut the kernels down, terminate the server, then kill whatever of ours is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                for kernel in self.api("GET", "/api/kernels"):
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except OSError:
                pass
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Kernels run in sessions of their own; they are ours if they use our runtime folder.
        for pid in processes_mentioning(str(self.home / "runtime")):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def lab(tmp_path):
    """A running JupyterLab over a working copy of the chapter notebook; stopped at teardown."""
    if not NOTEBOOK.is_file():
        pytest.fail(f"{NOTEBOOK} does not exist; the browser test needs the chapter notebook")
    workdir, home = tmp_path / "work", tmp_path / "home"
    (workdir / "notebooks").mkdir(parents=True)
    home.mkdir()
    shutil.copy2(NOTEBOOK, workdir / "notebooks" / NOTEBOOK.name)
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
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport=VIEWPORT, device_scale_factor=1)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            page.js_errors = []
            page.on("pageerror", lambda error: page.js_errors.append(str(error)))
            yield page
        finally:
            context.close()


# ------------------------------------------------------------------------------------------
# What the page shows

KERNEL_STATE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.sessionContext || !panel.content) return {ready: false};
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
    const prompts = Array.from(panel.node.querySelectorAll('.jp-InputPrompt')).map(p => p.textContent);
    return {ready: true, status: kernel ? kernel.status : 'none', n_code: cells.length,
            unrun: cells.filter(cell => cell.model.executionCount === null).length,
            busy_prompts: prompts.filter(text => text.includes('*')).length};
}"""

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

def controls_named(page, description: str):
    """Locator of the ipywidgets controls whose label reads ``description`` (an optional ':' allowed)."""
    label = page.locator("label.widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*:?\s*$"))
    return page.locator(".jp-Notebook .jupyter-widgets.widget-inline-hbox").filter(has=label)


def explorer_of(control):
    """The nearest widget box around ``control`` that also holds an Output area."""
    return control.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' widget-vbox ')]"
                           "[.//div[contains(concat(' ', @class, ' '), ' widget-output ')]][1]")


def picture(explorer) -> str:
    """What the explorer shows: the sources of its images (data URIs), joined."""
    return "|".join(explorer.locator(".widget-output img").evaluate_all("els => els.map(e => e.src)"))


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
    """Open the notebook, wait for its kernel, clear the stored outputs and run every cell."""
    page.goto(f"{lab.url}/lab/tree/notebooks/{NOTEBOOK.name}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    wait_for(lambda: page.evaluate(KERNEL_STATE_JS).get("status") == "idle", 90, "the kernel to start")
    page.evaluate(WATCH_KERNEL_JS)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    state = page.evaluate(KERNEL_STATE_JS)
    assert state["unrun"] == state["n_code"], f"clearing the outputs left execution counts: {state}"
    start = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    wait_for(lambda: page.evaluate(KERNEL_STATE_JS)["unrun"] == 0, RUN_ALL_TIMEOUT, "every cell to run")
    kernel_idle(page)
    return time.monotonic() - start


def test_student_session_in_jupyterlab(lab, browser_page):
    page = browser_page
    started = time.monotonic()
    run_seconds = open_and_run_all(page, lab)
    problems = problems_on_page(page)
    assert not problems, "after running every cell:\n" + "\n".join(problems) + "\n" + lab.log_tail()

    # The widgets rendered as widgets.
    assert page.locator(".jp-Notebook .jupyter-widgets").count() > 0, "no ipywidgets rendered on the page"
    assert page.locator(".jp-Notebook .widget-slider").count() > 0, "no slider rendered on the page"

    steps = controls_named(page, "steps").first
    sampler = explorer_of(steps)
    assert sampler.count() == 1, "the 'steps' slider has no Output area next to it"
    sampler.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab_before.png")
    screenshot(page, "sample_explorer_before.png", sampler)
    if not FIGURE.exists() or os.environ.get("GEN_MODELS_UPDATE_FIGURES") == "1":
        save_clean_figure(page, sampler)

    # Move the step slider with the mouse.
    before, old_steps = picture(sampler), slider_value(steps)
    assert before, "the sample explorer shows no picture"
    drag_slider(page, steps, 0.08)
    before = expect_redraw(page, sampler, before, "dragging 'steps'")
    assert slider_value(steps) != old_steps, "dragging the 'steps' handle did not change its value"

    # Switch the base distribution (in the sample explorer).
    base = sampler.locator(".jupyter-widgets.widget-inline-hbox").filter(
        has=page.locator("label.widget-label", has_text=re.compile(r"^\s*base\s*:?\s*$")))
    assert base.count() == 1, "the sample explorer has no 'base' dropdown"
    chosen = choose_other_option(base)
    before = expect_redraw(page, sampler, before, f"choosing base {chosen!r}")

    # Another mode.
    mode = controls_named(page, "mode").first
    assert mode.count() == 1, "no 'mode' control on the page"
    mode_explorer = explorer_of(mode)
    before = picture(mode_explorer)
    chosen = choose_other_option(mode) if mode.locator("select, button").count() else drag_slider(page, mode, 0.8)
    expect_redraw(page, mode_explorer, before, f"choosing mode {chosen!r}")

    # Another radius: drag the handle, then type a value far outside the slider's range.
    radius = controls_named(page, "radius").first
    assert radius.count() == 1, "no 'radius' control on the page"
    radius_explorer = explorer_of(radius)
    before = picture(radius_explorer)
    drag_slider(page, radius, 0.25)
    before = expect_redraw(page, radius_explorer, before, "dragging 'radius'")
    type_into_readout(page, radius, "99")
    before = expect_redraw(page, radius_explorer, before, "typing radius 99")
    typed = float(slider_value(radius))
    assert typed < 99, f"a radius of 99 was accepted by the slider (shows {typed})"

    screenshot(page, "sample_explorer_after.png", sampler)
    radius_explorer.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab_after.png")
    problems = problems_on_page(page)
    assert not problems, "after using the widgets:\n" + "\n".join(problems) + "\n" + lab.log_tail()
    server_log = lab.log_tail(200_000)
    assert "Traceback" not in server_log, f"the server or kernel logged a traceback:\n{lab.log_tail()}"
    redraws = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in REDRAW_SECONDS.items())
    print(f"\nrun all cells: {run_seconds:.1f} s; redraws: {redraws}; "
          f"whole browser session: {time.monotonic() - started:.1f} s")
