# The two set-up commands: `make app` (install, start the app on the demo study) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PIP = $(VENV)/bin/python -m pip
DB ?= data/annotations.db
# Only this machine can reach `make app`; set ADDRESS=0.0.0.0 behind a reverse proxy (docs/deploying.md).
ADDRESS ?= localhost
# Where torch comes from. Empty: pip's own configuration (here, the local CPU wheel of torch 2.13.0). On a machine
# whose index serves CUDA builds, `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` avoids gigabytes.
TORCH_INDEX ?=

.PHONY: app test lint bench wheel-check floors

app: $(VENV)/.installed-app
	$(VENV)/bin/nle-annotate serve --db $(DB) --demo --server.address $(ADDRESS)

# The suite on one pytest-xdist worker per core (TEST_WORKERS=0: one process); tests that share a resource (the
# browser, Ray, processes racing on one database) keep to one worker each (xdist_group; docs/development.md).
TEST_WORKERS ?= auto
test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

$(VENV)/.installed-app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e .
	touch $@

# torch==2.13.0 first: it is the CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -q -e '.[dev,generation,cluster]'
	touch $@ $(VENV)/.installed-app

# Install the wheel (not editable) into a fresh venv and start `serve --demo` from an empty folder (CI runs this).
wheel-check:
	bash .ci/wheel_check.sh

# Install every dependency floor of pyproject.toml exactly into a fresh venv and run the fast tests.
floors:
	bash .ci/floors.sh
