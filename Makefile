# Two commands for users: `make lab` opens the chapter, `make test` runs every test.
# Each sets itself up on first use: a virtual environment in .venv, the package installed
# in editable mode, and a Jupyter kernel for it. A second run only checks a stamp file.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: help setup lab test test-fast bench figures student student-check checkpoints browser-deps clean

help:
	@echo "make lab        open notebooks/17_flow_matching.ipynb in JupyterLab"
	@echo "make test       run every test (unit, nbval on all notebooks, browser)"
	@echo "make bench      measure speed and quality, write benchmarks/results.json"
	@echo "make figures    regenerate the PNGs in figures/"
	@echo "make student    write student copies of the exercise notebooks"
	@echo "make checkpoints  retrain the checkpoints the package ships"

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

lab: setup
	$(BIN)/jupyter lab notebooks/17_flow_matching.ipynb

# Notebooks nbval compares (student copies are excluded: their stubs raise by design).
NOTEBOOKS := $(wildcard notebooks/*.ipynb) $(filter-out %_student.ipynb,$(wildcard notebooks/exercises/*.ipynb))
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

test: setup browser-deps
	$(BIN)/python -m gen_models_utilities.student_copies --check
	$(BIN)/python -m pytest tests $(NOTEBOOKS) $(NBVAL)

test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow and not browser"

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m benchmarks.run

figures: setup
	$(BIN)/python -m gen_models_utilities.figures figures

student: setup
	$(BIN)/python -m gen_models_utilities.student_copies $(ARGS)

checkpoints: setup
	$(BIN)/python -m gen_models_utilities.checkpoints --retrain

clean:
	rm -rf $(VENV) .pytest_cache
