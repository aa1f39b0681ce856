"""How fast the explorers answer: in the kernel (one redraw) and in a real browser (input to pixels).

``widget_callback_ms`` times one uncached redraw of the sample explorer in this process.
``browser_latencies`` starts JupyterLab on a private port and headless Chromium (Debian's
/usr/bin/chromium via Playwright), opens a small notebook of every explorer built from the
shipped checkpoints (``write_explorer_notebook``), and for each explorer presses the right
arrow on its slider (or picks the next entry of its dropdown) again and again: the latency
is the time from the key event (or the dropdown's change event), read in the page, to the
first animation frame after the explorer's new picture is decoded. Between two presses it
waits until the picture has settled (the full picture follows a quick one). The browser test
(tests/test_browser.py) uses the same harness and the same measurement.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .clock import now

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-default-apps", "--metrics-recording-only", "--mute-audio"]
VIEWPORT = {"width": 1280, "height": 720}          # a lecture hall's projector
# JupyterLab user settings for a session: every cell kept in the page (no virtual scrolling,
# so every widget can be found) and no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
# The explorers of the notebook, by the label of the control that is moved: (cell code, control, how).
EXPLORER_CELLS = {
    "sample": ('widgets.sample_explorer(fm_models, n_steps=100, data=reference)', "steps", "arrow"),
    "field": ('widgets.field_explorer(fm_models, t=0.5)', "t", "arrow"),
    "mode": ('widgets.mode_explorer(onehot_models, mode=0)', "mode", "select"),
    "radius": ('widgets.radius_explorer(radius_models, radius=3.0)', "radius", "arrow"),
    "few_step": ('widgets.few_step_explorer({"independent": fm_models["gaussian"], "uniform base": '
                 'fm_models["uniform"]}, nfe=2, data=reference)', "NFE", "arrow"),
    "guidance": ('widgets.guidance_explorer(onehot_models["gaussian"], label=3, guidance_scale=1.0, data=reference)',
                 "w", "arrow"),
}
TRAINER_CELL = "trainer = widgets.training_explorer(reference)\ntrainer"


def widget_callback_ms(model, n_steps: int = 100, repeats: int = 7) -> float | None:
    """Median milliseconds of one uncached full redraw of the sample explorer, or None when
    ``gen_models_utilities.widgets`` is not there (draw 1000 samples, their quality, the picture)."""
    try:
        from gen_models_utilities.widgets import Explorer, sample_explorer
    except ImportError:
        return None
    explorer = sample_explorer(model, n_steps=n_steps)
    times = []
    for seed in range(repeats + 1):                 # the first draw warms up matplotlib
        explorer._cache.clear()
        explorer.fixed["seed"] = seed
        start = now()
        Explorer.redraw(explorer)
        times.append(1000 * (now() - start))
    return statistics.median(times[1:])


# ------------------------------------------------------------------------------------------
# The notebook of explorers

def write_explorer_notebook(path: Path, projector: bool = True) -> Path:
    """A notebook that builds every explorer from the shipped checkpoints, then the live trainer."""
    import nbformat

    style = "use_projector_style()" if projector else "use_book_style()"
    header = ("from gen_models_utilities import widgets, pretrained as checkpoints, reference_data\n"
              "from gen_models_utilities.style import use_book_style, use_projector_style\n"
              f"{style}\n"
              "fm_models, onehot_models, radius_models = (checkpoints.PretrainedModels(kind) "
              "for kind in ('fm', 'onehot', 'radius'))\n"
              "reference = reference_data(1000)")
    cells = [nbformat.v4.new_code_cell(header)]
    cells += [nbformat.v4.new_code_cell(code) for code, _, _ in EXPLORER_CELLS.values()]
    cells.append(nbformat.v4.new_code_cell(TRAINER_CELL))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


# ------------------------------------------------------------------------------------------
# JupyterLab and Chromium

def find_chromium() -> str | None:
    """Path of the system Chromium (Debian's package), or None."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


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

    def __init__(self, workdir: Path, home: Path, settings: dict | None = None):
        self.workdir, self.home = workdir, home
        self.settings = LAB_SETTINGS if settings is None else settings
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict:
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)      # the tests' Agg backend would leave the kernel without inline plots
        config = self.home / "config"
        for name, settings in self.settings.items():
            path = config / "lab" / "user-settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
                   JUPYTER_DATA_DIR=str(self.home / "data"), IPYTHONDIR=str(self.home / "ipython"),
                   JUPYTERLAB_SETTINGS_DIR=str(config / "lab" / "user-settings"),
                   JUPYTER_PLATFORM_DIRS="1", GEN_MODELS_PROGRESS="0", PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout: float = 90, extra_args: tuple = ()) -> None:
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                   "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.workdir}",
                   "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False", *extra_args]
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
        for pid in processes_mentioning(str(self.home / "runtime")):    # our kernels, in sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def open_page(playwright, profile: Path):
    """(context, page) of a headless Chromium with a fresh profile at the projector's size."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT,
        device_scale_factor=1)
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(30_000)
    return context, page


# ------------------------------------------------------------------------------------------
# Input to pixels

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

# Arm one measurement: t0 at the next keydown or change event, t1 at the first animation frame
# after the explorer's picture has a new source and that source is decoded (then painted).
# window.__probed is a promise of the probe once t1 is known: awaiting it costs no CPU, where
# polling the page every few ms would take CPU from the kernel being measured (2 cores here).
ARM_JS = """(img) => {
    const probe = {t0: null, t1: null};
    window.__probe = probe;
    window.__probed = new Promise(resolve => {
        const mark = () => { if (probe.t0 === null) probe.t0 = performance.now(); };
        document.addEventListener('keydown', mark, {capture: true, once: true});
        document.addEventListener('change', mark, {capture: true, once: true});
        const observer = new MutationObserver(() => {
            observer.disconnect();
            img.decode().catch(() => null).then(() => requestAnimationFrame(() => setTimeout(() => {
                probe.t1 = performance.now(); resolve(probe); }, 0)));
        });
        observer.observe(img, {attributes: true, attributeFilter: ['src']});
    });
}"""
# The probe once the new picture is painted, or null after ``ms`` milliseconds.
AWAIT_PROBE_JS = "(ms) => Promise.race([window.__probed, new Promise(r => setTimeout(() => r(null), ms))])"


def control_box(page, description: str):
    """Locator of the ipywidgets control whose label reads ``description``."""
    import re

    label = page.locator("label.widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*:?\s*$"))
    return page.locator(".jp-Notebook .jupyter-widgets.widget-inline-hbox").filter(has=label)


def explorer_box(control):
    """The nearest widget box around ``control`` that also holds the explorer's picture."""
    return control.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' widget-vbox ')]"
                           "[.//img[contains(concat(' ', @class, ' '), ' widget-image ')]][1]")


def picture_source(explorer) -> str:
    return explorer.locator("img.widget-image").first.get_attribute("src") or ""


def wait_until_still(explorer, quiet: float = 0.5, timeout: float = 60) -> str:
    """Wait until the explorer shows its full picture, unchanged for ``quiet`` seconds; returns its source."""
    deadline = time.monotonic() + timeout
    source, since = picture_source(explorer), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = picture_source(explorer)
        if explorer.evaluate("el => el.classList.contains('explorer-quick')"):
            since = time.monotonic()                    # a quick picture: the full one is on its way
        if current != source:
            source, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return source
    return source


def change_once(page, control, how: str) -> None:
    """The input event: the right arrow on the slider's handle, or the next entry of the dropdown."""
    if how == "arrow":
        handle = control.locator(".noUi-handle").first
        handle.focus()
        at_end = float(handle.get_attribute("aria-valuenow")) >= float(handle.get_attribute("aria-valuemax"))
        page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
    else:
        select = control.locator("select")
        index = select.evaluate("s => s.selectedIndex")
        count = select.evaluate("s => s.options.length")
        select.select_option(index=(index + 1) % count)


def measure_latency(page, control, how: str, repeats: int = 10, timeout: float = 30) -> list[float]:
    """Milliseconds from input event to new pixels for ``repeats`` changes of ``control``."""
    explorer = explorer_box(control)
    explorer.scroll_into_view_if_needed()
    image = explorer.locator("img.widget-image").first
    latencies = []
    for _ in range(repeats):
        wait_until_still(explorer)
        image.evaluate(ARM_JS)
        change_once(page, control, how)
        probe = page.evaluate(AWAIT_PROBE_JS, 1000 * timeout)
        if probe is None or probe["t0"] is None:
            raise RuntimeError(f"no new picture within {timeout} s of changing {control}: "
                               f"{page.evaluate('() => window.__probe')}")
        latencies.append(probe["t1"] - probe["t0"])
    return latencies


def summary(latencies: list[float]) -> dict:
    """Median and 95th percentile (nearest rank) of a list of milliseconds."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered)}


def open_and_run_all(page, lab: LabServer, notebook: str, timeout: float = 420) -> float:
    """Open ``notebook`` (a path under the server's root), run every cell, wait until the kernel is idle."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    deadline = time.monotonic() + 90
    while page.evaluate(KERNEL_STATE_JS).get("status") != "idle":
        if time.monotonic() > deadline:
            raise RuntimeError("the kernel did not start within 90 s")
        time.sleep(0.5)
    start = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    deadline = start + timeout
    while True:
        state = page.evaluate(KERNEL_STATE_JS)
        if state["unrun"] == 0 and state["status"] == "idle" and state["busy_prompts"] == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the notebook did not finish within {timeout} s: {state}")
        time.sleep(0.5)
    return time.monotonic() - start


def browser_latencies(repeats: int = 10, projector: bool = False, log=print) -> dict | None:
    """{explorer: {median, p95, n}} in milliseconds, measured in JupyterLab and Chromium; None
    when Chromium or Playwright is missing."""
    import tempfile

    if find_chromium() is None:
        log("  Chromium is missing: browser latencies not measured")
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        log("  playwright is missing: browser latencies not measured")
        return None
    with tempfile.TemporaryDirectory(prefix="widget-bench-") as folder:
        folder = Path(folder)
        (folder / "work").mkdir()
        (folder / "home").mkdir()
        write_explorer_notebook(folder / "work" / "explorers.ipynb", projector=projector)
        lab = LabServer(folder / "work", folder / "home")
        results = {}
        try:
            lab.start()
            with sync_playwright() as playwright:
                context, page = open_page(playwright, folder / "profile")
                try:
                    open_and_run_all(page, lab, "explorers.ipynb")
                    for name, (_, description, how) in EXPLORER_CELLS.items():
                        control = control_box(page, description).first
                        results[name] = summary(measure_latency(page, control, how, repeats))
                        log(f"  {name:10s} median {results[name]['median']:6.0f} ms, "
                            f"p95 {results[name]['p95']:6.0f} ms over {results[name]['n']} changes")
                finally:
                    context.close()
        finally:
            lab.stop()
    return results
