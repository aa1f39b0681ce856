"""How fast the explorers answer: in the kernel, in JupyterLab, and on the static book site, all in Chromium.

``learned_view_ms`` times what a kernel round trip computes for one learned view (the sample
explorer's paths at 100 Euler steps). ``browser_frame_times`` measures, in one run:

* **JupyterLab**: JupyterLab on a private port and headless Chromium (Debian's /usr/bin/chromium via
  Playwright) open a notebook of every explorer of ``widgets.EXPLORERS`` built from the shipped
  checkpoints (``write_explorer_notebook``); for each, the arrow key on its moving control's slider
  (or the next entry of its dropdown), again and again. The time runs from the input event, read in
  the page, to the task after the explorer has drawn its new frame (its ``data-frames`` counter moved;
  the frame is painted before that task runs).
* **the static page**: the same measurement on the book site's pages (``tools.build_site`` into a
  temporary folder, served on 127.0.0.1, no kernel anywhere): the explorers drawn from what was saved
  with the notebooks.
* **today's PNG explorers**, for comparison: the ipywidgets explorers that drew PNG frames in Python
  (``gen_models_utilities/widgets.py`` as the repository's history last had it, loaded from git),
  measured in the same JupyterLab from the input event to the first frame after the new picture is
  decoded.

The browser test (tests/test_browser.py) uses the same harness.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import types
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
HEADER = ("from gen_models_utilities import widgets, pretrained, reference_data\n"
          "from gen_models_utilities.style import use_book_style, use_projector_style\n"
          "{style}\n"
          "fm_models, onehot_models, radius_models = (pretrained.PretrainedModels(kind) "
          "for kind in ('fm', 'onehot', 'radius'))")
LEGACY_PATH = "gen_models_utilities/widgets.py"
# Today's PNG explorers, by the EXPLORERS name they compare with: (cell code, control label, how).
LEGACY_CELLS = {
    "samples": ("png.sample_explorer(fm_models, n_steps=100, data=reference_data(1000))", "steps", "arrow"),
    "field": ("png.field_explorer(fm_models, t=0.5)", "t", "arrow"),
    "modes": ("png.mode_explorer(onehot_models, mode=0)", "mode", "select"),
    "radius": ("png.radius_explorer(radius_models, radius=3.0)", "radius", "arrow"),
    "guidance": ("png.guidance_explorer(onehot_models['gaussian'], label=3, guidance_scale=1.0)", "w", "arrow"),
}


def learned_view_ms(model, n_steps: int = 100, repeats: int = 7) -> float:
    """Median milliseconds to compute one learned view in the kernel: 100 paths at ``n_steps`` Euler steps."""
    from gen_models_utilities import sample_base
    from gen_models_utilities.widgets import views

    x0 = views.on_fine_grid(sample_base("gaussian", 100, seed=0))
    times = []
    for _ in range(repeats + 1):                    # the first call warms up
        start = now()
        views.solved_paths(model, x0, n_steps, "euler")
        times.append(1000 * (now() - start))
    return statistics.median(times[1:])


def legacy_png_widgets():
    """``gen_models_utilities/widgets.py`` as the git history last had it, as a module (None when unreadable)."""
    def show(revision: str) -> str | None:
        done = subprocess.run(["git", "show", f"{revision}:{LEGACY_PATH}"], cwd=ROOT, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    last = subprocess.run(["git", "log", "-1", "--format=%H", "--", LEGACY_PATH], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    source = last and (show(last) or show(f"{last}^"))
    if not source:
        return None
    module = types.ModuleType("gen_models_utilities._png_explorers")
    module.__package__ = "gen_models_utilities"
    sys.modules[module.__name__] = module
    exec(compile(source, f"{LEGACY_PATH} (git {last[:8]})", "exec"), module.__dict__)
    return module


# ------------------------------------------------------------------------------------------
# The notebook of explorers

def explorer_cell(entry, store: bool = True) -> str:
    """The code of ``entry.example``; with ``store=False``, its learned views are left to the kernel to compute."""
    import inspect

    if store or "store" not in inspect.signature(entry.build).parameters:
        return entry.example
    return entry.example[:-1] + ", store=False)"


def write_explorer_notebook(path: Path, projector: bool = True, extra_cells: tuple = (), legacy: bool = False,
                            store: bool = True) -> Path:
    """A notebook that builds every explorer of ``EXPLORERS`` from the shipped checkpoints, then ``extra_cells``
    (and, with ``legacy``, today's PNG explorers for comparison). ``store=False``: nothing is precomputed,
    every learned view is asked of the kernel."""
    import nbformat
    from gen_models_utilities.widgets import EXPLORERS

    header = HEADER.format(style="use_projector_style()" if projector else "use_book_style()")
    cells = [nbformat.v4.new_code_cell(header)]
    cells += [nbformat.v4.new_code_cell(explorer_cell(entry, store)) for entry in EXPLORERS.values()]
    cells += [nbformat.v4.new_code_cell(code) for code in extra_cells]
    if legacy:
        cells.append(nbformat.v4.new_code_cell("from benchmarks.widget import legacy_png_widgets\n"
                                               "png = legacy_png_widgets()"))
        cells += [nbformat.v4.new_code_cell(code) for code, _, _ in LEGACY_CELLS.values()]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


# ------------------------------------------------------------------------------------------
# JupyterLab, the site and Chromium

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
                   JUPYTER_PLATFORM_DIRS="1", GEN_MODELS_PROGRESS="0", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
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


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class SiteServer:
    """An HTTP server on 127.0.0.1 serving a built site folder (a context manager; ``url`` its address)."""

    def __init__(self, folder: Path):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(QuietHandler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "SiteServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def open_page(playwright, profile: Path):
    """(context, page) of a headless Chromium with a fresh profile at the projector's size."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT,
        device_scale_factor=1)
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(30_000)
    return context, page


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


# ------------------------------------------------------------------------------------------
# Input to a new frame

def explorer(page, name: str):
    """Locator of the explorer whose spec is named ``name`` (an EXPLORERS name)."""
    return page.locator(f'.gm-explorer[data-name="{name}"]').first


def control(root, name: str):
    """The range input or select of control ``name`` inside an explorer."""
    return root.locator(f'[data-control="{name}"] input, [data-control="{name}"] select').first


# Arm one measurement: t0 at the next keydown or input event inside the explorer, t1 in the task
# after the explorer has drawn a new frame (its data-frames attribute moved; the frame is painted
# before that task). window.__probed resolves with the probe: awaiting it costs no CPU.
ARM_FRAME_JS = """(root) => {
    const probe = {t0: null, t1: null, draw_ms: null};
    window.__probe = probe;
    window.__probed = new Promise(resolve => {
        const mark = () => { if (probe.t0 === null) probe.t0 = performance.now(); };
        root.addEventListener('keydown', mark, {capture: true, once: true});
        root.addEventListener('input', mark, {capture: true, once: true});
        const observer = new MutationObserver(() => {
            if (probe.t0 === null) return;          // a frame from before the input (a view from the kernel)
            observer.disconnect();
            probe.draw_ms = Number(root.dataset.drawMs);
            setTimeout(() => { probe.t1 = performance.now(); resolve(probe); }, 0);
        });
        observer.observe(root, {attributes: true, attributeFilter: ['data-frames']});
    });
}"""
# The same for today's PNG explorers: t1 at the first animation frame after the new picture is decoded.
ARM_PICTURE_JS = """(img) => {
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
AWAIT_PROBE_JS = "(ms) => Promise.race([window.__probed, new Promise(r => setTimeout(() => r(null), ms))])"


def step_control(page, element) -> None:
    """One input event: the right (or, at the end, left) arrow on a range input, or the next select entry."""
    if element.evaluate("el => el.tagName") == "SELECT":
        count = element.evaluate("s => s.options.length")
        element.select_option(index=(element.evaluate("s => s.selectedIndex") + 1) % count)
        return
    element.focus()
    at_end = element.evaluate("el => Number(el.value) >= Number(el.max)")
    page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")


def measure_frames(page, root, name: str, repeats: int = 10, timeout: float = 30) -> list[float]:
    """Milliseconds from input event to the explorer's new frame, for ``repeats`` changes of control ``name``."""
    root.scroll_into_view_if_needed()
    element = control(root, name)
    latencies = []
    for _ in range(repeats):
        page.wait_for_timeout(120)                  # let the last frame and its saves settle
        root.evaluate(ARM_FRAME_JS)
        step_control(page, element)
        probe = page.evaluate(AWAIT_PROBE_JS, 1000 * timeout)
        if probe is None or probe["t0"] is None:
            raise RuntimeError(f"no new frame within {timeout} s of moving {name!r}: "
                               f"{page.evaluate('() => window.__probe')}")
        latencies.append(probe["t1"] - probe["t0"])
    return latencies


def legacy_control(page, description: str):
    import re

    label = page.locator("label.widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*:?\s*$"))
    return page.locator(".jp-Notebook .jupyter-widgets.widget-inline-hbox").filter(has=label).first


def measure_pictures(page, description: str, how: str, repeats: int = 10, timeout: float = 30) -> list[float]:
    """Today's PNG explorers: milliseconds from input event to the new picture, painted."""
    widget = legacy_control(page, description)
    box = widget.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' widget-vbox ')]"
                         "[.//img[contains(concat(' ', @class, ' '), ' widget-image ')]][1]")
    box.scroll_into_view_if_needed()
    image = box.locator("img.widget-image").first
    latencies = []
    for _ in range(repeats):
        page.wait_for_timeout(1500)                 # the full picture follows a quick one after 0.3 s
        image.evaluate(ARM_PICTURE_JS)
        if how == "arrow":
            handle = widget.locator(".noUi-handle").first
            handle.focus()
            at_end = float(handle.get_attribute("aria-valuenow")) >= float(handle.get_attribute("aria-valuemax"))
            page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
        else:
            select = widget.locator("select")
            select.select_option(index=(select.evaluate("s => s.selectedIndex") + 1) % select.evaluate(
                "s => s.options.length"))
        probe = page.evaluate(AWAIT_PROBE_JS, 1000 * timeout)
        if probe is None or probe["t0"] is None:
            raise RuntimeError(f"no new picture within {timeout} s of moving {description!r}")
        latencies.append(probe["t1"] - probe["t0"])
    return latencies


def summary(latencies: list[float]) -> dict:
    """Median and 95th percentile (nearest rank) of a list of milliseconds."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered)}


# ------------------------------------------------------------------------------------------
# The whole measurement

def site_pages() -> dict[str, str]:
    """{EXPLORERS name: the site page that shows it}, read from the notebooks' saved widget state."""
    pages = {}
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]*.ipynb")):
        state = json.loads(notebook.read_text())["metadata"].get("widgets", {})
        for model in state.get("application/vnd.jupyter.widget-state+json", {}).get("state", {}).values():
            name = model.get("state", {}).get("spec", {}).get("name")
            if name:
                pages.setdefault(name, notebook.with_suffix(".html").name)
    return pages


def browser_frame_times(repeats: int = 10, log=print) -> dict | None:
    """{where_name: {median, p95, n}} in milliseconds: 'lab_<explorer>', 'site_<explorer>' and 'png_<explorer>';
    None when Chromium or Playwright is missing."""
    import tempfile

    if find_chromium() is None:
        log("  Chromium is missing: frame times not measured")
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        log("  playwright is missing: frame times not measured")
        return None
    from gen_models_utilities.widgets import EXPLORERS

    results = {}
    with tempfile.TemporaryDirectory(prefix="widget-bench-") as folder, sync_playwright() as playwright:
        folder = Path(folder)
        (folder / "work").mkdir()
        (folder / "home").mkdir()
        legacy = legacy_png_widgets() is not None
        write_explorer_notebook(folder / "work" / "explorers.ipynb", projector=False, legacy=legacy)
        lab = LabServer(folder / "work", folder / "home")
        context, page = open_page(playwright, folder / "profile")
        try:
            lab.start()
            open_and_run_all(page, lab, "explorers.ipynb")
            for name, entry in EXPLORERS.items():
                results[f"lab_{name}"] = summary(measure_frames(page, explorer(page, name), entry.move, repeats))
                log(f"  JupyterLab  {name:9s} median {results[f'lab_{name}']['median']:6.1f} ms, "
                    f"p95 {results[f'lab_{name}']['p95']:6.1f} ms")
            for name, (_, description, how) in (LEGACY_CELLS.items() if legacy else ()):
                results[f"png_{name}"] = summary(measure_pictures(page, description, how, repeats))
                log(f"  PNG (today) {name:9s} median {results[f'png_{name}']['median']:6.1f} ms, "
                    f"p95 {results[f'png_{name}']['p95']:6.1f} ms")
        finally:
            context.close()
            lab.stop()
        from tools import build_site

        site = build_site.build(folder / "site" / "html", work=folder / "site")
        context, page = open_page(playwright, folder / "profile-site")
        try:
            with SiteServer(site) as server:
                for name, page_name in site_pages().items():
                    page.goto(f"{server.url}/{page_name}", wait_until="load")
                    root = explorer(page, name)
                    root.wait_for(timeout=60_000)
                    results[f"site_{name}"] = summary(measure_frames(page, root, EXPLORERS[name].move, repeats))
                    log(f"  static page {name:9s} median {results[f'site_{name}']['median']:6.1f} ms, "
                        f"p95 {results[f'site_{name}']['p95']:6.1f} ms")
        finally:
            context.close()
    return results
