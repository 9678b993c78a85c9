"""What CI's dependency-floors job (.ci/floors.sh) installs covers what its tests import.

The floors job runs the fast tests in a virtualenv holding only the product's floors and a short list of test tools;
a test module that imports another package at its top stops the whole job at collection.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
FLOORS_SCRIPT = ROOT / ".ci" / "floors.sh"
OWN = {"annotate", "analysis", "generation", "tests"}


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement.strip()).group(0).lower()


def floors_array(name: str) -> list[str]:
    """The words of a bash array `NAME=(...)` of .ci/floors.sh."""
    found = re.search(rf"^{name}=\(([^)]*)\)", FLOORS_SCRIPT.read_text(), re.MULTILINE)
    assert found, f".ci/floors.sh has no {name}=(...) line"
    return found.group(1).split()


def floors_environment() -> set[str]:
    """Distributions the floors job installs: core dependencies, the generation extra and its TEST_TOOLS."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_requirement_name(r) for r in project["dependencies"] + project["optional-dependencies"]["generation"]}
    return with_requirements(names | set(floors_array("TEST_TOOLS")))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def with_requirements(names: set[str]) -> set[str]:
    """The distributions and everything they require (without extras), as installed here."""
    seen, todo = set(), [_normal(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_normal(_requirement_name(r)) for r in requirements if "extra ==" not in r]
    return seen


def top_level_imports(path: Path) -> set[str]:
    """Top-level packages a module imports when it is collected (module body only: function-local imports and
    pytest.importorskip run later, and skip cleanly)."""
    names = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_floors_job_installs_every_package_its_tests_import_at_the_top() -> None:
    installed = floors_environment()
    entries = [ROOT / entry for entry in floors_array("FLOORS_TESTS")]
    files = [p for entry in entries for p in (entry.rglob("*.py") if entry.is_dir() else [entry])]
    files += [ROOT / "tests" / "conftest.py", ROOT / "tests" / "helpers.py"]
    providers = metadata.packages_distributions()
    missing = {}
    for path in files:
        for name in top_level_imports(path) - OWN - set(sys.stdlib_module_names) - {"__future__"}:
            distributions = {_normal(d) for d in providers.get(name, [name])}
            if not distributions & installed:
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, (f"the floors job (.ci/floors.sh) does not install {sorted(missing)}, which these test "
                         f"modules import at their top: {missing}; add it to TEST_TOOLS or import it with "
                         f"pytest.importorskip")
