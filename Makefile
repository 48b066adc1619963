# dlref: every target that needs Python depends on $(STAMP), which creates .venv and installs
# the package with its docs and test extras, pinned by $(CONSTRAINTS). Point CONSTRAINTS at your
# own file (or at /dev/null) to install other versions.
PYTHON      ?= python3
VENV        ?= .venv
CONSTRAINTS ?= constraints.txt
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
SPHINXOPTS  ?= -W --keep-going -q
PORT        ?= 8000
NPM         ?= npm
MATHJAX     := docs/_static/mathjax/tex-mml-chtml.js

# One thread per process: on a 2-core machine torch's default threads fight the build/test process.
export OMP_NUM_THREADS = 1
export PYTHONHASHSEED = 0

.PHONY: help install site-assets html html-noplot doctest pytest test check-site doctest-audit doctest-cpus gallery-repro device-check bench lint format serve clean

help:
	@echo "make html      build the site in docs/_build/html (gallery executed, warnings are errors)"
	@echo "make test      pytest + Sphinx doctest builder + html: everything CI proves"
	@echo "make doctest   run every example on the site with the Sphinx doctest builder"
	@echo "make check-site  the built site in headless Chromium: math, search, console, phone width"
	@echo "make doctest-audit  flag printed numbers another CPU could round differently"
	@echo "make doctest-cpus   run every example under each CPU kernel choice (default, avx2, avx512)"
	@echo "make gallery-repro  run every gallery script under each CPU kernel choice: same numbers"
	@echo "make device-check   gallery + public API on a virtual GPU: CUDA's device rules, host syncs"
	@echo "make bench     time dlref against the torch built-ins (ratio in one run)"
	@echo "make lint      ruff check + ruff format --check + code width on the site"
	@echo "make serve     serve the built site on http://localhost:$(PORT)"
	@echo "make clean     remove builds and generated pages (keeps .venv)"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c $(CONSTRAINTS) torch
	$(BIN)/python -m pip install -q --disable-pip-version-check -c $(CONSTRAINTS) -e ".[docs,test]"
	touch $@

install: $(STAMP)

# JavaScript pinned in package-lock.json: MathJax for the site, playwright-core for check-site.
node_modules/.package-lock.json: package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# MathJax served from _static (with its fonts), so formulas render offline.
$(MATHJAX): node_modules/.package-lock.json
	rm -rf docs/_static/mathjax
	cp -r node_modules/mathjax docs/_static/mathjax
	mkdir -p docs/_static/mathjax/fonts/mathjax-newcm-font
	cp -r node_modules/@mathjax/mathjax-newcm-font/chtml node_modules/@mathjax/mathjax-newcm-font/chtml.js docs/_static/mathjax/fonts/mathjax-newcm-font/
	touch $@

site-assets: $(MATHJAX)

html: $(STAMP) $(MATHJAX)
	$(BIN)/sphinx-build -b html $(SPHINXOPTS) docs docs/_build/html

html-noplot: $(STAMP) $(MATHJAX)
	$(BIN)/sphinx-build -b html $(SPHINXOPTS) -D plot_gallery=0 docs docs/_build/html

doctest: $(STAMP)
	$(BIN)/sphinx-build -b doctest $(SPHINXOPTS) -D plot_gallery=0 docs docs/_build/doctest

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: pytest doctest html

# Printed numbers within a few float32 ulps of their rounding boundary (would flip on another CPU).
doctest-audit: $(STAMP)
	$(BIN)/python tools/doctest_audit.py

# Every example (docstrings and pages) passes under each CPU kernel choice torch offers.
doctest-cpus: $(STAMP)
	$(BIN)/python tools/doctest_cpus.py

# Every gallery script prints the same numbers under each CPU kernel choice (and how long it takes).
gallery-repro: $(STAMP)
	$(BIN)/python tools/gallery_repro.py

# The built site in headless Chromium (Debian's chromium package; installed here if missing).
check-site: html node_modules/.package-lock.json
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	node tools/check_site.mjs

# The gallery and every public function that takes tensors or a device, on a virtual GPU
# (tools/vgpu.py) that enforces CUDA's placement and generator rules; no GPU needed. Fails on any
# violation; prints the host syncs of each gallery script.
device-check: $(STAMP)
	$(BIN)/python tools/device_check.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Code on the site fits its 79-character column: page fences and gallery scripts. The ceiling
# is the lines still wider in docs/practice.md and docs/performance.md; lower it as they shrink.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/code_width.py --max 23

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: html
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory docs/_build/html

clean:
	rm -rf docs/_static/mathjax docs/_build docs/auto_examples docs/gen_modules docs/api/generated docs/sg_execution_times.rst
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
