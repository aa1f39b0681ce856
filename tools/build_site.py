"""Build the book site: every notebook as an HTML page, from its stored outputs, readable offline.

    python -m tools.build_site            # writes build/site/html (open build/site/html/index.html)
    python -m tools.build_site --out DIR  # another output folder

Sphinx with MyST-NB and the Sphinx Book Theme (the engine of Jupyter Book 1) renders the
committed notebooks without executing them. The pages' scripts come from two pinned npm
packages, fetched once with `npm pack` (checked against their registry integrity) and served
from the site's own _static/ folder: MathJax 3 for the math, and the ipywidgets HTML manager
(its AMD build, loaded by require.js), which draws each widget in the state the notebook was saved
in. The explorers are anywidgets: anywidget's front end comes from the installed Python package,
and the explorers' ES module from the notebooks' own saved state, written to _static/explorer/ and
imported from there. Nothing is loaded from a CDN.

The pages: the chapter (notebooks/NN_*.ipynb), the companion notebooks (NN<letter>_*.ipynb)
and the exercises' student copies (exercises/*_student.ipynb; never the solutions). A notebook
added under those names appears in the navigation without editing anything else.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SITE_CONFIG = ROOT / "site"
BUILD = ROOT / "build" / "site"
NPM_CACHE = BUILD / "npm"


@dataclass(frozen=True)
class NpmAsset:
    """A pinned npm package whose files matching ``members`` are served from _static/``folder``."""
    version: str
    integrity: str            # the registry's sha512 of the tarball (npm view NAME@VERSION dist.integrity)
    folder: str
    members: re.Pattern       # matched against paths inside the tarball's package/; group 1 = served path


NPM_ASSETS = {
    "mathjax": NpmAsset(
        "3.2.2", "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        "mathjax", re.compile(r"es5/(tex-chtml\.js|(?!sre/)[^/]+/.+)$")),
    "@jupyter-widgets/html-manager": NpmAsset(
        "1.0.15", "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        "widgets", re.compile(r"dist/((embed-amd\.js|[^/]+\.(txt|woff2?|ttf|eot|svg)))$")),
    # The AMD loader the manager's embed-amd.js needs, to find anywidget's front end on the site.
    "requirejs": NpmAsset(
        "2.3.7", "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
        "widgets", re.compile(r"(require\.js)$")),
    # The icons of matplotlib's animation player (its HTML links them from a CDN).
    "font-awesome": NpmAsset(
        "4.7.0", "sha512-U6kGnykA/6bFmg1M/oT9EkFeIYv7JlX3bozwQJWiiLz6L0w3F5vBVPxHlwyX/vtNq1ckcpRKOB9f2Qal/VtFpg==",
        "font-awesome", re.compile(r"((css/font-awesome\.min\.css)|fonts/fontawesome-webfont\..+)$")),
}
# Addresses that the notebooks load from elsewhere, and the local copy under _static/ each page uses.
LOCAL_COPIES = {
    "https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css":
        "_static/font-awesome/css/font-awesome.min.css",
    "https://colab.research.google.com/assets/colab-badge.svg": "_static/colab-badge.svg",
}


def chapter_pages() -> dict[str, list[Path]]:
    """The notebooks the site shows, by part of the book: paths relative to notebooks/."""
    def found(pattern: str) -> list[Path]:
        return sorted(path.relative_to(NOTEBOOKS) for path in NOTEBOOKS.glob(pattern))
    return {
        "Chapter": found("[0-9][0-9]_*.ipynb"),
        "Beyond the chapter": found("[0-9][0-9][a-z]_*.ipynb"),
        "Exercises": found("exercises/*_student.ipynb"),
    }


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch_npm_package(name: str) -> Path:
    """The pinned tarball of ``name`` in build/site/npm, fetched with `npm pack` when missing."""
    version, integrity = NPM_ASSETS[name].version, NPM_ASSETS[name].integrity
    tarball = NPM_CACHE / (name.lstrip("@").replace("/", "-") + f"-{version}.tgz")
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise SystemExit("build_site: npm is needed once to fetch MathJax and the widget manager "
                             "(Debian: apt-get install npm)")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=NPM_CACHE, check=True,
                       stdout=subprocess.DEVNULL)
    if _integrity(tarball) != integrity:
        tarball.unlink()
        raise SystemExit(f"build_site: {tarball.name} does not match the pinned integrity {integrity}")
    return tarball


def unpack_assets(static: Path) -> None:
    """Extract the served files of each pinned npm package into ``static``/<folder>."""
    for name, asset in NPM_ASSETS.items():
        with tarfile.open(fetch_npm_package(name)) as archive:
            for member in archive.getmembers():
                match = asset.members.match(member.name.removeprefix("package/"))
                if member.isfile() and match:
                    target = static / asset.folder / match.group(1)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.extractfile(member).read())


# _static/widgets/embed.js, the one script site/conf.py names for pages with widgets: after the page has
# loaded (so no other script meets require.js), it loads require.js, points the module `anywidget` at
# this folder, then runs the manager's embed-amd.js, which draws every widget from the saved state.
WIDGETS_BOOTSTRAP = """// Loads the widget manager and anywidget's front end from this site (see tools/build_site.py).
(function () {
  var here = document.currentScript.src, folder = here.slice(0, here.lastIndexOf("/") + 1);
  function load(name, then) {
    var script = document.createElement("script");
    script.src = folder + name;
    script.onload = then;
    document.head.appendChild(script);
  }
  function start() {
    load("require.js", function () {
      window.requirejs.config({paths: {anywidget: folder + "anywidget"}});
      load("embed-amd.js", function () {});
    });
  }
  if (document.readyState === "complete") start(); else window.addEventListener("load", start);
})();
"""


def install_widget_front_ends(static: Path) -> None:
    """The bootstrap and anywidget's AMD front end (from the installed anywidget) into ``static``/widgets."""
    import anywidget

    folder = static / "widgets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "embed.js").write_text(WIDGETS_BOOTSTRAP)
    shutil.copyfile(Path(anywidget.__file__).parent / "nbextension" / "index.js", folder / "anywidget.js")


EXPLORER_MODULE = "gen_models_utilities.widgets/explorer.js"      # ExplorerModule.name in the saved state


def serve_explorer_modules(text: str, static: Path, up: str) -> str:
    """A notebook's text with each saved explorer module written to ``static``/explorer/ and its ``url`` set.

    The module is named by its content (what the notebook saved), so every page imports the code it
    was run with; ``up`` is the page's way back to the site's root.
    """
    notebook = json.loads(text)
    state = notebook.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    changed = False
    for model in state.get("state", {}).values():
        fields = model.get("state", {})
        if fields.get("name") == EXPLORER_MODULE and fields.get("code"):
            name = f"explorer-{hashlib.sha256(fields['code'].encode()).hexdigest()[:12]}.js"
            (static / "explorer").mkdir(parents=True, exist_ok=True)
            (static / "explorer" / name).write_text(fields["code"])
            fields["url"] = f"{up}_static/explorer/{name}"
            changed = True
    return json.dumps(notebook, ensure_ascii=False, indent=1) + "\n" if changed else text


def toctrees(pages: dict[str, list[Path]]) -> str:
    """MyST toctree directives for the landing page, one per part of the book."""
    blocks = []
    for caption, paths in pages.items():
        depth = 2 if caption == "Chapter" else 1
        entries = "\n".join(path.with_suffix("").as_posix() for path in paths)
        blocks.append(f"```{{toctree}}\n:maxdepth: {depth}\n:caption: {caption}\n\n{entries}\n```\n")
    return "\n".join(blocks)


def stage(source: Path) -> None:
    """Copy the configuration, the landing page, the notebooks and the assets into ``source``."""
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(SITE_CONFIG, source, ignore=shutil.ignore_patterns("__pycache__"))
    pages = chapter_pages()
    index = source / "index.md"
    index.write_text(index.read_text() + "\n" + toctrees(pages))
    for path in (path for paths in pages.values() for path in paths):
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        text = (NOTEBOOKS / path).read_text()
        up = "../" * len(path.parent.parts)
        for remote, local in LOCAL_COPIES.items():
            text = text.replace(remote, up + local)
        (source / path).write_text(serve_explorer_modules(text, source / "_static", up))
    unpack_assets(source / "_static")
    install_widget_front_ends(source / "_static")


def build(out: Path, work: Path = BUILD) -> Path:
    """Stage the sources under ``work``/src and run sphinx-build into ``out``; returns ``out``."""
    source = work / "src"
    stage(source)
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", "--fail-on-warning",
                    str(source), str(out), "-d", str(work / "doctrees")], check=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD / "html", help="output folder (default build/site/html)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    out = build(args.out.resolve())
    pages = sum(len(paths) for paths in chapter_pages().values())
    print(f"site: {pages} notebook pages in {out} ({time.monotonic() - start:.0f} s); "
          f"open {out / 'index.html'}")


if __name__ == "__main__":
    main()
