"""`nle-annotate import-feb-mturk`: FEB's MTurk batches as a study of items and ratings, and the bundled sample.

The oracle for the numbers is FEB's own script (allenai/feb scripts/compute_kappa.py, in ../shared/data/feb_mturk),
run unchanged on each batch file; those tests skip when the shared data is absent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analysis.agreement import fleiss_kappa_free_binary
from analysis.report import analyse_store
from annotate.app.render import CONTENT_NOTES
from annotate.cli import main
from annotate.core import feb_mturk
from annotate.core.demo import FEB_EXAMPLE_STUDY, load_demo
from annotate.core.errors import InputFileError
from annotate.core.feb_mturk import import_feb_mturk, pseudonym, rater_name
from annotate.core.scale import RATINGS, score
from annotate.core.store import Store
from tests.helpers import ROOT, dump, nle

FEB_DIR = ROOT.parent / "shared" / "data" / "feb_mturk"
needs_feb = pytest.mark.skipif(not (FEB_DIR / "results").is_dir(), reason=f"FEB's MTurk batches not in {FEB_DIR}")
SAMPLE = ROOT / "annotate" / "core" / "feb_example"
ESNLI_GPT3 = "results/esnli/gpt3_Batch_4602112_batch_results_esnli_gpt3.csv"
SBIC_FOLDER = "sbic"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample (FEB's rows, e-SNLI, ECQA, ComVE)."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "feb"))


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    return rows[0], rows[1:]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    path.write_text(out.getvalue(), encoding="utf-8")


def set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Change one cell (row 0 = the first assignment, on line 2)."""
    header, rows = read_rows(path)
    rows[row][header.index(column)] = value
    write_rows(path, header, rows)


def ratings_of(store: Store, study: str) -> dict[tuple[str, str, str], dict[str, str]]:
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in store.ratings_frame(study).itertuples():
        out.setdefault((r.dataset, r.sample_id, r.config), {})[r.annotator] = r.rating
    return out


# -- the importer on the bundled sample -----------------------------------------------------------------------------


def test_the_sample_becomes_items_gold_references_and_ratings_as_hand_read_from_the_csv(store: Store) -> None:
    imported = import_feb_mturk(store, SAMPLE, "feb")
    result = imported.result
    assert (result.added, result.gold_added, result.ratings_added, result.annotators_created) == (120, 120, 720, 3)
    items = store.items_frame("feb").set_index(["dataset", "sample_id", "config"])
    assert set(items.index.get_level_values("dataset")) == {"esnli", "ecqa", "comve"}  # sensemaking is ComVE
    assert set(items.index.get_level_values("config")) == {"gpt3", "base", "large", "3b", "gold"}
    # The first task of the e-SNLI GPT-3 file, line 2: ques_id 232, gt_idx 1 (the gold explanation is #2, so the
    # model's is #1 and its answers are in Answer.1-e1), gt_1 = 2 (contradiction).
    model = items.loc[("esnli", "gpt3-232", "gpt3")]
    gold = items.loc[("esnli", "gpt3-232", "gold")]
    assert model.explanation == "A man parasailing in rough waters does not imply that he is drowning."
    assert gold.explanation == "The man is either parasailing or he is drowining."
    assert model.input == {"premise": "A man parasailing in rough waters", "hypothesis": "A man is drowining"}
    assert model.predicted_label == gold.predicted_label == model.gold_label == "contradiction"
    assert model.gold_explanations == [gold.explanation] and model.model == "GPT-3"
    assert gold.metadata["reference"] is True and model.metadata["feb_ques_id"] == "232"
    ratings = ratings_of(store, "feb")
    raters = [rater_name("feb", i) for i in (1, 2, 3)]  # lines 2, 3, 4: the HIT's three assignments
    assert ratings[("esnli", "gpt3-232", "gpt3")] == dict(zip(raters, ["yes", "weak_no", "yes"], strict=True))
    assert ratings[("esnli", "gpt3-232", "gold")] == dict(zip(raters, ["yes", "weak_yes", "no"], strict=True))
    # Task 2: gt_idx 0, so the gold explanation is #1 (answers in Answer.2-e1).
    assert items.loc[("esnli", "gpt3-205", "gold")].explanation == "Two people is not the same as three people."
    assert ratings[("esnli", "gpt3-205", "gpt3")] == dict(zip(raters, ["no"] * 3, strict=True))
    assert ratings[("esnli", "gpt3-205", "gold")] == dict(zip(raters, ["yes", "weak_yes", "yes"], strict=True))
    # ECQA: the choices and the label as the chosen answer's text; ComVE: the two statements, choice1/choice2.
    ecqa = items.xs("ecqa", level="dataset").iloc[0]
    assert len(ecqa.input["choices"]) == 5 and ecqa.predicted_label in ecqa.input["choices"]
    comve = items.xs("comve", level="dataset").iloc[0]
    assert set(comve.input) == {"sent0", "sent1"} and comve.predicted_label in ("choice1", "choice2")
    # FEB's ECQA large batch has no Input.question_1 column: its task-1 items keep the choices, without a question.
    assert imported.notes == ["large_Batch_4602791_batch_results_unifiedqa_t5_large.csv: no column Input.question_1, "
                              "so the items of task 1 have no 'question' in their input"]
    ecqa_large = [i for (d, _, c), i in items.input.items() if d == "ecqa" and c == "large"]
    assert len(ecqa_large) == 10 and sum("question" not in i for i in ecqa_large) == 1
    # FEB asked for no shortcoming tags, so the study made here requires none for weak no / no.
    assert result.rule_violations == 0 and store.get_study("feb")["rules"]["tags_required_for"] == []


def test_the_means_are_feb_s_scores_of_the_answers(store: Store, sample: Path) -> None:
    import_feb_mturk(store, sample, "feb")
    header, rows = read_rows(sample / ESNLI_GPT3)
    # Model explanations of the e-SNLI GPT-3 HIT, straight from the answer columns and FEB's 1, 2/3, 1/3, 0.
    feb_scores = {"yes": 1, "w_yes": 2 / 3, "w_no": 1 / 3, "no": 0}
    values = []
    for row in rows:
        cell = dict(zip(header, row, strict=True))
        for k in range(1, 11):
            column = f"Answer.{k}-e2" if cell[f"Input.{k}_gt_idx"] == "0" else f"Answer.{k}-e1"
            values.append(feb_scores[cell[column]])
    a = analyse_store(store, "feb")
    cell = next(c for c in a.cells if c.key == {"dataset": "esnli", "config": "gpt3"})
    assert cell.n == 30 and cell.mean_score == pytest.approx(np.mean(values), abs=1e-12)


def test_reimporting_the_same_files_changes_nothing(store: Store, sample: Path) -> None:
    import_feb_mturk(store, sample, "feb")
    before = dump(store.path)
    again = import_feb_mturk(store, sample, "feb").result
    assert (again.added, again.gold_added, again.ratings_added, again.annotators_created) == (0, 0, 0, 0)
    assert (again.unchanged, again.ratings_unchanged) == (240, 720)
    assert dump(store.path) == before


def test_an_answer_changed_in_the_file_is_a_revision_with_history(store: Store, sample: Path) -> None:
    import_feb_mturk(store, sample, "feb")
    set_cell(sample / ESNLI_GPT3, 0, "Answer.1-e1", "no")  # rater 1's answer on the model explanation gpt3-232
    again = import_feb_mturk(store, sample, "feb").result
    assert (again.ratings_updated, again.ratings_unchanged) == (1, 719)
    item = store.items_frame("feb").query("sample_id == 'gpt3-232' and config == 'gpt3'").item_id.item()
    rater = next(a["id"] for a in store.annotators("feb") if a["name"] == rater_name("feb", 1))
    assert [h["rating"] for h in store.history(rater, item)] == ["yes", "no"]


BAD_CELLS = [
    ("Answer.4-e2", "maybe", "Answer.4-e2", "unknown answer 'maybe'"),
    ("Answer.4-e2", "", "Answer.4-e2", "unknown answer ''"),
    ("Input.3_gt_idx", "2", "Input.3_gt_idx", "must be 0 or 1"),
    ("Input.gt_5", "7", "Input.gt_5", "must be an answer index 0..1"),
    ("Input.6_ques_id", " ", "Input.6_ques_id", "must not be empty"),
    # The same sample, another assignment of it with other content.
    ("Input.explanation_2_i", "changed", "Input.2_ques_id", "already appears on line 2 with other content"),
]


@pytest.mark.parametrize(("column", "value", "field", "message"), BAD_CELLS)
def test_a_bad_cell_names_file_line_and_field_and_changes_nothing(store: Store, sample: Path, column: str,
                                                                 value: str, field: str, message: str) -> None:
    import_feb_mturk(store, SAMPLE, "other")  # something already in the database
    before = dump(store.path)
    bad = sample / "results/sensemaking/large_Batch_4601995_batch_results_sensemaking_unfifiedqa_t5_large.csv"
    set_cell(bad, 1, column, value)  # the second assignment: line 3
    with pytest.raises(InputFileError) as err:
        import_feb_mturk(store, sample, "feb")
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 3, field)
    assert message in err.value.message
    assert dump(store.path) == before


def test_an_empty_input_text_is_kept_as_published_with_a_note(store: Store, sample: Path) -> None:
    # FEB's SBIC base and large batches each have a sample whose post is empty; compute_kappa.py counts its answers.
    for row in range(3):
        set_cell(sample / ESNLI_GPT3, row, "Input.question_3_j", " ")
    imported = import_feb_mturk(store, sample, "feb")
    sample_id = f"gpt3-{read_rows(sample / ESNLI_GPT3)[1][0][read_rows(sample / ESNLI_GPT3)[0].index('Input.3_ques_id')]}"
    assert f"gpt3_Batch_4602112_batch_results_esnli_gpt3.csv, line 2: 'hypothesis' of sample {sample_id!r} is " \
           "empty (kept as published)" in imported.notes
    items = store.items_frame("feb").set_index(["dataset", "sample_id", "config"])
    assert items.loc[("esnli", sample_id, "gpt3")].input["hypothesis"] == " "
    assert len(ratings_of(store, "feb")[("esnli", sample_id, "gpt3")]) == 3


def test_a_missing_column_is_named_with_line_1(store: Store, sample: Path) -> None:
    path = sample / ESNLI_GPT3
    header, rows = read_rows(path)
    drop = header.index("Answer.7-e1")
    write_rows(path, [h for i, h in enumerate(header) if i != drop], [[v for i, v in enumerate(r) if i != drop]
                                                                      for r in rows])
    with pytest.raises(InputFileError, match="line 1, field 'Answer.7-e1': required column is missing"):
        import_feb_mturk(store, sample, "feb")
    assert store.studies() == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda root: (root / "results/esnli/notes.csv").write_text(""), "file name must start with the model"),
    (lambda root: (root / "results/snli").mkdir(), "unknown FEB dataset folder"),
    (lambda root: shutil.copy(root / ESNLI_GPT3, root / "results/esnli/gpt3_again.csv"), "a second batch of model"),
    (lambda root: shutil.rmtree(root / "results"), "folder not found"),
    (lambda root: (root / ESNLI_GPT3).write_text(""), "file is empty"),
])
def test_a_bad_folder_is_refused_before_anything_is_written(store: Store, sample: Path, change, message: str) -> None:
    change(sample)
    with pytest.raises(InputFileError, match=message):
        import_feb_mturk(store, sample, "feb")
    assert store.studies() == []


def test_a_failure_while_writing_rolls_back_the_items_too(store: Store, sample: Path) -> None:
    """Items and ratings are written in one transaction: a rater name taken in another study stops the import
    after the items were inserted, and the rollback leaves the database as it was."""
    store.import_nles("x.jsonl", "elsewhere", data=b'{"dataset": "esnli", "sample_id": "1", "config": "c", '
                                                   b'"input": {"premise": "p"}, "predicted_label": "l", '
                                                   b'"explanation": "e"}\n')
    store.add_annotator(rater_name("feb", 2), "elsewhere")
    before = dump(store.path)
    with pytest.raises(InputFileError, match="belongs to another study") as err:
        import_feb_mturk(store, sample, "feb")
    assert err.value.line == 3 and err.value.field == "annotator"
    assert dump(store.path) == before


def test_importing_into_a_study_with_other_content_under_the_same_key_is_refused(store: Store, sample: Path) -> None:
    import_feb_mturk(store, sample, "feb")
    before = dump(store.path)
    for row in range(3):  # every assignment of the HIT, so the file itself stays consistent
        set_cell(sample / ESNLI_GPT3, row, "Input.explanation_1_i", "another explanation")
    with pytest.raises(InputFileError, match="already in study 'feb' with a different explanation") as err:
        import_feb_mturk(store, sample, "feb")
    assert err.value.path == str(sample / ESNLI_GPT3) and err.value.line == 2
    assert dump(store.path) == before


# -- worker ids -----------------------------------------------------------------------------------------------------


def with_worker_ids(path: Path, ids: list[str]) -> None:
    header, rows = read_rows(path)
    write_rows(path, [*header, "WorkerId"], [[*r, w] for r, w in zip(rows, ids, strict=True)])


def test_worker_ids_become_keyed_pseudonyms_stable_across_reimports(store: Store, sample: Path) -> None:
    ids = ["A1PRIVATEWORKER", "A2PRIVATEWORKER", "A3PRIVATEWORKER"]
    for path in sorted(sample.glob("results/*/*.csv")):
        with_worker_ids(path, ids)  # the same three workers did every HIT
    key = b"k" * 32
    import_feb_mturk(store, sample, "feb", key)
    names = sorted(a["name"] for a in store.annotators("feb"))
    assert names == sorted(pseudonym(key, "feb", w) for w in ids) and len(set(names)) == 3
    assert all(re.fullmatch(r"worker-[0-9a-f]{16}", n) for n in names)
    exported = store.export_bytes("feb").decode()
    assert not any(w in exported or w.lower() in exported for w in ids)
    # The same key: the same names, nothing new. Another key or study: other names (nothing links them).
    again = import_feb_mturk(store, sample, "feb", key).result
    assert (again.annotators_created, again.ratings_added, again.ratings_unchanged) == (0, 0, 720)
    assert pseudonym(b"j" * 32, "feb", ids[0]) not in names and pseudonym(key, "other", ids[0]) not in names


def test_worker_ids_without_a_key_are_refused(store: Store, sample: Path) -> None:
    with_worker_ids(sample / ESNLI_GPT3, ["A1", "A2", "A3"])
    with pytest.raises(InputFileError, match="field 'WorkerId': .*--pseudonym-key FILE"):
        import_feb_mturk(store, sample, "feb")
    assert store.studies() == []


def test_a_worker_answering_the_same_sample_twice_is_refused(store: Store, sample: Path) -> None:
    with_worker_ids(sample / ESNLI_GPT3, ["A1", "A2", "A1"])
    with pytest.raises(InputFileError, match="already rated sample 'gpt3-232' on line 2") as err:
        import_feb_mturk(store, sample, "feb", b"k" * 32)
    assert err.value.line == 4


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "feb.key"
    key, created = feb_mturk.load_key(path)
    assert created and len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert feb_mturk.load_key(path) == (key, False)
    path.write_bytes(b"short")
    with pytest.raises(InputFileError, match="at least 16 bytes"):
        feb_mturk.load_key(path)


# -- the command ----------------------------------------------------------------------------------------------------


def test_the_command_imports_and_a_second_run_reports_everything_unchanged(tmp_path: Path, sample: Path,
                                                                          capsys) -> None:
    db = tmp_path / "a.db"
    assert main(["import-feb-mturk", str(sample), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "study 'feb-mturk', added: 120, gold added: 120, ratings added: 720, annotators created: 3" in out
    assert main(["import-feb-mturk", str(sample), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "study 'feb-mturk', unchanged: 240, ratings unchanged: 720" in out
    with Store(db) as store:
        assert [s["name"] for s in store.studies()] == ["feb-mturk"]
        assert len(store.ratings_frame("feb-mturk")) == 720


def test_the_command_names_the_bad_cell_and_leaves_no_database(tmp_path: Path, sample: Path, capsys) -> None:
    set_cell(sample / ESNLI_GPT3, 2, "Answer.9-e1", "yes!")
    db = tmp_path / "a.db"
    assert main(["import-feb-mturk", str(sample), "--db", str(db), "--study", "s"]) == 2
    err = capsys.readouterr().err
    assert f"{sample / ESNLI_GPT3}, line 4, field 'Answer.9-e1': unknown answer 'yes!'" in err
    assert "nothing was imported" in err and not db.exists()


def test_the_command_creates_the_key_file_when_asked(tmp_path: Path, sample: Path, capsys) -> None:
    with_worker_ids(sample / ESNLI_GPT3, ["A1", "A2", "A3"])
    key = tmp_path / "key"
    args = ["import-feb-mturk", str(sample), "--db", str(tmp_path / "a.db"), "--pseudonym-key", str(key)]
    assert main(args) == 0 and "created pseudonym key" in capsys.readouterr().out
    assert main(args) == 0 and "created" not in capsys.readouterr().out


# -- the bundled sample ---------------------------------------------------------------------------------------------


def test_the_sample_travels_with_its_licence_and_attribution() -> None:
    assert "Apache License" in (SAMPLE / "LICENSE").read_text() and "Version 2.0" in (SAMPLE / "LICENSE").read_text()
    readme = (SAMPLE / "README.md").read_text()
    assert "Marasović" in readme and "allenai/feb" in readme and "SBIC is left out" in readme
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*.csv"))
    assert size < 150_000


def first_quiet_hit(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first HIT whose three workers left the comment box empty (the sample's rule)."""
    header, rows = read_rows(path)
    box = header.index("Answer.commentbox")
    for start in range(0, len(rows), 3):
        if all(r[box] == "{}" for r in rows[start:start + 3]):
            return header, rows[start:start + 3]
    raise AssertionError(f"no quiet HIT in {path}")


@needs_feb
def test_the_bundled_rows_are_feb_s_rows() -> None:
    bundled = sorted(p.relative_to(SAMPLE) for p in SAMPLE.glob("results/*/*.csv"))
    published = sorted(p.relative_to(FEB_DIR) for p in FEB_DIR.glob("results/*/*.csv")
                       if p.parent.name != SBIC_FOLDER)
    assert bundled == published and len(bundled) == 12
    for rel in bundled:
        assert read_rows(SAMPLE / rel) == first_quiet_hit(FEB_DIR / rel), rel
    assert (SAMPLE / "LICENSE").read_bytes() == (FEB_DIR / "LICENSE").read_bytes()


# -- every batch FEB published, against FEB's own script ------------------------------------------------------------


def feb_script(batch: Path) -> dict[str, float]:
    """FEB's scripts/compute_kappa.py, run unchanged on one batch file; its printed figures by name, e.g.
    "predicted fleiss_kappa" and "gold score_average" (×100)."""
    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["compute_kappa.py", "--input_file", str(batch)]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(FEB_DIR / "compute_kappa.py"), run_name="__main__")
    finally:
        sys.argv = argv
    figures = {}
    for m in re.finditer(r"For explanation_type=(\w+), (\w+)=([-\d.e]+)\n", out.getvalue()):
        figures[f"{m.group(1)} {m.group(2)}"] = float(m.group(3))
    assert "questions with 3 annotators" in out.getvalue()
    return figures


@pytest.fixture(scope="module")
def feb_full(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("feb") / "feb.db")
    result = import_feb_mturk(store, FEB_DIR, "feb").result
    assert result.added == result.gold_added == 14 * 360 + 310 + 350
    assert result.ratings_added == 6 * result.added and result.annotators_created == 3
    yield store
    store.close()


@needs_feb
@pytest.mark.slow
def test_every_batch_s_mean_and_kappa_equal_feb_s_script(feb_full: Store) -> None:
    a = analyse_store(feb_full, "feb")
    contract = a.agreement_json()
    cells = {(c["dataset"], c["config"]): c for c in contract["cells"]}
    assert len(cells) == 16  # the full importer keeps SBIC
    ratings = feb_full.ratings_frame("feb")
    gold_by_dataset: dict[str, list[tuple[float, int]]] = {}
    for path, dataset, config in feb_mturk.batch_files(FEB_DIR):
        feb = feb_script(path)
        cell = cells[(dataset, config)]
        n_questions = cell["n"] // 3
        assert cell["mean_score"] * 100 == pytest.approx(feb["predicted score_average"], abs=1e-9), path.name
        assert cell["fleiss_kappa_free_binary"] == pytest.approx(feb["predicted fleiss_kappa"], abs=1e-9), path.name
        assert cell["n_items_fleiss"] == n_questions
        # The gold explanations of this batch (config "gold", sample ids of this model): FEB's κ convention on
        # them is FEB's gold κ, and their mean FEB's gold score.
        gold = ratings[(ratings.config == "gold") & (ratings.dataset == dataset)
                       & ratings.sample_id.str.startswith(f"{config}-")]
        units = gold.pivot(index="sample_id", columns="annotator", values="rating").map(RATINGS.index)
        assert len(units) == n_questions
        assert fleiss_kappa_free_binary(units.to_numpy()).value == pytest.approx(feb["gold fleiss_kappa"], abs=1e-9)
        assert gold.rating.map(score).mean() * 100 == pytest.approx(feb["gold score_average"], abs=1e-9)
        gold_by_dataset.setdefault(dataset, []).append((feb["gold score_average"], n_questions))
    # The report's human ceiling per dataset pools the four batches' gold explanations.
    for g in contract["gold"]["by_dataset"]:
        parts = gold_by_dataset[g["dataset"]]
        pooled = sum(s * n for s, n in parts) / sum(n for _, n in parts)
        assert g["mean_score"] * 100 == pytest.approx(pooled, abs=1e-9)


# -- the demo studies and the app -----------------------------------------------------------------------------------

APP = ROOT / "streamlit_app.py"


def app_on(monkeypatch: pytest.MonkeyPatch, db: Path, **env: str) -> AppTest:
    monkeypatch.setenv("NLE_DB", str(db))
    for name in ("NLE_DEMO", "NLE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return AppTest.from_file(str(APP), default_timeout=60).run()


def test_the_demo_loads_feb_example_beside_the_demo_with_a_real_kappa(store: Store) -> None:
    assert load_demo(store)
    assert [s["name"] for s in store.studies()] == ["demo", FEB_EXAMPLE_STUDY]
    a = analyse_store(store, FEB_EXAMPLE_STUDY)
    assert a.n_items == 240 and len(a.annotators) == 3 and a.gold_overall.n_items == 120
    assert a.overall.fleiss.value is not None and a.overall.fleiss.n == 120
    assert all(c.fleiss.value is not None for c in a.by_dataset)
    assert SBIC_FOLDER not in {p.name for p in (SAMPLE / "results").iterdir()}
    assert "sbic" not in set(store.items_frame(FEB_EXAMPLE_STUDY)["dataset"])
    assert not load_demo(store)  # a database with studies is left alone


def test_the_analysis_page_of_the_demo_offers_feb_example_with_real_kappas(monkeypatch: pytest.MonkeyPatch,
                                                                          db_path: Path) -> None:
    at = app_on(monkeypatch, db_path, NLE_DEMO="1", NLE_ADMIN_PASSWORD="pw")
    at.text_input(key="admin_password").input("pw")
    at.button(key="admin_sign_in").click().run()
    at = at.switch_page("annotate/app/pages/results.py").run()
    assert at.selectbox(key="analysis_study").options == ["demo", FEB_EXAMPLE_STUDY]
    at = at.selectbox(key="analysis_study").select(FEB_EXAMPLE_STUDY).run()
    assert not at.exception
    agreement = next(d.value for d in at.dataframe if "FEB κ (items)" in d.value.columns)
    overall = agreement[agreement.level == "overall"].iloc[0]
    assert re.fullmatch(r"0\.\d{3} \(120\)", overall["FEB κ (items)"]) and overall["ratings"] == 360
    cells = agreement[agreement.level == "cell"]
    assert set(cells.config) == {"gpt3", "base", "large", "3b"} and set(cells.dataset) == {"esnli", "ecqa", "comve"}
    assert sorted(at.selectbox(key="analysis_a").options) == ["3b", "base", "gpt3", "large"]


@pytest.mark.parametrize(("dataset", "noted"), [("sbic", True), ("esnli", False)])
def test_an_sbic_post_comes_under_a_content_note(monkeypatch: pytest.MonkeyPatch, store: Store, db_path: Path,
                                                 write_jsonl, dataset: str, noted: bool) -> None:
    store.import_nles(write_jsonl([nle(dataset, "1", "full_ft")]), "s")
    store.add_annotator("anna", "s", code="code-anna-1")
    at = app_on(monkeypatch, db_path)
    at.text_input(key="sign_in_name").input("anna")
    at.text_input(key="sign_in_code").input("code-anna-1")
    at = at.button(key="sign_in").click().run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert (CONTENT_NOTES["sbic"] in captions) is noted
    if noted:  # before the post itself
        assert captions.index(CONTENT_NOTES["sbic"]) < captions.index("Post")
