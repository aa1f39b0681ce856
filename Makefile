# Two commands for users: `make lab` opens the chapter, `make test` runs every test.
# Each sets itself up on first use: a virtual environment in .venv, the package installed
# in editable mode, and a Jupyter kernel for it. A second run only checks a stamp file.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: help setup lab lab-settings test test-fast lint bench figures student grade checkpoints notebooks browser-deps site site-deps clean

help:
	@echo "make lab          open notebooks/17_flow_matching.ipynb in JupyterLab"
	@echo "make test         run every test (unit, notebooks against their .py sources, nbval, browser)"
	@echo "make test-fast    the quick unit tests only"
	@echo "make lint         ruff on the package, tools, benchmarks, tests and the notebooks' .py sources"
	@echo "make bench        measure speed and quality, write benchmarks/results.json"
	@echo "make notebooks    sync every notebook with its .py source (jupytext), execute it, then"
	@echo "                  regenerate the student copies and the figures"
	@echo "make student      write missing student copies of the exercise notebooks (ARGS=--force replaces)"
	@echo "make grade SUBMISSIONS=<folder> [GRADES=build/grades] [TIMEOUT=300]"
	@echo "                  grade every submitted notebook in the folder: grades.csv and summary.html"
	@echo "make figures      regenerate the PNGs in figures/"
	@echo "make site         build the book site (every notebook as a page, offline) into build/site/html"
	@echo "make checkpoints  retrain the checkpoints the package ships (ARGS='--only fm_gaussian' for one)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (flow matching)" >/dev/null
	touch $(STAMP)

# Debian's Chromium for the browser test (Playwright cannot download a browser here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "browser-deps: could not install chromium; the browser test will skip"; \
	  else echo "browser-deps: chromium missing and apt-get unavailable; the browser test will skip"; fi; }

# The book site's tools: Sphinx, MyST-NB and the Sphinx Book Theme (the `site` extra), and npm, which
# tools.build_site uses once to fetch its pinned MathJax and ipywidgets manager into build/site/npm.
SITE_STAMP := $(VENV)/.installed-site
site-deps: $(SITE_STAMP)

$(SITE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,site]"
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) \
	      || echo "site-deps: could not install npm; the site cannot fetch MathJax"; \
	  else echo "site-deps: npm missing and apt-get unavailable; the site cannot fetch MathJax"; fi; }
	touch $(SITE_STAMP)

# Every notebook as an HTML page from its stored outputs (nothing is executed): build/site/html.
site: site-deps
	$(BIN)/python -m tools.build_site

# jupyter/overrides.json turns JupyterLab's news and update checks off, so it opens without asking.
lab: setup lab-settings
	$(BIN)/jupyter lab notebooks/17_flow_matching.ipynb

# JupyterLab's defaults for this environment: no news prompt, no update check.
lab-settings:
	install -D -m 644 jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json

# The source notebooks, each paired with a jupytext percent-format .py beside it; nbval compares them.
# Student copies are excluded: they are generated from the solutions, and their stubs raise by design.
NOTEBOOKS := $(wildcard notebooks/*.ipynb) $(filter-out %_student.ipynb,$(wildcard notebooks/exercises/*.ipynb))
NOTEBOOK_SOURCES := $(NOTEBOOKS:.ipynb=.py)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

test: setup browser-deps site-deps
	$(BIN)/python -m ruff check gen_models_utilities tools benchmarks tests $(NOTEBOOK_SOURCES)
	$(BIN)/python -m tools.student_copies --check
	$(BIN)/python -m pytest tests $(NOTEBOOKS) $(NBVAL)

test-fast: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -m "not slow and not browser"

lint: setup
	$(BIN)/python -m ruff check gen_models_utilities tools benchmarks tests $(NOTEBOOK_SOURCES)

# The peer libraries, without their dependencies: their own requirements would pull another
# torch (a CUDA build) and torchvision; what they import (torch, numpy, POT, torchdiffeq) is here.
BENCH_PEERS := torchcfm==1.0.7 flow-matching==1.0.10

bench: setup
	$(BIN)/python -m pip install --quiet --no-deps $(BENCH_PEERS)
	$(BIN)/python -m benchmarks.run $(ARGS)

# Repository maintenance: commands of the top-level tools/ folder, run from the repository root.
figures: setup
	$(BIN)/python -m tools.export_figures figures

student: setup
	$(BIN)/python -m tools.student_copies $(ARGS)

# Each submitted notebook runs in a fresh kernel (two at a time, CPU only, offline) with the solution's
# check cells put back; the submissions are never modified. TIMEOUT: seconds per notebook.
SUBMISSIONS ?=
GRADES ?= build/grades
TIMEOUT ?= 300
grade: setup
	$(BIN)/python -m tools.grade "$(SUBMISSIONS)" --grades "$(GRADES)" --timeout "$(TIMEOUT)" $(ARGS)

checkpoints: setup
	GEN_MODELS_PROGRESS=0 $(BIN)/python -m tools.retrain_checkpoints --retrain $(ARGS)

# Each notebook is paired with its .py source (jupytext) and committed executed. Run this after
# editing a notebook or its .py, the package code a notebook prints, or a checkpoint: the newer of
# the two files wins the sync, then the notebook runs in a fresh kernel.
EXECUTE := GEN_MODELS_PROGRESS=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900
notebooks: setup
	$(BIN)/jupytext --sync $(NOTEBOOKS)
	for nb in $(NOTEBOOKS); do $(EXECUTE) $$nb || exit 1; done
	$(BIN)/jupytext --sync $(NOTEBOOKS)
	$(BIN)/python -m tools.student_copies --force
	$(BIN)/python -m tools.export_figures figures

clean:
	rm -rf $(VENV) .pytest_cache
