#!/usr/bin/env bash
# The dependency floors are true: install every `>=` floor of pyproject.toml's core dependencies and `generation`
# extra exactly (`pkg==floor`) into a fresh virtualenv, with torch==2.13.0 (the CPU wheel; torch's own floor is
# left to GPU users' CUDA builds), the project without dependencies, and the test tools; then run the fast tests.
# FLOORS_VENV=path keeps (and reuses) the virtualenv; by default it is a temporary folder removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ -n "${FLOORS_VENV:-}" ]; then VENV=$FLOORS_VENV; else
  TMP=$(mktemp -d); VENV=$TMP/venv; trap 'rm -rf "$TMP"' EXIT
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
# pkg>=X  ->  pkg==X, for the core dependencies and the generation extra (torch excepted).
mapfile -t FLOORS < <("$PYTHON" - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for req in project["dependencies"] + project["optional-dependencies"]["generation"]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", req.replace(" ", "")).groups()
    if name != "torch":
        print(f"{name}=={floor}")
PY
)
echo "floors: ${FLOORS[*]}"
$PIP install -q torch==2.13.0 ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
$PIP install -q "${FLOORS[@]}"
# The test tools and oracles at their current versions (they are not the product's dependencies), then the project
# itself. tests/test_packaging.py checks that every test module the fast tests import at the top is covered here.
TEST_TOOLS=(pytest hypothesis pytest-timeout krippendorff scikit-learn statsmodels)
$PIP install -q "${TEST_TOOLS[@]}"
$PIP install -q --no-deps -e .
$PIP check || echo "note: pip check reports the conflicts above (floors of transitive requirements)"
$VENV/bin/python -m pip freeze | grep -iE "^($(printf '%s|' "${FLOORS[@]%%==*}")torch)==" || true
# The fast tests of the three packages (browser, reliability subprocesses and `slow` tests test the code, not
# the floors, and run in `make test` at the current versions).
FLOORS_TESTS=(tests/annotate tests/analysis tests/generation tests/test_cli_docs.py)
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not slow and not e2e" "${FLOORS_TESTS[@]}" "$@"
