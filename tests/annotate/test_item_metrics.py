"""Items' automatic metric scores in the store: their own table (migration 0009_item_metrics), written in the import's
transaction, re-imports that add names and refuse other values, what the researcher reads, and what never leaves."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analysis.metric_correlation import TABLE_COLUMNS
from annotate.core import schema
from annotate.core.errors import InputFileError
from annotate.core.formats import NLE, RatingRow
from annotate.core.store import Store
from tests.helpers import dump, next_item, nle


def scores(store: Store, study: str = "s") -> dict[tuple[str, str], dict[str, float]]:
    df = store.metrics_frame(study)
    out: dict[tuple[str, str], dict[str, float]] = {}
    items = store.items_frame(study).set_index("item_id")
    for r in df.itertuples(index=False):
        key = (items.loc[r.item_id, "sample_id"], r.config)
        out.setdefault(key, {})[r.metric] = r.value
    return out


def test_an_import_keeps_metrics_in_their_own_table_not_in_the_metadata(store: Store, write_jsonl) -> None:
    result = store.import_nles(write_jsonl([
        nle(sample_id="1", metrics={"bertscore_f1": 0.91, "bleu": 12}, checkpoint="step-3"),
        nle(sample_id="2", metrics={"bertscore_f1": 0.5}),
        nle(sample_id="3"),
    ]), "s")
    assert (result.added, result.metrics_added) == (3, 3)
    assert "metrics added: 3" in result.summary()
    assert scores(store) == {("1", "full_ft"): {"bertscore_f1": 0.91, "bleu": 12.0}, ("2", "full_ft"): {"bertscore_f1": 0.5}}
    items = store.items_frame("s").set_index("sample_id")
    assert items.loc["1", "metadata"] == {"checkpoint": "step-3"}  # not the metrics: they live in one place
    assert [items.loc[s, "metrics"] for s in ("1", "2", "3")] == [{"bertscore_f1": 0.91, "bleu": 12.0},
                                                                 {"bertscore_f1": 0.5}, {}]
    stored = store.conn.execute("SELECT COUNT(*) FROM items WHERE metadata LIKE '%metrics%'").fetchone()[0]
    assert stored == 0


def test_the_metric_table_flags_gold_references_and_attention_checks(store: Store, write_jsonl) -> None:
    store.import_nles(write_jsonl([
        nle(sample_id="1", metrics={"m": 0.1}),
        nle(sample_id="1", config="gold", explanation="a gold line", metrics={"m": 0.9}),
        nle(sample_id="c", expected_rating="no", metrics={"m": 0.2}),
    ]), "s", with_gold=True)
    df = store.metrics_frame("s")
    assert tuple(df.columns) == TABLE_COLUMNS
    assert df[["config", "is_gold_reference", "is_attention_check", "metric", "value"]].values.tolist() == [
        ["full_ft", False, False, "m", 0.1], ["gold", True, False, "m", 0.9], ["full_ft", False, True, "m", 0.2]]
    assert df["is_gold_reference"].dtype == bool and df["value"].dtype == float


def test_a_study_without_metric_scores_gives_an_empty_table_with_the_columns(store: Store, write_jsonl) -> None:
    store.import_nles(write_jsonl([nle(sample_id="1")]), "s")
    store.import_nles(write_jsonl([nle(sample_id="1", metrics={"m": 0.3})], "other.jsonl"), "other")
    df = store.metrics_frame("s")
    assert df.empty and tuple(df.columns) == TABLE_COLUMNS
    assert len(store.metrics_frame("other")) == 1  # another study's scores stay its own


def test_reimporting_adds_new_names_keeps_the_rest_and_changes_nothing_else(store: Store, db_path: Path,
                                                                           write_jsonl) -> None:
    path = write_jsonl([nle(sample_id="1", metrics={"bleu": 10}), nle(sample_id="2")])
    store.import_nles(path, "s")
    before = dump(db_path)
    again = store.import_nles(path, "s")
    assert (again.unchanged, again.metrics_added) == (2, 0) and dump(db_path) == before
    # A later file with a new metric for items already there (a metric computed after the import) adds it;
    # a line without a metric the item has removes nothing.
    later = store.import_nles(write_jsonl([nle(sample_id="1", metrics={"bleu": 10, "bertscore_f1": 0.7}),
                                           nle(sample_id="2", metrics={"bertscore_f1": 0.2}),
                                           nle(sample_id="3")], "later.jsonl"), "s")
    assert (later.added, later.unchanged, later.metrics_added) == (1, 2, 2)
    assert scores(store) == {("1", "full_ft"): {"bleu": 10.0, "bertscore_f1": 0.7},
                             ("2", "full_ft"): {"bertscore_f1": 0.2}}
    store.import_nles(write_jsonl([nle(sample_id="1")], "none.jsonl"), "s")
    assert scores(store)[("1", "full_ft")] == {"bleu": 10.0, "bertscore_f1": 0.7}


def test_reimporting_another_value_for_a_metric_is_refused_whole(store: Store, db_path: Path, write_jsonl) -> None:
    store.import_nles(write_jsonl([nle(sample_id="1", metrics={"bleu": 10})]), "s")
    before = dump(db_path)
    path = write_jsonl([nle(sample_id="new", metrics={"bleu": 1}), nle(sample_id="1", metrics={"bleu": 11})],
                       "changed.jsonl")
    with pytest.raises(InputFileError) as info:
        store.import_nles(path, "s")
    assert str(info.value) == (f"{path}, line 2, field 'metrics.bleu': item ('esnli', '1', 'full_ft') already has "
                               "bleu = 10.0 in study 's', not 11.0; give the new score another metric name")
    assert dump(db_path) == before  # the new item of line 1 is not there either: one transaction


def test_one_file_giving_an_item_two_sets_of_scores_is_refused(store: Store, db_path: Path, write_jsonl) -> None:
    path = write_jsonl([nle(sample_id="1", metrics={"bleu": 10}), nle(sample_id="1", metrics={"bleu": 12})])
    before = dump(db_path)
    with pytest.raises(InputFileError, match=r"line 2, field 'metrics': \('esnli', '1', 'full_ft'\) already "
                                             r"appears on line 1 with other metric scores"):
        store.import_nles(path, "s")
    assert dump(db_path) == before
    # The same line twice (same scores) is still one item, as before.
    twice = write_jsonl([nle(sample_id="1", metrics={"bleu": 10})] * 2, "twice.jsonl")
    assert store.import_nles(twice, "s").metrics_added == 1


def test_rated_items_from_another_reader_bring_their_metrics(store: Store) -> None:
    item = NLE(dataset="esnli", sample_id="1", config="full_ft", input={"p": "x"}, predicted_label="e",
               explanation="because", line=1, metrics={"bleu": 3.5})
    row = RatingRow(dataset="esnli", sample_id="1", config="full_ft", annotator="w1", rating="yes", tags=[],
                    comment="", seconds=None, submitted_at=None, line=1)
    result = store.import_rated_items([("batch.csv", [item], [row])], "s")
    assert (result.added, result.ratings_added, result.metrics_added) == (1, 1, 1)
    assert scores(store) == {("1", "full_ft"): {"bleu": 3.5}}


def test_a_pairwise_import_keeps_no_metric_scores(store: Store, write_jsonl) -> None:
    """A pair item holds two explanations; the pairwise report has no metric correlation, so their scores are not
    stored (docs/formats-and-cli.md)."""
    store.import_pairwise(write_jsonl([nle(config="full_ft", metrics={"bleu": 1.0}),
                                       nle(config="bitfit", metrics={"bleu": 2.0})]), "full_ft", "bitfit", "pw")
    assert store.metrics_frame("pw").empty
    assert store.conn.execute("SELECT COUNT(*) FROM item_metrics").fetchone()[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_ratings_export_carries_no_metric_scores(store: Store, write_jsonl, tmp_path: Path, fmt: str) -> None:
    """The export is the human ratings, one row per rating in the import-ratings format; metric scores stay
    with the items (and the report)."""
    store.import_nles(write_jsonl([nle(sample_id="1", metrics={"secret_metric": 0.123456})]), "s")
    store.add_annotator("ann", "s", code="ann-code-1")
    aid = store.annotators("s")[0]["id"]
    shown = next_item(store, aid)
    assert "secret_metric" not in repr(shown) and "0.123456" not in repr(shown)  # the annotator's view neither
    store.submit(aid, shown["item_id"], "yes")
    data = store.export_bytes("s", fmt)
    assert b"secret_metric" not in data and b"0.123456" not in data and b"metrics" not in data
    assert len(store.ratings_frame("s")) == 1


def _old_database(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at 0008 whose items carry `metrics` in their metadata, as imports did before 0009."""
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:8])
    with Store(path) as old:
        old.create_study("s")
        sid = old.get_study("s")["id"]
        rows = [("ok", {"metrics": {"bertscore_f1": 0.91, "bleu": 12}, "checkpoint": "c"}),
                ("text", {"metrics": "high"}),  # an extra field that happened to be called metrics
                ("nan", {"metrics": {"bleu": "0.3"}}),
                ("none", {"checkpoint": "c"})]
        with old._transaction() as conn:
            for sample, metadata in rows:
                conn.execute("INSERT INTO items (study_id, dataset, sample_id, config, input, predicted_label,"
                             " explanation, metadata, created_at) VALUES (?, 'esnli', ?, 'full_ft', '{}', 'e', 'x', ?,"
                             " 't')", (sid, sample, json.dumps(metadata)))
    monkeypatch.undo()


def test_migration_0009_moves_valid_metadata_metrics_into_the_table(db_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _old_database(db_path, monkeypatch)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'item_metrics'").fetchall() == []
    conn.close()
    with Store(db_path) as store:
        assert "0009_item_metrics" in {r[0] for r in store.conn.execute("SELECT name FROM migrations")}
        items = store.items_frame("s").set_index("sample_id")
        assert items.loc["ok", "metrics"] == {"bertscore_f1": 0.91, "bleu": 12.0}
        assert items.loc["ok", "metadata"] == {"checkpoint": "c"}
        # Anything else stays in the metadata, untouched.
        assert items.loc["text", "metadata"] == {"metrics": "high"} and items.loc["text", "metrics"] == {}
        assert items.loc["nan", "metadata"] == {"metrics": {"bleu": "0.3"}} and items.loc["nan", "metrics"] == {}
        assert items.loc["none", "metadata"] == {"checkpoint": "c"}
        assert len(store.metrics_frame("s")) == 2


def test_the_parquet_release_carries_no_metric_scores(store: Store, write_jsonl, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from annotate.core.publish import export_parquet

    store.import_nles(write_jsonl([nle(sample_id="1", metrics={"secret_metric": 0.123456})]), "s")
    store.add_annotator("ann", "s", code="ann-code-1")
    aid = store.annotators("s")[0]["id"]
    store.submit(aid, next_item(store, aid)["item_id"], "yes")
    export_parquet(store, tmp_path / "release", "s")
    files = [p for p in (tmp_path / "release").rglob("*") if p.is_file()]
    assert len(files) >= 3
    for path in files:
        assert b"secret_metric" not in path.read_bytes(), path
