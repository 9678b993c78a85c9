#!/usr/bin/env bash
# `pip install .` (not editable) into a fresh virtualenv, then `nle-annotate serve --demo` from an empty folder:
# the app entry and the demo study must come from the installed package, and the database lands in that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
# Build from a copy of the checkout's files (tracked and not ignored): setuptools' build/ folder inside the
# checkout would otherwise carry modules deleted since the last build into the wheel.
mkdir "$WORK/src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && xargs -0 cp --parents -t "$WORK/src" 2>/dev/null || true)
else
  cp -r "$ROOT/." "$WORK/src" && rm -rf "$WORK/src/build" "$WORK/src/.venv"
fi
"$WORK/venv/bin/python" -m pip install -q "$WORK/src"
# The other two entry scripts start from the wheel too (the core install has no torch: --help must not need it).
"$WORK/venv/bin/nle-report" --help >/dev/null
"$WORK/venv/bin/nle-gen" --help >/dev/null
PORT=$("$WORK/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$WORK/run" && cd "$WORK/run"
"$WORK/venv/bin/nle-annotate" serve --db annotations.db --demo --server.port "$PORT" --server.headless true \
  --server.address 127.0.0.1 >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/_stcore/health" >/dev/null 2>&1 \
     && curl -fsS "http://127.0.0.1:$PORT/" | grep -q '<div id="root">'; then
    # The served page answers; now run the installed entry script itself once (what a browser session runs),
    # which creates the database here and loads the packaged demo study.
    NLE_DB=annotations.db NLE_DEMO=1 "$WORK/venv/bin/python" - <<'PY'
from importlib.resources import files

from streamlit.testing.v1 import AppTest

from annotate.core.store import Store

at = AppTest.from_file(str(files("annotate.app") / "main.py"), default_timeout=60).run()
assert not at.exception, at.exception
assert any("demo-alice" in m.value for m in at.markdown) or any("demo-alice" in str(c.value) for c in at.caption), \
    "the sign-in page does not show the demo annotators"
with Store("annotations.db") as store:
    assert [s["name"] for s in store.studies()] == ["demo", "feb-example"], store.studies()
    n = len(store.items_frame("demo"))
    feb = len(store.ratings_frame("feb-example"))  # FEB's sample: package data of the wheel
    assert feb == 720, feb
print(f"wheel-check: installed serve answered /_stcore/health; its entry script loaded the demo study ({n} items)"
      f" and feb-example ({feb} ratings)")
PY
    test -f annotations.db
    exit 0
  fi
  sleep 1
done
echo "wheel-check: the installed app did not answer /_stcore/health in 120 s" >&2
cat "$WORK/serve.log" >&2
exit 1
