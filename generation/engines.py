"""Sweep engines: run planned jobs here one after another (local), as Ray tasks (ray), or write a Slurm array
script (slurm); `--plan` counts runs and estimates GPU-hours. Ray is imported only when it is used.

The local and Ray engines call the library (generation.jobs: `train()` on the job's TrainConfig, then
`evaluate_run()`), in a child process or in the Ray worker; a Slurm array runs the job's `nle-gen` command lines
(docs/sweeps.md says why).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import math
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from generation.jobs import encode_step, run_step
from generation.rundir import read_run

if TYPE_CHECKING:
    from generation.sweep import Job

LOG_FILE = "log.txt"
Status = Literal["done", "failed", "cancelled"]


def add_engine_arguments(s: argparse.ArgumentParser) -> None:
    """The sweep options of this module (engine, resources, retries, Slurm, --plan)."""
    s.add_argument("--engine", choices=["local", "ray", "slurm"],
                   help="run the jobs: local (one after another), ray (tasks on a local or existing Ray cluster), "
                        "slurm (write an sbatch array script); without it the jobs are printed")
    s.add_argument("--plan", action="store_true", help="count runs (complete, partial, to run) and estimate GPU-hours")
    s.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster to join (default: $RAY_ADDRESS; none: start Ray on this machine)")
    s.add_argument("--num-cpus", type=int, help="CPUs of the Ray started on this machine (default: all)")
    s.add_argument("--num-gpus", type=int, help="GPUs of the Ray started on this machine (default: all)")
    s.add_argument("--cpus-per-run", type=float,
                   help="CPUs per run: Ray resource, Slurm --cpus-per-task and torch threads (default 1; "
                        "local: torch's own default)")
    s.add_argument("--gpus-per-run", type=float,
                   help="GPUs per run, fractions allowed on Ray (default: 1 when there are GPUs, else 0)")
    s.add_argument("--max-retries", type=int, default=1, help="attempts after a failed one (default 1)")
    s.add_argument("--slurm-array", metavar="OUT.sbatch", help="--engine slurm: where to write the array script")
    s.add_argument("--slurm-option", action="append", default=[], metavar="OPT",
                   help="extra #SBATCH line, e.g. --slurm-option=--time=02:00:00 (repeatable)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")


def validate(args: argparse.Namespace) -> None:
    """Impossible combinations, before anything runs or is written."""
    if args.cpus_per_run is not None and args.cpus_per_run <= 0:
        raise ValueError("--cpus-per-run must be > 0")
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        raise ValueError("--gpus-per-run must be >= 0")
    if args.max_retries < 0:
        raise ValueError("--max-retries must be >= 0")
    if args.engine == "slurm":
        if not args.slurm_array:
            raise ValueError("--engine slurm needs --slurm-array OUT.sbatch")
        if args.gpus_per_run is not None and args.gpus_per_run != int(args.gpus_per_run):
            raise ValueError("--gpus-per-run must be a whole number for Slurm (--gres=gpu:N)")
    elif args.slurm_array:
        raise ValueError("--slurm-array needs --engine slurm")


def dispatch(args: argparse.Namespace, jobs: list[Job], split: str = "validation") -> int:
    """`nle-gen sweep` with --plan or --engine: the exit status."""
    validate(args)
    if args.plan:
        print(plan_report(jobs, args.gpus_per_run if args.gpus_per_run is not None else 1.0, split))
        return 0
    if args.engine == "slurm":
        script, joblist = write_slurm_array(jobs, args.slurm_array, cpus_per_run=args.cpus_per_run or 1.0,
                                            gpus_per_run=int(args.gpus_per_run if args.gpus_per_run is not None else 1),
                                            options=args.slurm_option)
        print(f"wrote {script} ({len(jobs)} array tasks) and {joblist}; submit with: sbatch {shlex.quote(str(script))}")
        return 0
    if not jobs:
        print("nothing to run: every run is complete")
        return 0
    if args.engine == "ray":
        report = run_ray(jobs, address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                         cpus_per_run=args.cpus_per_run or 1.0, gpus_per_run=args.gpus_per_run,
                         max_retries=args.max_retries, progress=not args.no_progress)
    else:
        report = run_local(jobs, cpus_per_run=args.cpus_per_run, max_retries=args.max_retries,
                           progress=not args.no_progress)
    print(report.summary())
    return report.exit_status()


# --- one job ---------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Child processes get SIGTERM when their worker dies (a cancelled Ray task, a killed driver)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: Ctrl-C still reaches the child through its process group


def _subprocess_runner(log, env: dict[str, str]):
    """Run a step in a child process (`python -m generation.jobs STEP`, its settings as JSON on stdin) with its
    output appended to the log (the local engine)."""

    def run(step: str, settings) -> int:
        cmd = [sys.executable, "-m", "generation.jobs", step]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=env,
                                preexec_fn=_die_with_parent)
        try:
            try:
                with proc.stdin:
                    proc.stdin.write(encode_step(step, settings).encode("utf-8"))
            except BrokenPipeError:
                pass  # the child ended before reading its settings: its exit status and log say why
            return proc.wait()
        except BaseException:  # Ctrl-C: stop the child too
            proc.kill()
            proc.wait()
            raise

    return run


@contextlib.contextmanager
def _output_to(log):
    """Python's and C's stdout/stderr into the log while a job runs in this process (a Ray worker)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _in_process_runner(log):
    """Run a step by calling the library in this process: a Ray worker imports torch once for many runs."""

    def run(step: str, settings) -> int:
        with _output_to(log):
            try:
                return run_step(step, settings, quiet=True)
            except SystemExit as exc:
                return exc.code if isinstance(exc.code, int) else 1
            except Exception:
                traceback.print_exc()
                return 1

    return run


def execute_job(job: Job, attempt: int, cpus_per_run: float | None = None, in_process: bool = False) -> dict:
    """Run a job's commands with their output appended to RUN_DIR/log.txt; {'rc', 'seconds', 'step'}.

    Training that completed in an earlier attempt is not repeated. Torch threads follow cpus_per_run."""
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    threads = max(1, int(cpus_per_run)) if cpus_per_run else None
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if in_process:
            import torch

            torch.set_num_threads(threads)
    start = time.monotonic()
    with (run_dir / LOG_FILE).open("a", encoding="utf-8", buffering=1) as log:
        run = _in_process_runner(log) if in_process else _subprocess_runner(log, env)
        log.write(f"=== attempt {attempt}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {socket.gethostname()}, pid "
                  f"{os.getpid()}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')} ===\n")
        for step, settings, argv in job.steps():
            if step == "train":
                try:
                    read_run(run_dir)
                    log.write("# training complete in an earlier attempt; not repeated\n")
                    continue
                except (ValueError, OSError):
                    pass
            log.write("$ " + shlex.join([*argv, "--quiet"]) + "\n")
            log.flush()
            try:
                rc = run(step, settings)
            except BaseException:
                log.write(f"# interrupted during {step}; the run is partial (no complete run.json/metrics.json)\n")
                raise
            if rc != 0:
                log.write(f"# {step} exited with status {rc}\n")
                return {"rc": rc, "seconds": time.monotonic() - start, "step": step}
    return {"rc": 0, "seconds": time.monotonic() - start, "step": None}


def log_tail(run_dir: Path, lines: int = 15) -> str:
    """The last lines of a run's log (for failure reports)."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return "(no log)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --- reporting -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    job: Job
    status: Status
    attempts: int
    seconds: float
    error: str = ""


@dataclass
class Report:
    outcomes: list[Outcome]
    interrupted: bool = False
    startup_seconds: float = 0.0  # Ray start-up (0 for local)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    def exit_status(self) -> int:
        """130 after Ctrl-C, 1 when any run failed, else 0."""
        return 130 if self.interrupted else 1 if self.count("failed") else 0

    def summary(self) -> str:
        """A table of every run, then each failure with its run directory and the tail of its log."""
        rows = [("status", "dataset", "configuration", "seed", "tries", "minutes", "run directory")]
        for o in self.outcomes:
            rows.append((o.status, o.job.dataset, o.job.configuration, str(o.job.seed), str(o.attempts),
                         f"{o.seconds / 60:.1f}", str(o.job.run_dir)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        if self.startup_seconds:
            lines.append(f"Ray start-up: {self.startup_seconds:.1f} s")
        lines.append(f"{self.count('done')} done, {self.count('failed')} failed, {self.count('cancelled')} cancelled"
                     + (" (interrupted: cancelled runs without a complete run.json are partial and run "
                        "again next time)" if self.interrupted else ""))
        for o in self.outcomes:
            if o.status == "failed":
                lines += [f"\nFAILED {o.job.run_dir} after {o.attempts} attempt(s): {o.error}",
                          f"--- last lines of {Path(o.job.run_dir) / LOG_FILE}:", log_tail(o.job.run_dir)]
        return "\n".join(lines)


class _Progress:
    """One bar over runs with done / failed / running counts."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="run", desc="sweep", disable=not enabled, file=sys.stderr)
        self.done = self.failed = self.running = 0
        self.shown = ""
        self.update(0)

    def update(self, finished: int) -> None:
        text = f"done {self.done}, failed {self.failed}, running {self.running}"
        if text != self.shown:  # redraw on change only (a log file gets a line per change, not per second)
            self.shown = text
            self.bar.set_postfix_str(text, refresh=not finished)
        self.bar.update(finished)

    def close(self) -> None:
        self.bar.close()


def _error(result: dict) -> str:
    return f"{result['step']} exited with status {result['rc']}"


# --- local -----------------------------------------------------------------------------------------


def run_local(jobs: list[Job], cpus_per_run: float | None = None, max_retries: int = 1,
              progress: bool = True) -> Report:
    """Jobs one after another in subprocesses; a failed job is retried up to max_retries times."""
    outcomes: list[Outcome] = []
    bar = _Progress(len(jobs), progress)
    try:
        for job in jobs:
            attempt, seconds = 0, 0.0
            bar.running = 1
            bar.update(0)
            while True:
                attempt += 1
                result = execute_job(job, attempt, cpus_per_run)
                seconds += result["seconds"]
                if result["rc"] == 0 or attempt > max_retries:
                    break
            ok = result["rc"] == 0
            outcomes.append(Outcome(job, "done" if ok else "failed", attempt, seconds, "" if ok else _error(result)))
            bar.done += ok
            bar.failed += not ok
            bar.running = 0
            bar.update(1)
    except KeyboardInterrupt:
        finished = {id(o.job) for o in outcomes}
        outcomes += [Outcome(j, "cancelled", 0, 0.0) for j in jobs if id(j) not in finished]
        return Report(outcomes, interrupted=True)
    finally:
        bar.close()
    return Report(outcomes)


# --- Ray -------------------------------------------------------------------------------------------


def _ray_task(job: Job, attempt: int, cpus_per_run: float, cwd: str) -> dict:
    """What a Ray worker runs: one attempt of one job, in the worker's own process, from the driver's directory
    (relative --data-root/--out-root then mean the same on every node of a shared file system)."""
    try:
        os.chdir(cwd)
        return execute_job(job, attempt, cpus_per_run, in_process=True)
    finally:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # a fractional-GPU neighbour may need the memory


def start_ray(address: str | None, num_cpus: int | None, num_gpus: int | None):
    """Join the cluster at `address`, or start Ray on this machine with the given resources."""
    try:
        import ray
    except ImportError as exc:
        raise ValueError("--engine ray needs Ray: pip install 'nle-humaneval[cluster]'") from exc
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if address:
        if num_cpus is not None or num_gpus is not None:
            raise ValueError("--num-cpus/--num-gpus are for the Ray started here; a cluster has its own resources")
        # Ship this package's code with the job (Ray's py_modules), so every node runs the driver's version of
        # it; torch, transformers and peft must be installed on the nodes.
        ray.init(address=address, runtime_env={"py_modules": [str(Path(__file__).resolve().parent)]},
                 **{k: v for k, v in quiet.items() if k != "include_dashboard"})
    else:
        # Workers must import this very copy of the package (a checkout may shadow an installed one).
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus,
                 runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
    return ray


def run_ray(jobs: list[Job], address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
            cpus_per_run: float = 1.0, gpus_per_run: float | None = None, max_retries: int = 1,
            progress: bool = True) -> Report:
    """Each job a Ray task requesting cpus_per_run and gpus_per_run; failed attempts are resubmitted up to
    max_retries times; Ctrl-C cancels what has not finished."""
    t0 = time.monotonic()
    ray = start_ray(address, num_cpus, num_gpus)
    startup = time.monotonic() - t0
    try:
        resources = ray.cluster_resources()
        gpus = gpus_per_run if gpus_per_run is not None else (1.0 if resources.get("GPU", 0) >= 1 else 0.0)
        for name, want in (("CPU", cpus_per_run), ("GPU", gpus)):
            if not address and want > resources.get(name, 0):
                raise ValueError(f"each run asks for {want:g} {name} but this machine's Ray has "
                                 f"{resources.get(name, 0):g}")
        # Our own retries (not Ray's): each attempt is logged and counted the same way as on the local engine.
        # CPU workers are reused (torch and transformers imported once per worker); a GPU worker serves one run,
        # so each run starts with its own CUDA context on the GPU Ray assigned it.
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=0, max_calls=1 if gpus else 0)(_ray_task)
        return _drive(ray, task, jobs, cpus_per_run, max_retries, progress, startup)
    finally:
        ray.shutdown()


def _drive(ray, task, jobs: list[Job], cpus_per_run: float, max_retries: int, progress: bool,
           startup: float) -> Report:
    cwd = str(Path.cwd())
    pending = {task.remote(job, 1, cpus_per_run, cwd): (job, 1) for job in jobs}
    spent: dict[int, float] = {}
    outcomes: dict[int, Outcome] = {}
    bar = _Progress(len(jobs), progress)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            bar.running = min(len(pending), _running_slots(ray, cpus_per_run))
            for ref in ready:
                job, attempt = pending[ref]
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died (killed, out of memory) or the task could not start
                    _log_ray_error(job, attempt, exc)
                    result = {"rc": -1, "seconds": 0.0, "step": f"Ray task ({type(exc).__name__})"}
                del pending[ref]  # only now: Ctrl-C during ray.get leaves it for the handler below
                spent[id(job)] = spent.get(id(job), 0.0) + result["seconds"]
                if result["rc"] != 0 and attempt <= max_retries:
                    pending[task.remote(job, attempt + 1, cpus_per_run, cwd)] = (job, attempt + 1)
                    continue
                ok = result["rc"] == 0
                outcomes[id(job)] = Outcome(job, "done" if ok else "failed", attempt, spent[id(job)],
                                            "" if ok else _error(result))
                bar.done += ok
                bar.failed += not ok
                bar.update(1)
            if not ready:
                bar.update(0)
    except KeyboardInterrupt:
        # Only tasks still running are cancelled: cancelling one whose reply is already on its way trips an
        # internal check in Ray ("Tried to complete task that was not pending") that aborts the driver.
        finished, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in set(pending) - set(finished):
            ray.cancel(ref)  # not forced: a running task gets KeyboardInterrupt and stops its child process
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=10.0)
        for ref in ready:  # a task that finished just before Ctrl-C still counts as done
            job, attempt = pending[ref]
            try:
                result = ray.get(ref)
            except Exception:  # cancelled
                continue
            if result["rc"] == 0:
                outcomes[id(job)] = Outcome(job, "done", attempt, spent.get(id(job), 0.0) + result["seconds"])
        return Report([outcomes.get(id(j)) or Outcome(j, "cancelled", 0, spent.get(id(j), 0.0)) for j in jobs],
                      interrupted=True, startup_seconds=startup)
    finally:
        bar.close()
    return Report([outcomes[id(j)] for j in jobs], startup_seconds=startup)


def _log_ray_error(job: Job, attempt: int, exc: Exception) -> None:
    """What Ray reports about a task that failed outside our code goes to the run's log too (its tail is shown)."""
    try:
        Path(job.run_dir).mkdir(parents=True, exist_ok=True)
        with (Path(job.run_dir) / LOG_FILE).open("a", encoding="utf-8") as log:
            log.write(f"# attempt {attempt}: the Ray task failed: {exc}\n")
    except OSError:
        pass  # the driver may not see the workers' file system; the summary still names the error


def _running_slots(ray, cpus_per_run: float) -> int:
    """How many runs fit in the cluster's CPUs right now (the bar's 'running' count; Ray does not say)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_run))


# --- Slurm -----------------------------------------------------------------------------------------


def job_line(job: Job) -> str:
    """One line of the job list: the job's commands with their output appended to RUN_DIR/log.txt."""
    run = shlex.quote(str(job.run_dir))
    cmds = " && ".join(shlex.join([*argv, "--quiet"]) for argv in job.argv)
    return f"mkdir -p {run} && {{ {cmds}; }} >> {run}/{LOG_FILE} 2>&1"


def write_slurm_array(jobs: list[Job], script: str | Path, cpus_per_run: float = 1.0, gpus_per_run: int = 1,
                      options: Iterable[str] = (), cwd: Path | None = None) -> tuple[Path, Path]:
    """An sbatch array script (one index per job) and its job list (OUT.jobs beside it)."""
    if not jobs:
        raise ValueError("nothing to submit: every run is complete")
    script = Path(script).resolve()
    joblist = script.with_suffix(".jobs")
    cwd = (cwd or Path.cwd()).resolve()
    head = ["#!/bin/bash",
            "#SBATCH --job-name=nle-gen-sweep",
            f"#SBATCH --array=0-{len(jobs) - 1}",
            f"#SBATCH --cpus-per-task={max(1, math.ceil(cpus_per_run))}",
            f"#SBATCH --chdir={cwd}"]
    if gpus_per_run:
        head.append(f"#SBATCH --gres=gpu:{gpus_per_run}")
    head += [f"#SBATCH {o}" for o in options]
    body = ["# Written by `nle-gen sweep --engine slurm`: array index i runs line i+1 of the job list;",
            "# each run's output goes to RUN_DIR/log.txt. Run the sweep command again to list what is left.",
            "set -euo pipefail",
            f"export OMP_NUM_THREADS={max(1, int(cpus_per_run))}",
            f"JOBS={shlex.quote(str(joblist))}",
            'eval "$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$JOBS")"']
    joblist.write_text("".join(job_line(j) + "\n" for j in jobs), encoding="utf-8")
    script.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return script, joblist


# --- plan ------------------------------------------------------------------------------------------


def planned_steps(job: Job) -> int:
    """Optimizer steps of a job's training, from its TrainConfig (as the Trainer counts them)."""
    cfg = job.train  # batch size, accumulation and max steps resolved as `train` resolves them
    if cfg is None:
        return 0
    if cfg.max_steps > 0:
        return cfg.max_steps
    batches = math.ceil(cfg.n_train / cfg.batch_size)
    return math.ceil(math.ceil(batches / cfg.gradient_accumulation_steps) * cfg.epochs)


def plan_report(jobs: list[Job], gpus_per_run: float = 1.0, split: str = "validation") -> str:
    """Runs, complete / partial / to run, and GPU-hours for what is left from the measured step times
    (run.json's step_seconds and device)."""
    from generation.sweep import is_complete

    complete = [j for j in jobs if is_complete(j.run_dir, split)]
    todo = [j for j in jobs if not is_complete(j.run_dir, split)]
    partial = [j for j in todo if Path(j.run_dir).exists()]
    measured: dict[str, list[float]] = {}
    devices: set[str] = set()
    for j in complete:
        info = read_run(j.run_dir)
        if info.get("step_seconds"):
            measured.setdefault(j.configuration, []).append(info["step_seconds"])
            devices.add(info.get("device") or "?")
    dims = (len({j.dataset for j in jobs}), len({j.seed for j in jobs}), len({j.configuration for j in jobs}))
    lines = [f"runs: {len(jobs)} ({dims[0]} datasets x {dims[1]} seeds x {dims[2]} configurations)",
             f"complete: {len(complete)}, partial: {len(partial)}, to run: {len(todo)}"]
    if not todo:
        return "\n".join(lines)
    if not measured:
        lines.append("GPU-hours: no estimate yet (no completed run records its step time; run one first)")
        return "\n".join(lines)
    every = [s for v in measured.values() for s in v]
    overall = statistics.median(every)
    seconds = sum(planned_steps(j) * statistics.median(measured.get(j.configuration, [overall])) for j in todo)
    steps = sum(planned_steps(j) for j in todo)
    lines.append(f"step time: median {overall:.3f} s over {len(every)} completed run(s) on {', '.join(sorted(devices))}"
                 " (per configuration where measured)")
    lines.append(f"estimate: {steps:,} training steps to run = {seconds / 3600 * gpus_per_run:.2f} GPU-hours at "
                 f"{gpus_per_run:g} GPU per run ({seconds / 3600:.2f} h of runs; generation not included)")
    if all(d.startswith("cpu") for d in devices):
        lines.append("note: step times were measured on CPU; a GPU run is much faster")
    return "\n".join(lines)
