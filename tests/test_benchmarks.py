"""The benchmarks cannot rot unnoticed: each has a --smoke size that `make bench-smoke` runs (CI calls it after
`make test`), the runner fails a run that prints no figure, and the model benchmarks take their sizes from the
model they build. The smoke runs themselves are not run here (they belong to `make bench-smoke`)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def bench_smoke_specs() -> list[str]:
    """The quoted 'COMMAND => REGEX' entries of the Makefile's BENCH_SMOKE."""
    text = ROOT.joinpath("Makefile").read_text()
    block = re.search(r"^BENCH_SMOKE = \\\n((?:.*\\\n)*.*\n)", text, re.MULTILINE)
    assert block, "Makefile: no BENCH_SMOKE = \\ block"
    return shlex.split(block.group(1).replace("\\\n", " "))


def gpu_check_commands() -> list[str]:
    """gpu_check.sh's logical lines (continuations joined) that run a benchmarks/*.py script."""
    text = BENCHMARKS.joinpath("gpu_check.sh").read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if re.search(r"benchmarks/\w+\.py", line) and not line.startswith("#")]


def test_every_benchmark_runs_at_its_smoke_size_in_make_bench_smoke() -> None:
    runner = load(ROOT / ".ci" / "bench_smoke.py", "bench_smoke")
    smokes = [runner.parse(spec) for spec in bench_smoke_specs()]  # each with a valid figure pattern
    listed = {Path(s.command[0]).name: s.command[1:] for s in smokes}
    assert listed.get("gpu_check.sh") == ["--cpu"]
    through_gpu_check = {m for line in gpu_check_commands() for m in re.findall(r"benchmarks/(\w+\.py)", line)}
    # gpu_check.sh --cpu sets SMOKE=--smoke, and every script it runs gets it
    assert re.search(r'--cpu.*\n(.*\n)*?.*SMOKE=--smoke', BENCHMARKS.joinpath("gpu_check.sh").read_text())
    assert all("$SMOKE" in line for line in gpu_check_commands()), gpu_check_commands()
    scripts = [p for p in sorted(BENCHMARKS.glob("*.py")) if 'if __name__ == "__main__":' in p.read_text()]
    assert len(scripts) >= 10, [p.name for p in scripts]
    for script in scripts:
        assert '"--smoke"' in script.read_text(), f"{script.name} has no --smoke option"
        assert listed.get(script.name) == ["--smoke"] or script.name in through_gpu_check, (
            f"{script.name} runs at --smoke size neither on a BENCH_SMOKE line of the Makefile nor in gpu_check.sh")
    for script in sorted(BENCHMARKS.glob("*.sh")):
        assert script.name in listed, f"{script.name} is not on a BENCH_SMOKE line of the Makefile"


def test_ci_runs_bench_smoke_after_make_test() -> None:
    commands = [line.split()[:2] for line in ROOT.joinpath(".ci", "run").read_text().splitlines()
                if line.startswith("make ")]
    assert ["make", "test"] in commands and ["make", "bench-smoke"] in commands
    assert commands.index(["make", "test"]) < commands.index(["make", "bench-smoke"])


def run_smoke(*specs: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "bench_smoke.py"), "--jobs", "2", *specs],
                          capture_output=True, text=True, timeout=120)


def test_bench_smoke_fails_a_run_without_its_figure_or_with_an_error(tmp_path: Path) -> None:
    good, silent, broken = tmp_path / "good.py", tmp_path / "silent.py", tmp_path / "broken.py"
    good.write_text("print('step p50 0.26 ms')\n")
    silent.write_text("print('done')\n")
    broken.write_text("print('step p50 0.26 ms')\nraise SystemExit(3)\n")
    done = run_smoke(f"{good} => step p50 [0-9.]+ ms", f"{silent} => step p50 [0-9.]+ ms",
                     f"{broken} => step p50 [0-9.]+ ms")
    assert done.returncode == 1
    assert re.search(r"^ok +\S+good\.py", done.stdout, re.MULTILINE)
    assert re.search(r"^FAILED +\S+silent\.py .*printed no line matching 'step p50", done.stdout, re.MULTILINE)
    assert re.search(r"^FAILED +\S+broken\.py .*exit status 3", done.stdout, re.MULTILINE)
    assert "1 of 3 ok" in done.stdout
    assert run_smoke(f"{good} => step p50 [0-9.]+ ms").returncode == 0


@pytest.mark.parametrize("spec", ["benchmarks/x.py --smoke", "benchmarks/x.py => ", "benchmarks/x.py => ([0-9]"])
def test_bench_smoke_refuses_an_entry_without_a_valid_figure_pattern(spec: str) -> None:
    done = run_smoke(spec)
    assert done.returncode != 0 and "bench_smoke:" in done.stderr


@pytest.fixture
def sparse_vs_full():
    import torch

    threads = torch.get_num_threads()  # the workers set the process's thread count
    yield load(BENCHMARKS / "sparse_vs_full.py", "sparse_vs_full_under_test")
    torch.set_num_threads(threads)


def test_sparse_vs_full_batches_fit_the_vocabulary_of_the_model_built(sparse_vs_full) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=40, d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8,
                   decoder_start_token_id=0)
    model = T5ForConditionalGeneration(cfg)
    data = sparse_vs_full.batch(model, "cpu")
    assert int(data["input_ids"].max()) < 40 and int(data["labels"].max()) < 40
    assert model(**data).loss.isfinite()


def test_sparse_vs_full_smoke_workers_use_the_presets_vocabulary(sparse_vs_full) -> None:
    """The preset's own vocabulary (FEB's 32,100 rows), which ids drawn below a constant 32,128 overran."""
    from generation.presets import preset_architecture

    rows = preset_architecture("t5-base").vocab_size
    train = sparse_vs_full.worker("att_q+layer_norm", "cpu", steps=1, threads=1, arch="t5-base", smoke=True)
    assert train["sizes"]["vocab"] == rows and train["sizes"]["layers"] == 2
    assert len(train["times"]) == len(train["cpu_times"]) == 1
    gen = sparse_vs_full.generation_worker("cpu", 1, 4, 8, 2, n=2, arch="t5-base", smoke=True)
    assert gen["sizes"]["vocab"] == rows and gen["speedup"] > 0 and gen["cpu_speedup"] > 0


def test_paper_run_builds_the_presets_shape_with_a_tokenizer_of_its_rows(tmp_path: Path) -> None:
    """FEB's resize to the tokenizer (`nle-gen train`) must keep the preset's embedding rows."""
    from generation.modeling import load_base
    from generation.presets import preset_architecture

    paper_run = load(BENCHMARKS / "paper_run.py", "paper_run_under_test")
    sizes = paper_run.make_model(tmp_path / "model", "t5-large", smoke=True, device="cpu")
    assert sizes["vocab"] == preset_architecture("t5-large").vocab_size
    model, tokenizer = load_base(str(tmp_path / "model"))
    assert len(tokenizer) == model.get_input_embeddings().weight.shape[0] == sizes["vocab"]
    paper_run.write_esnli(tmp_path / "esnli", 6, 6)
    from generation.data import load_split

    assert [e.label for e in load_split("esnli", tmp_path / "esnli", "validation")][:3] == list(paper_run.LABELS)
