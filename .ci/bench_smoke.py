"""`make bench-smoke`: run each benchmark at its smallest size and check that it printed its figures.

    python .ci/bench_smoke.py [--jobs 2] [--timeout 600] 'COMMAND => REGEX [=> REGEX ...]' ...

Each argument is a command (a benchmarks/*.py script runs with this interpreter, a .sh script with bash and
PYTHON set to it) and one or more Python regular expressions, each of which must match a line of its output
(stdout and stderr together): the figures it exists to print. A command passes when it exits 0 and every
expression matched. All commands run, `--jobs` at a time; a one-line verdict each (with the end of its output when
it failed), then the total wall and CPU time. Exit status 1 when any failed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEPARATOR = " => "


@dataclass
class Smoke:
    command: list[str]
    expected: list[str]

    @property
    def name(self) -> str:
        return " ".join(self.command)


def parse(spec: str) -> Smoke:
    """'COMMAND => REGEX [=> REGEX ...]' with at least one regular expression, each valid."""
    command, *expected = spec.split(SEPARATOR)
    if not command.strip() or not expected or not all(e.strip() for e in expected):
        raise SystemExit(f"bench_smoke: expected 'COMMAND{SEPARATOR}REGEX', got {spec!r}")
    for e in expected:
        try:
            re.compile(e)
        except re.error as exc:
            raise SystemExit(f"bench_smoke: {spec!r}: bad regular expression {e!r}: {exc}") from None
    return Smoke(shlex.split(command), [e.strip() for e in expected])


def argv(command: list[str]) -> list[str]:
    if command[0].endswith(".py"):
        return [sys.executable, *command]
    if command[0].endswith(".sh"):
        return ["bash", *command]
    return command


def run(smoke: Smoke, timeout: float) -> tuple[Smoke, str | None, str, float]:
    """(smoke, the reason it failed or None, its output, wall seconds)."""
    env = {**os.environ, "PYTHON": sys.executable,
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(argv(smoke.command), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
        return smoke, f"still running after {timeout:.0f} s (killed)", out, time.perf_counter() - t0
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return smoke, f"exit status {done.returncode}", done.stdout, wall
    missing = [e for e in smoke.expected if not re.search(e, done.stdout, re.MULTILINE)]
    if missing:
        return smoke, f"printed no line matching {' or '.join(map(repr, missing))}", done.stdout, wall
    return smoke, None, done.stdout, wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("smokes", nargs="+", metavar="'COMMAND => REGEX'")
    p.add_argument("--jobs", type=int, default=2, help="commands run at once (default 2)")
    p.add_argument("--timeout", type=float, default=600, help="seconds before a command is killed (default 600)")
    a = p.parse_args()
    smokes = [parse(s) for s in a.smokes]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench-smoke: {len(smokes)} commands, {a.jobs} at a time, load average {load}", flush=True)
    t0 = time.perf_counter()
    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for future in as_completed([pool.submit(run, s, a.timeout) for s in smokes]):
            smoke, reason, out, wall = future.result()
            if reason is None:
                print(f"ok      {smoke.name}  ({wall:.1f} s)", flush=True)
                continue
            failed += 1
            tail = "\n".join(f"  | {line}" for line in out.rstrip().splitlines()[-25:])
            print(f"{tail}\nFAILED  {smoke.name}  ({wall:.1f} s): {reason}", flush=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"bench-smoke: {len(smokes) - failed} of {len(smokes)} ok in {time.perf_counter() - t0:.1f} s wall, "
          f"{children.ru_utime + children.ru_stime:.1f} s CPU; load average now "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
