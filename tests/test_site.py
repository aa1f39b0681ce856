"""The book site in a real browser: every page of `make site`, opened in Debian's Chromium.

The site is built afresh into a temporary folder (tools.build_site, about 15 s) and served on
127.0.0.1. Chromium starts from the landing page and follows every internal link, so each page
the navigation reaches is checked, and every page of a notebook must be reached:
- math: every formula MyST marked was typeset by MathJax, and no `$` is left in the prose;
- images: every <img> (figures, animation frames, widgets' pictures) loaded, naturalWidth > 0;
- links: every internal link leads to a page that exists, and its #anchor to an element there;
- nothing is fetched from outside the site, no request fails, no JavaScript error is raised;
- widgets: a page whose notebook stored widget state shows them drawn, not as text; every explorer
  is drawn from what was saved (its ES module imported from the site's own _static/explorer/),
  not blank, and redraws when its control moves, with no kernel anywhere; a setting that was not
  stored says so in the explorer;
- the chapter's page shows every section heading of its notebook (17.1 ... 17.7), each in its
  table of contents; the exercises appear as the students' copy, never the solutions.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"]
CHAPTER = "17_flow_matching"


def skip_loudly(reason: str):
    warnings.warn(f"SITE TEST SKIPPED: {reason}", stacklevel=2)
    pytest.skip(f"SITE TEST SKIPPED: {reason}")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built from the committed notebooks into a temporary folder."""
    pytest.importorskip("myst_nb", reason="the site's tools are not installed (make site-deps)")
    from tools import build_site

    work = tmp_path_factory.mktemp("site")
    return build_site.build(work / "html", work=work)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(site):
    """An HTTP server on 127.0.0.1 serving the site; yields its address."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")
    if chromium is None:
        skip_loudly("Debian's chromium is not installed (make browser-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_loudly("playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


# What a page shows, read once it has settled (MathJax typeset, widgets drawn, images decoded).
PAGE_STATE_JS = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    await Promise.all(Array.from(document.images).map(img => img.decode().catch(() => null)));
    const skip = 'pre, code, script, style, mjx-container, .highlight, .cell_output, .output';
    const walker = document.createTreeWalker(document.querySelector('main') || document.body,
                                             NodeFilter.SHOW_TEXT);
    const dollars = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.textContent.includes('$') && !node.parentElement.closest(skip)) dollars.push(node.textContent.trim());
    }
    return {
        dollars,
        untypeset: Array.from(document.querySelectorAll('main .math'))
            .filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.slice(0, 80)),
        formulas: document.querySelectorAll('main mjx-container').length,
        broken_images: Array.from(document.images)
            .filter(img => !(img.complete && img.naturalWidth > 0))
            .map(img => (img.getAttribute('src') || '').slice(0, 80)),
        images: document.images.length,
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
        ids: Array.from(document.querySelectorAll('[id]')).map(el => el.id),
        h2: Array.from(document.querySelectorAll('main h2')).map(h => h.textContent.replace(/#$/, '').trim()),
        toc: Array.from(document.querySelectorAll('.bd-sidebar-secondary .page-toc a')).map(a => a.textContent.trim()),
        widget_scripts: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
        text: document.querySelector('main').innerText,
    };
}"""


def section_headings(notebook: Path) -> list[str]:
    """The `## ` headings of a notebook's markdown cells."""
    cells = json.loads(notebook.read_text())["cells"]
    lines = ("".join(cell["source"]).splitlines() for cell in cells if cell["cell_type"] == "markdown")
    return [line[3:].strip() for block in lines for line in block if line.startswith("## ")]


def visit(context, url: str) -> dict:
    """Open ``url`` and return what PAGE_STATE_JS reads, plus what went wrong on the way."""
    page = context.new_page()
    problems: list[str] = []
    origin = urlparse(url).netloc

    def route(request_route):
        url = request_route.request.url
        if urlparse(url).netloc == origin or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            problems.append(f"fetched from outside the site: {request_route.request.url}")
            request_route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}")
            if not request.url.startswith("data:") and urlparse(request.url).netloc == origin else None)
    page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400 else None)
    loaded: list[str] = []
    page.on("requestfinished", lambda request: loaded.append(urlparse(request.url).path))
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        page.wait_for_timeout(500)          # the widget manager renders after load
        if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count():
            page.wait_for_function(WIDGETS_DRAWN_JS, timeout=60_000)
        state = page.evaluate(PAGE_STATE_JS)
        state["explorer_checks"] = [check_explorer(page, root) for root in page.locator(".gm-explorer").all()]
        page.wait_for_timeout(200)
    finally:
        page.close()
    state["problems"] = problems
    state["loaded"] = loaded
    return state


# Until the manager has drawn every stored widget view (explorers included: their canvases drawn).
WIDGETS_DRAWN_JS = """() => {
    const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
    const drawn = document.querySelectorAll('.widget-subarea > *').length;
    const explorers = Array.from(document.querySelectorAll('.gm-explorer'));
    return drawn >= views && explorers.every(root => Number(root.dataset.frames) > 0);
}"""
# An explorer's canvas: the share of pixels with ink, a hash of them, its frame count and text line.
CANVAS_JS = """(root) => {
    const canvases = root.querySelectorAll('canvas'), canvas = canvases[canvases.length - 1];
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = 0, hash = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i] < 235 || pixels[i + 1] < 235 || pixels[i + 2] < 235) inked++;
        hash = (hash * 31 + pixels[i] + 7 * pixels[i + 1] + 13 * pixels[i + 2]) % 1000000007;
    }
    return {inked: inked / (pixels.length / 4), hash, frames: Number(root.dataset.frames),
            view: root.dataset.view || null, text: root.querySelector('.gm-text').textContent,
            name: root.dataset.name};
}"""


def check_explorer(page, root) -> dict:
    """An explorer on a page without a kernel: drawn, then redrawn after each move of its moving control."""
    from gen_models_utilities.widgets import EXPLORERS

    before = root.evaluate(CANVAS_JS)
    check = {"name": before["name"], "before": before}
    entry = EXPLORERS.get(before["name"])
    if entry is None:
        return check
    element = root.locator(f'[data-control="{entry.move}"] input, [data-control="{entry.move}"] select').first
    root.scroll_into_view_if_needed()
    for _ in range(3):                                  # three moves left: it ends away from the start
        element.focus()
        page.keyboard.press("ArrowLeft" if element.evaluate("el => Number(el.value) > 0") else "ArrowRight")
    page.wait_for_timeout(100)
    check["after"] = root.evaluate(CANVAS_JS)
    if before["name"] == "trainer":
        root.locator("button", has_text="Start").click()
        check["start"] = root.locator(".gm-status").inner_text()
    if before["name"] == "modes":                       # learned arrows are stored at t = 0, 0.5 and 1 only
        check["arrows_between"] = check["after"]["text"]
    return check


@pytest.fixture(scope="module")
def pages(site, server, browser) -> dict[str, dict]:
    """Every page reachable from the landing page by internal links: path -> its state."""
    seen: dict[str, dict] = {}
    queue = ["/index.html"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen[path] = visit(browser, server + path)
        for link in seen[path]["links"]:
            address = urlparse(urldefrag(link).url)
            if f"{address.scheme}://{address.netloc}" == server and address.path.endswith(".html"):
                queue.append(address.path)
    return seen


def notebook_pages() -> dict[str, Path]:
    """Site path -> the notebook it shows, as tools.build_site chooses them."""
    from tools import build_site

    return {"/" + path.with_suffix(".html").as_posix(): build_site.NOTEBOOKS / path
            for paths in build_site.chapter_pages().values() for path in paths}


def test_every_notebook_page_is_reached_from_the_navigation(pages):
    missing = sorted(set(notebook_pages()) - set(pages))
    assert not missing, f"no link from the site leads to {missing}; reached: {sorted(pages)}"


def test_no_page_fetches_from_outside_or_fails_to_load_something(pages):
    found = [f"{path}: {problem}" for path, state in pages.items() for problem in state["problems"]]
    assert not found, "\n".join(found)


def test_math_is_typeset_and_no_dollar_is_left(pages):
    for path, state in pages.items():
        assert not state["untypeset"], f"{path}: formulas MathJax did not typeset: {state['untypeset'][:5]}"
        assert not state["dollars"], f"{path}: raw '$' left in the prose: {state['dollars'][:5]}"
    assert pages[f"/{CHAPTER}.html"]["formulas"] > 20, "the chapter shows almost no typeset math"


def test_every_image_loads(pages):
    for path, state in pages.items():
        assert not state["broken_images"], f"{path}: images that did not load: {state['broken_images']}"
    for path in notebook_pages():
        if "student" not in path:       # the students' copy is handed out without outputs
            assert pages[path]["images"] > 0, f"{path} shows no figure"


def test_no_internal_link_is_broken(pages, server):
    broken = []
    for path, state in pages.items():
        for link in state["links"]:
            target, anchor = urldefrag(link)
            address = urlparse(target)
            if f"{address.scheme}://{address.netloc}" != server or not address.path.endswith(".html"):
                continue
            if address.path not in pages:
                broken.append(f"{path} -> {link} (no such page)")
            elif anchor and anchor not in pages[address.path]["ids"]:
                broken.append(f"{path} -> {link} (no element with id {anchor!r})")
    assert not broken, "\n".join(broken[:20])


def test_the_chapter_page_shows_every_section_in_its_navigation(pages):
    headings = section_headings(ROOT / "notebooks" / f"{CHAPTER}.ipynb")
    numbers = [re.match(r"\d+\.\d+", heading).group() for heading in headings if re.match(r"\d+\.\d+", heading)]
    assert numbers[:1] == ["17.1"] and numbers[-1:] == ["17.7"] and len(set(numbers)) >= 7, \
        f"the chapter's sections are not 17.1 ... 17.7: {headings}"
    state = pages[f"/{CHAPTER}.html"]
    for heading in headings:
        assert heading in state["h2"], f"section {heading!r} is not a heading of the page: {state['h2']}"
        assert heading in state["toc"], f"section {heading!r} is missing from the page's table of contents"


def stored_explorers(notebook: Path) -> list[str]:
    """The names of the explorers a notebook saved (their widget state's spec), in no particular order."""
    stored = json.loads(notebook.read_text())["metadata"].get("widgets", {})
    models = stored.get("application/vnd.jupyter.widget-state+json", {}).get("state", {}).values()
    return [model["state"]["spec"]["name"] for model in models if "spec" in model.get("state", {})]


def test_widgets_show_their_last_state(pages):
    for path, notebook in notebook_pages().items():
        stored = json.loads(notebook.read_text())["metadata"].get("widgets")
        state = pages[path]
        if not stored:
            continue
        assert state["widget_scripts"] > 0, f"{path}: the notebook stored widget state, the page has no widget"
        for marker in ("Error displaying widget", "IntSlider(", "VBox(children=", " explorer: {"):
            assert marker not in state["text"], f"{path}: page shows {marker!r}"
        names = sorted(check["name"] for check in state["explorer_checks"])
        assert names == sorted(stored_explorers(notebook)), f"{path}: explorers drawn {names}"


def test_explorers_are_live_without_a_kernel(pages):
    """Every explorer the notebooks saved is drawn from that state, not blank, and redraws when moved."""
    checked = 0
    for path, state in pages.items():
        for check in state["explorer_checks"]:
            name, before, after = check["name"], check["before"], check.get("after")
            assert before["inked"] > 0.02, f"{path}: the {name} explorer is blank"
            assert before["view"] != "message", f"{path}: the {name} explorer shows {before['text']!r}"
            assert after and after["frames"] > before["frames"] and after["hash"] != before["hash"], (
                f"{path}: the {name} explorer did not redraw when its control moved: {before} -> {after}")
            checked += 1
        if state["explorer_checks"]:
            assert any(p.startswith("/_static/explorer/explorer-") for p in state["loaded"]), (
                f"{path}: the explorers' module was not imported from the site's _static/explorer/")
            assert "/_static/widgets/anywidget.js" in state["loaded"], f"{path}: anywidget's front end not loaded"
    assert checked >= 7, f"only {checked} explorers checked on the site"


def test_what_a_page_cannot_do_it_says(pages):
    """Without a kernel: the trainer's Start says training needs one; learned arrows not stored say so."""
    checks = [check for state in pages.values() for check in state["explorer_checks"]]
    starts = [check["start"] for check in checks if check["name"] == "trainer"]
    assert starts and all(text == "training needs a running kernel: run the notebook" for text in starts), starts
    between = [check["arrows_between"] for check in checks if check["name"] == "modes"]
    assert between and all("not stored on this page (run the notebook)" in text for text in between), between


def test_exercises_appear_as_the_students_copy_only(pages):
    solutions = [path for path in pages if "exercises" in path and "student" not in path]
    assert not solutions, f"the site shows the solutions: {solutions}"
    students = [path for path in pages if path.endswith("_student.html")]
    assert students, "the site has no students' copy of the exercises"
    for path in students:
        assert "NotImplementedError" in pages[path]["text"], f"{path} holds no exercise stubs"
        assert "BEGIN SOLUTION" not in pages[path]["text"], f"{path} shows solution markers"
