# The two set-up commands: `make app` (install, start the app on the demo study) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PIP = $(VENV)/bin/python -m pip
DB ?= data/annotations.db

.PHONY: app test lint bench

app: $(VENV)/.installed-app
	$(VENV)/bin/nle-annotate serve --db $(DB) --demo

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

$(VENV)/.installed-app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e .
	touch $@

# torch==2.13.0 first: it is the CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,generation,cluster]'
	touch $@ $(VENV)/.installed-app
