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

.PHONY: app test lint bench bench-smoke wheel-check floors

app: $(VENV)/.installed-app
	$(VENV)/bin/nle-annotate serve --db $(DB) --demo --server.address $(ADDRESS)

# The suite on one pytest-xdist worker per core (TEST_WORKERS=0: one process); tests that share a resource (a
# browser test file's server, Ray, processes racing on one database) keep to one worker each (xdist_group).
# The eight-session Submit hammer runs HAMMER_SECONDS here; CI runs it again for the full 60 s (.ci/run).
TEST_WORKERS ?= auto
HAMMER_SECONDS ?= 15
# One math thread per process: the workers, servers and subprocesses already fill the cores, and idle OpenMP and
# OpenBLAS threads spin on a core another process needs.
test: $(VENV)/.installed-test
	NLE_E2E_HAMMER_SECONDS=$(HAMMER_SECONDS) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
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

# Every script in benchmarks/ at its smallest size, two at a time; each must exit 0 and print lines matching its
# regular expressions (its figures). One line per script: 'COMMAND => REGEX [=> REGEX ...]'; gpu_check.sh --cpu
# runs sparse_vs_full.py, paper_run.py and sweep_engines.py at --smoke size (tests/test_benchmarks.py checks that no
# script is left out). CI runs it after `make test` (docs/benchmarks.md).
BENCH_SMOKE = \
  'benchmarks/gpu_check.sh --cpu => att_q\+layer_norm +[0-9,]+ +[0-9.]+ +[0-9.]+ => speedup [0-9.]+x => x the paper => speed-up of Ray over local: [0-9.]+x => gpu_check: 5 of 5 parts ok' \
  'benchmarks/annotate_latency.py --smoke => save a rating \(store\) +[0-9.]+ +[0-9.]+ => page rerun \(AppTest\) +[0-9.]+' \
  'benchmarks/assignment_claim.py --smoke => queue_length: p50 [0-9.]+ ms, p95 [0-9.]+ ms' \
  'benchmarks/browser_latency.py --smoke => ratio +p50 +[0-9.]+x => ^ +2 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x' \
  'benchmarks/report_scale.py --smoke => nle-report: wall [0-9.]+ s .* peak RSS [0-9.]+ GB' \
  'benchmarks/crowd_load.py --smoke => Submit → next item drawn, as the worker sees it: p50 [0-9]+ ms, p95 [0-9]+ ms => answers lost: 0;' \
  'benchmarks/power_scale.py --smoke => --power adds \(medians\): wall -?[0-9.]+ s' \
  'benchmarks/metric_correlation_speed.py --smoke => 1,000 items, 50 resamples: [0-9.]+ s wall, [0-9.]+ s CPU'

bench-smoke: $(VENV)/.installed-test
	$(VENV)/bin/python .ci/bench_smoke.py $(BENCH_SMOKE)

# Install the wheel (not editable) into a fresh venv and start `serve --demo` from an empty folder (CI runs this).
wheel-check:
	bash .ci/wheel_check.sh

# Install every dependency floor of pyproject.toml exactly into a fresh venv and run the fast tests.
floors:
	bash .ci/floors.sh
