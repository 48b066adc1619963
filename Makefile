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
MJ_DIR      := docs/_static/mathjax
MATHJAX     := $(MJ_DIR)/tex-chtml.js

# One thread per process: on a 2-core machine torch's default threads fight the build/test process.
export OMP_NUM_THREADS = 1
export PYTHONHASHSEED = 0

.PHONY: help install site-assets html html-noplot doctest pytest test check-site chromium doctest-audit doctest-cpus gallery-repro device-check bench lint format serve clean

help:
	@echo "make html      build the site in docs/_build/html (gallery executed, warnings are errors)"
	@echo "make test      pytest + Sphinx doctest builder + html: everything CI proves"
	@echo "make doctest   run every example on the site with the Sphinx doctest builder"
	@echo "make check-site  the built site in headless Chromium: math, search, links, code width, load time"
	@echo "make chromium  download a Chromium for check-site into ~/.cache/ms-playwright (no root)"
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

# MathJax served from _static, so formulas render offline: only the files the pages load (the list
# `node tools/check_site.mjs --list-mathjax` prints): the TeX-to-CommonHTML component (its font
# data built in), the lazy-typesetting extension, the TeX packages it loads on demand, the speech
# worker with its English and Nemeth rules (screen readers), and the font's woff2 files and
# dynamic ranges (each fetched only when a page needs it). A missing one is a 404 in check-site.
MJ_SRC := node_modules/mathjax
MJ_FONT := node_modules/@mathjax/mathjax-newcm-font/chtml
$(MATHJAX): node_modules/.package-lock.json Makefile
	rm -rf $(MJ_DIR) docs/_build/html/_static/mathjax
	mkdir -p $(MJ_DIR)/ui $(MJ_DIR)/input/tex $(MJ_DIR)/sre/mathmaps $(MJ_DIR)/fonts/mathjax-newcm-font
	cp $(MJ_SRC)/tex-chtml.js $(MJ_SRC)/LICENSE $(MJ_DIR)/
	cp $(MJ_SRC)/ui/lazy.js $(MJ_DIR)/ui/
	cp -r $(MJ_SRC)/input/tex/extensions $(MJ_DIR)/input/tex/
	cp $(MJ_SRC)/sre/speech-worker.js $(MJ_DIR)/sre/
	cp $(MJ_SRC)/sre/mathmaps/base.json $(MJ_SRC)/sre/mathmaps/en.json $(MJ_SRC)/sre/mathmaps/nemeth.json $(MJ_DIR)/sre/mathmaps/
	cp -r $(MJ_FONT) $(MJ_DIR)/fonts/mathjax-newcm-font/
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

# The built site in headless Chromium. The browser: $(CHROMIUM) if set, else the one `make
# chromium` downloads, else a chromium or google-chrome on the PATH (tools/check_site.mjs says
# how to get one when there is none). Nothing here needs root.
check-site: html node_modules/.package-lock.json
	node tools/check_site.mjs

# A Chromium for check-site without root: playwright's build, into ~/.cache/ms-playwright
# (set PLAYWRIGHT_BROWSERS_PATH to put it elsewhere).
chromium: node_modules/.package-lock.json
	node_modules/.bin/playwright-core install chromium

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
	$(BIN)/python tools/code_width.py --max 15

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: html
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory docs/_build/html

clean:
	rm -rf $(MJ_DIR) docs/_build docs/auto_examples docs/gen_modules docs/api/generated docs/sg_execution_times.rst
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
