# Two entry points for a fresh machine (see README):
#   make run   -> install everything, build the index from documents/, start the web chat
#   make test  -> install everything (dev extras), lint, type-check, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# CPU build of torch: on these machines pip takes torch==2.13.0 from local disk.
# Elsewhere set TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# Every optional extra (see pyproject.toml), so both commands find everything installed.
EXTRAS ?= dev,langchain,plots,fit,bench

.PHONY: install dev run test lint bench browser-deps

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) app.py

browser-deps:
	bash scripts/browser-deps.sh

lint: install
	$(VENV)/bin/ruff check qa app.py eval tests scripts
	$(VENV)/bin/ruff format --check qa app.py eval tests scripts
	$(VENV)/bin/mypy

test: install browser-deps lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(PY) scripts/bench.py $(BENCH_ARGS)
