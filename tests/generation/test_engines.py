"""Sweep engines: Ray (local, 2 CPUs) runs every job once, retries a failed attempt and reports a failing run;
the local engine retries; the Slurm array script; --plan counts runs and estimates GPU-hours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation.cli import main
from generation.config import TrainConfig
from generation.sweep import is_complete

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--train-arg=--max-steps", "--train-arg=2", "--train-arg=--n-train", "--train-arg=3",
        "--train-arg=--n-val", "--train-arg=3", "--train-arg=--batch-size", "--train-arg=3", "--first", "2"]


def _sweep(model: Path, runs: Path, *extra: str) -> list[str]:
    return ["sweep", "--model", str(model), "--data-root", str(FIXTURES), "--out-root", str(runs), *TINY,
            "--no-progress", *extra]


def _run_dirs(runs: Path) -> list[Path]:
    return sorted(p.parent for p in runs.glob("*/*/seed-*/log.txt"))


@pytest.fixture
def ray_shut_down():
    """Every Ray test leaves no Ray behind, whatever happens."""
    ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
    yield
    ray.shutdown()
    assert not ray.is_initialized()


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_runs_eight_jobs_once(tiny_t5: Path, tmp_path: Path, capsys, ray_shut_down) -> None:
    runs = tmp_path / "runs"
    grid = ["--datasets", "esnli", "ecqa", "--seeds", "0", "1", "--configs", "att_q", "layer_norm"]
    code = main(_sweep(tiny_t5, runs, *grid, "--engine", "ray", "--num-cpus", "2", "--cpus-per-run", "1"))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    dirs = _run_dirs(runs)
    assert len(dirs) == 8 and all(is_complete(d) for d in dirs)
    assert "8 done, 0 failed, 0 cancelled" in out
    for d in dirs:
        log = (d / "log.txt").read_text()
        assert log.count("=== attempt") == 1 and "$ nle-gen train" in log and "$ nle-gen generate" in log
        info = json.loads((d / "run.json").read_text())
        assert info["step_seconds"] > 0 and info["device"].startswith("cpu") and info["bf16_used"] is False
    logs = {d: (d / "log.txt").read_text() for d in dirs}

    assert main(_sweep(tiny_t5, runs, *grid, "--engine", "ray", "--num-cpus", "2")) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert {d: (d / "log.txt").read_text() for d in dirs} == logs  # nothing ran again

    assert main(_sweep(tiny_t5, runs, *grid, "--plan")) == 0
    plan = capsys.readouterr().out
    assert "runs: 8 (2 datasets x 2 seeds x 2 configurations)" in plan
    assert "complete: 8, partial: 0, to run: 0" in plan


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_retries_a_failed_attempt_and_reports_a_failing_run(tiny_t5: Path, tmp_path: Path, capsys,
                                                                 monkeypatch, ray_shut_down) -> None:
    monkeypatch.chdir(tmp_path)  # relative --out-root: Ray workers run from the driver's directory
    runs = Path("runs")
    monkeypatch.setenv("NLE_GEN_INJECT_FAILURE", "once:att_q/seed-0,always:att_q/seed-1")
    code = main(_sweep(tiny_t5, runs, "--datasets", "esnli", "--seeds", "0", "1", "--configs", "att_q",
                       "--engine", "ray", "--num-cpus", "2", "--max-retries", "1"))
    out = capsys.readouterr().out
    assert code == 1
    flaky, broken = runs / "esnli" / "att_q" / "seed-0", runs / "esnli" / "att_q" / "seed-1"
    assert is_complete(flaky)
    flaky_log = (flaky / "log.txt").read_text()
    assert "=== attempt 2" in flaky_log and "injected failure" in flaky_log
    assert not is_complete(broken) and not (broken / "run.json").exists()
    assert f"FAILED {broken} after 2 attempt(s): train exited with status 1" in out
    assert "RuntimeError: injected failure" in out.split(f"FAILED {broken}")[1]  # the tail of its log
    assert "1 done, 1 failed, 0 cancelled" in out

    monkeypatch.delenv("NLE_GEN_INJECT_FAILURE")
    assert main(_sweep(tiny_t5, runs, "--datasets", "esnli", "--seeds", "0", "1", "--configs", "att_q",
                       "--plan")) == 0
    assert "complete: 1, partial: 1, to run: 1" in capsys.readouterr().out


def test_local_engine_retries_once(tiny_t5: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    runs = tmp_path / "runs"
    monkeypatch.setenv("NLE_GEN_INJECT_FAILURE", "once:seed-3")
    args = _sweep(tiny_t5, runs, "--datasets", "esnli", "--seeds", "3", "--configs", "layer_norm")
    assert main([*args, "--engine", "local", "--max-retries", "0"]) == 1  # no retry: reported, exit status 1
    assert "FAILED" in capsys.readouterr().out
    assert main([*args, "--engine", "local"]) == 0  # the marker left by the first attempt: now it passes
    run = runs / "esnli" / "layer_norm" / "seed-3"
    assert is_complete(run) and (run / "log.txt").read_text().count("=== attempt") == 2


def test_slurm_array_matches_the_expected_script(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["sweep", "--model", "t5-large", "--datasets", "esnli", "--seeds", "0", "1", "2", "--configs",
                 "att_q+layer_norm", "--data-root", "data", "--out-root", "runs", "--train-arg=--epochs",
                 "--train-arg=10", "--engine", "slurm", "--slurm-array", "sweep.sbatch", "--cpus-per-run", "4",
                 "--slurm-option=--time=02:00:00"])
    assert code == 0
    assert "3 array tasks" in capsys.readouterr().out
    cwd = str(tmp_path.resolve())
    for name in ("sweep.sbatch", "sweep.jobs"):
        expected = (FIXTURES / "sweep" / f"expected{Path(name).suffix}").read_text().replace("{cwd}", cwd)
        assert (tmp_path / name).read_text() == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "slurm"], "--engine slurm needs --slurm-array"),
        (["--engine", "slurm", "--slurm-array", "x.sbatch", "--gpus-per-run", "0.5"], "whole number for Slurm"),
        (["--engine", "ray", "--slurm-array", "x.sbatch"], "--slurm-array needs --engine slurm"),
        (["--engine", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be > 0"),
        (["--engine", "local", "--max-retries", "-1"], "--max-retries must be >= 0"),
    ],
)
def test_impossible_engine_options_fail_before_anything_runs(extra: list[str], message: str, tmp_path: Path,
                                                             monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["sweep", "--model", "m", "--datasets", "esnli", "--seeds", "0", "--configs", "att_q",
                 "--data-root", "data", "--out-root", "runs", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def _complete_run(run: Path, config: str, step_seconds: float, train: TrainConfig) -> None:
    """A finished run as train and generate leave it: run.json with the settings its job asked for (so the
    sweep counts it complete, not mismatched) and the fields --plan reads."""
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"complete": True, "config": config, "step_seconds": step_seconds,
                                              "device": "NVIDIA H200", "train_config": train.to_dict()}))
    (run / "metrics.json").write_text("{}")
    (run / "nles.jsonl").write_text("")


def test_plan_estimates_gpu_hours_from_measured_steps(tmp_path: Path, capsys) -> None:
    from generation.sweep import plan_sweep

    runs = tmp_path / "runs"
    jobs = {(j.configuration, j.seed): j for j in plan_sweep("t5-large", ["esnli"], [0], ["att_q", "full_ft"],
                                                             "data", runs).jobs}
    _complete_run(runs / "esnli" / "att_q" / "seed-0", "att_q", 2.0, jobs["att_q", 0].train)
    _complete_run(runs / "esnli" / "full_ft" / "seed-0", "full_ft", 6.0, jobs["full_ft", 0].train)
    (runs / "esnli" / "full_ft" / "seed-1").mkdir(parents=True)  # started, interrupted: partial
    code = main(["sweep", "--model", "t5-large", "--datasets", "esnli", "--seeds", "0", "1", "2", "--configs",
                 "att_q", "full_ft", "--data-root", "data", "--out-root", str(runs), "--plan", "--gpus-per-run",
                 "0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "runs: 6 (1 datasets x 3 seeds x 2 configurations)" in out
    assert "complete: 2, partial: 1, to run: 4" in out
    # 48 examples / batch 4 = 12 steps x 25 epochs = 300 steps per run; att_q: 2 runs x 300 x 2 s = 1200 s,
    # full_ft: 2 x 300 x 6 s = 3600 s; 4800 s = 1.33 h of runs at 0.5 GPU each = 0.67 GPU-hours
    assert "estimate: 1,200 training steps to run = 0.67 GPU-hours at 0.5 GPU per run (1.33 h of runs" in out
    assert "on NVIDIA H200" in out


def test_summary_and_exit_status(tmp_path: Path) -> None:
    from generation.engines import Outcome, Report
    from generation.sweep import Job

    def job(seed: int) -> Job:
        run = tmp_path / "esnli" / "att_q" / f"seed-{seed}"
        run.mkdir(parents=True)
        (run / "log.txt").write_text("".join(f"line {k}\n" for k in range(30)))
        return Job("esnli", seed, "att_q", run, (("nle-gen", "train"),))

    ok, bad, stopped = job(0), job(1), job(2)
    assert Report([Outcome(ok, "done", 1, 60.0)]).exit_status() == 0
    report = Report([Outcome(ok, "done", 1, 60.0), Outcome(bad, "failed", 2, 90.0, "train exited with status 1")])
    assert report.exit_status() == 1
    text = report.summary()
    assert text.splitlines()[1].split() == ["done", "esnli", "att_q", "0", "1", "1.0", str(ok.run_dir)]
    assert f"FAILED {bad.run_dir} after 2 attempt(s): train exited with status 1" in text
    assert text.endswith("\n".join(f"line {k}" for k in range(15, 30)))  # the last 15 lines of its log
    interrupted = Report([Outcome(ok, "done", 1, 60.0), Outcome(stopped, "cancelled", 0, 0.0)], interrupted=True)
    assert interrupted.exit_status() == 130 and "1 done, 0 failed, 1 cancelled (interrupted" in interrupted.summary()


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ctrl_c_cancels_what_has_not_finished(tiny_t5: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
    import os
    import signal
    import subprocess
    import sys
    import threading

    runs = tmp_path / "runs"
    # 60 steps per run (the later --max-steps wins): long enough that Ctrl-C lands while runs are left
    args = [sys.executable, "-m", "generation.cli", *_sweep(tiny_t5, runs, "--datasets", "esnli", "--seeds", "0", "1",
                                                             "2", "--configs", "att_q", "--train-arg=--max-steps",
                                                             "--train-arg=60")]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    # one CPU: the runs go one at a time, so some are still to do when the first is complete. The progress bar
    # (on, here) tells the moment the sweep has counted the first run done: Ctrl-C is sent then.
    proc = subprocess.Popen([*(a for a in args if a != "--no-progress"), "--engine", "ray", "--num-cpus", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    chunks, first_done = [], threading.Event()

    def read() -> None:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            chunks.append(chunk)
            if b"done 1," in b"".join(chunks[-2:]):
                first_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    first_done.wait(240)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(30)
    out = b"".join(chunks).decode()
    assert proc.returncode == 130, out
    done = [d for d in sorted(runs.glob("esnli/att_q/seed-*")) if is_complete(d)]
    assert 1 <= len(done) < 3
    assert "0 failed" in out and "cancelled (interrupted" in out
    lines = [ln.split() for ln in out.splitlines() if ln.startswith(("done ", "cancelled "))]
    assert sorted(Path(w[-1]) for w in lines if w[0] == "done") == done
    plan = subprocess.run([*args, "--plan"], capture_output=True, text=True, env=env).stdout
    assert f"complete: {len(done)}," in plan and f"to run: {3 - len(done)}" in plan


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_joins_an_existing_cluster(tiny_t5: Path, tmp_path: Path, monkeypatch, ray_shut_down) -> None:
    import os
    import subprocess
    import sys

    import ray

    root = str(Path(__file__).resolve().parents[2])
    # The "cluster": a Ray started here (2 CPUs) whose workers do not have this checkout on their path, so the
    # sweep must ship its code to them (py_modules); the sweep is another process that joins via RAY_ADDRESS.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    address = ray.init(address="local", num_cpus=2, include_dashboard=False).address_info["gcs_address"]
    env = {**os.environ, "RAY_ADDRESS": address, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-m", "generation.cli",
                          *_sweep(tiny_t5, Path("runs"), "--datasets", "esnli", "--seeds", "0", "1", "--configs",
                                  "att_q"), "--engine", "ray"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 done, 0 failed" in out.stdout
    assert all(is_complete(tmp_path / "runs" / "esnli" / "att_q" / f"seed-{s}") for s in (0, 1))


@pytest.mark.parametrize(("step", "settings", "message"), [
    ("train", '{"model": "m"}', "train settings: TrainConfig.__init__() missing 5 required"),
    ("train", '{"model": "m", "dataset": "esnli", "data_dir": "d", "seed": 0, "config": "att_x", "out": "o"}',
     "unknown component 'att_x'"),
    ("generate", '{"run": "r", "out": "o", "bogus": 1}', "generate settings: got an unexpected keyword argument"),
    ("generate", "[1]", "expected a JSON object, got list"),
    ("train", "not json", "the train settings on stdin are not JSON"),
])
def test_the_local_engines_child_refuses_bad_settings_in_one_line(step: str, settings: str, message: str,
                                                                   tmp_path: Path) -> None:
    """`python -m generation.jobs STEP` (what the local engine runs) reads its settings as JSON on stdin; bad
    ones are one error line and nothing written."""
    import os
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "generation.jobs", step], input=settings, capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("nle-gen: error:") and message in done.stderr and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
