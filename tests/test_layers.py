"""The layers are checked, not hoped for: import-linter's contracts, and what importing generation loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    """app > analysis > core, and generation imports none of them (pyproject's [tool.importlinter])."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.mark.parametrize("module", ["generation", "generation.cli", "generation.data", "generation.prompts"])
def test_importing_generation_loads_no_app_store_or_pandas(module: str) -> None:
    code = (f"import sys, json, {module}; "
            "print(json.dumps(sorted(m for m in ('streamlit', 'sqlite_utils', 'pandas', 'annotate', 'analysis')"
            " if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_importing_the_core_loads_no_streamlit_or_analysis() -> None:
    code = ("import sys, json, annotate.core.store, annotate.core.demo, annotate.cli; "
            "print(json.dumps(sorted(m for m in ('streamlit', 'analysis', 'annotate.app') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
