"""The annotation store on a real SQLite file: round trips, access codes, queues, answers, all-or-nothing imports."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import annotate.core.auth as auth_module
import annotate.core.store as store_module
from annotate.core.errors import AccessDenied, InputFileError, RuleViolation, TooManyAttempts
from annotate.core.formats import REQUIRED_KEYS
from annotate.core.scale import Guidelines
from annotate.core.store import GOLD_CONFIG, Store
from tests.helpers import dump, file_hash, next_item, nle, overlap_all


def queue(store: Store, annotator_id: int) -> list[int]:
    """Item ids of an annotator's queue, in the order they are shown (a k = all study: see overlap_all)."""
    return [store.annotator_item(annotator_id, p)["item_id"] for p in range(store.queue_length(annotator_id))]


def annotator_id(store: Store, name: str) -> int:
    return next(a["id"] for a in store.annotators() if a["name"] == name)


@pytest.fixture
def items(store: Store, write_jsonl) -> Store:
    """Study "s" with eight items over the four datasets and two configurations."""
    lines = [nle(ds, f"{ds}-{i}", cfg) for i, ds in enumerate(["esnli", "ecqa", "sbic", "comve"])
             for cfg in ("full_ft", "att_q+layer_norm")]
    store.import_nles(write_jsonl(lines, "items.jsonl"), "s")
    return store


# -- import round trips ------------------------------------------------------------------------------------------


def test_import_keeps_every_field(store: Store, write_jsonl) -> None:
    full = nle("ecqa", "q-7", "att_q+layer_norm", model="t5-large", split_seed=3, gold_label="cupboard",
               gold_explanations=["plates go in cupboards", "second"], prompt="explain: ...",
               explanation="plates are kept in a cupboard\u2028 (line separator) and \x85 NEL, é, 漢字",
               predicted_label="cupboard", illustrative=True, extra={"nested": [1, 2.5, None, "x"]})
    minimal = {k: v for k, v in nle("comve", 12, "full_ft").items() if k in REQUIRED_KEYS}
    result = store.import_nles(write_jsonl([full, minimal]), "s")
    assert (result.added, result.unchanged) == (2, 0)

    df = store.items_frame("s").set_index("sample_id")
    row = df.loc["q-7"]
    for key in ("dataset", "config", "input", "predicted_label", "explanation", "model", "gold_label",
                "gold_explanations", "prompt"):
        assert row[key] == full[key], key
    assert row["split_seed"] == 3
    assert row["input"] == {"question": "Where are plates kept?", "choices": ["cupboard", "sea", "car", "sky", "shoe"]}
    assert row["metadata"] == {"illustrative": True, "extra": {"nested": [1, 2.5, None, "x"]}}

    small = df.loc["12"]  # an integer sample_id is stored as its string
    assert small["config"] == "full_ft" and small["input"] == minimal["input"]
    assert small["metadata"] == {}
    assert all(pd.isna(small[k]) for k in ("model", "prompt", "gold_explanations", "split_seed", "gold_label"))


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b", "\x0c", "\r"])
def test_raw_line_separators_inside_json_strings(store: Store, tmp_path: Path, char: str) -> None:
    # JSON allows U+2028, U+2029 and U+0085 raw inside strings (json.dumps(ensure_ascii=False) writes them so):
    # the file must not be split there. The control characters are escaped by json.dumps and must survive too.
    text = f"before{char}after"
    path = tmp_path / "raw.jsonl"
    lines = [json.dumps(nle("esnli", str(i), explanation=text), ensure_ascii=False) for i in range(2)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert store.import_nles(path, "s").added == 2
    assert store.items_frame("s")["explanation"].tolist() == [text, text]


def test_import_twice_is_idempotent(items: Store, db_path: Path) -> None:
    before = dump(db_path)
    path = Path(db_path).parent / "items.jsonl"
    result = items.import_nles(path, "s")
    assert (result.added, result.unchanged, result.gold_added) == (0, 8, 0)
    assert "unchanged: 8" in result.summary()
    assert dump(db_path) == before


def test_reimport_with_gold_and_annotators_is_idempotent(store: Store, write_jsonl, db_path: Path) -> None:
    path = write_jsonl([nle("esnli", str(i), cfg) for i in range(4) for cfg in ("full_ft", "bitfit")])
    first = store.import_nles(path, "s", with_gold=True)
    assert (first.added, first.gold_added) == (8, 4)
    store.add_annotator("alice", "s", code="code-a")
    aid = annotator_id(store, "alice")
    store.submit(aid, next_item(store, aid)["item_id"], "yes")
    before = dump(db_path)
    again = store.import_nles(path, "s", with_gold=True)
    assert (again.added, again.gold_added, again.unchanged) == (0, 0, 12)
    assert dump(db_path) == before


def test_import_into_default_study_and_only_study(store: Store, write_jsonl) -> None:
    assert store.import_nles(write_jsonl([nle()], "a.jsonl")).study == "default"
    # With one study in the database, no name means that study.
    assert store.import_nles(write_jsonl([nle(sample_id="2")], "b.jsonl")).study == "default"
    store.create_study("other")
    with pytest.raises(ValueError, match="several studies"):
        store.import_nles(write_jsonl([nle(sample_id="3")], "c.jsonl"))


def test_store_reopens_a_recreated_database_file(db_path: Path, write_jsonl) -> None:
    # A process that already migrated a path must notice when the file was deleted and created anew.
    with Store(db_path) as s:
        s.import_nles(write_jsonl([nle()]), "s")
    for p in db_path.parent.glob(db_path.name + "*"):
        p.unlink()
    with Store(db_path) as s:
        assert s.studies() == []
        assert s.import_nles(write_jsonl([nle()]), "s").added == 1


def test_real_comve_dev_set_imports_exactly(store: Store, comve_dir: Path, tmp_path: Path) -> None:
    # Real text (double spaces, quotes, commas) built into NLE lines the way generation writes them.
    def rows(name: str, header: bool) -> list[list[str]]:
        with (comve_dir / "dev" / name).open(encoding="utf-8", newline="") as f:
            return list(csv.reader(f))[1 if header else 0:]

    pairs = {r[0]: r[1:] for r in rows("subtaskA_dev_data.csv", True)}
    labels = dict(rows("subtaskA_gold_answers.csv", False))
    expls = {r[0]: r[1:] for r in rows("subtaskC_gold_answers.csv", False)}
    lines = [nle("comve", sid, "full_ft", input={"sent0": s0, "sent1": s1}, predicted_label=labels[sid],
                 explanation=expls[sid][0], gold_label=labels[sid], gold_explanations=expls[sid])
             for sid, (s0, s1) in pairs.items()]
    path = tmp_path / "comve.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    result = store.import_nles(path, "comve", with_gold=True)
    assert (result.added, result.gold_added, result.gold_skipped) == (997, 997, 0)
    df = store.items_frame("comve")
    got = df[df["config"] == "full_ft"]
    stored = {r.sample_id: (r.input, r.explanation, r.gold_explanations) for r in got.itertuples()}
    assert stored == {x["sample_id"]: (x["input"], x["explanation"], x["gold_explanations"]) for x in lines}
    assert store.import_nles(path, "comve", with_gold=True).unchanged == 2 * 997


# -- gold reference items ------------------------------------------------------------------------------------------


def test_with_gold_adds_one_reference_item_per_sample(store: Store, write_jsonl) -> None:
    lines = [nle("esnli", "1", "full_ft", gold_explanations=["first gold", "second gold"]),
             nle("esnli", "1", "bitfit", gold_explanations=["first gold", "second gold"]),
             nle("sbic", "2", "full_ft", gold_explanations=["sbic gold"], gold_label="offensive"),
             nle("comve", "3", "full_ft", gold_explanations=None),
             nle("comve", "4", "full_ft", gold_explanations=[])]
    result = store.import_nles(write_jsonl(lines), "s", with_gold=True)
    assert (result.added, result.gold_added, result.gold_skipped) == (5, 2, 2)
    assert "gold skipped: 2" in result.summary()
    gold = store.items_frame("s").query("config == @GOLD_CONFIG").set_index("sample_id")
    assert sorted(gold.index) == ["1", "2"]
    assert gold.loc["1", "explanation"] == "first gold"
    assert gold.loc["2", "explanation"] == "sbic gold" and gold.loc["2", "predicted_label"] == "offensive"
    assert gold.loc["1", "metadata"] == {"reference": True}
    assert gold.loc["1", "input"] == lines[0]["input"]


def test_with_gold_when_the_file_has_its_own_gold_lines(store: Store, write_jsonl) -> None:
    # The file's own config "gold" line must not collide with the generated reference item (UNIQUE error before).
    lines = [nle("esnli", "1", "full_ft"), nle("esnli", "1", GOLD_CONFIG, explanation="hand-written gold")]
    result = store.import_nles(write_jsonl(lines), "s", with_gold=True)
    assert (result.added, result.gold_added, result.gold_skipped) == (2, 0, 0)
    gold = store.items_frame("s").query("config == @GOLD_CONFIG")
    assert gold["explanation"].tolist() == ["hand-written gold"]


def test_changed_gold_explanation_is_rejected_on_reimport(store: Store, write_jsonl, db_path: Path) -> None:
    store.import_nles(write_jsonl([nle("esnli", "1")], "a.jsonl"), "s", with_gold=True)
    before = dump(db_path)
    path = write_jsonl([nle("esnli", "0"), nle("esnli", "1", gold_explanations=["new gold"])], "b.jsonl")
    with pytest.raises(InputFileError) as info:
        store.import_nles(path, "s", with_gold=True)
    assert f"{path}, line 2, field 'explanation': item ('esnli', '1', 'gold') is already in study 's'" in str(info.value)
    assert dump(db_path) == before


# -- annotators and access codes -------------------------------------------------------------------------------------


def test_access_code_works_and_is_never_stored_in_plain_text(items: Store, db_path: Path) -> None:
    code = items.add_annotator("alice", "s")
    chosen = items.add_annotator("bob", "s", code="correct-horse-battery")
    assert chosen == "correct-horse-battery"
    assert items.authenticate("alice", code)["name"] == "alice"
    assert items.authenticate(" BOB ", chosen)["name"] == "bob"
    stored = [r[0] for r in items.conn.execute("SELECT code_hash FROM annotators")]
    assert all(h.startswith("scrypt$") for h in stored) and len(set(stored)) == 2
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))  # db, -wal, -shm
    file_hash(items)
    raw += db_path.read_bytes()
    for secret in (code, chosen):
        assert secret.encode() not in raw
    assert all("code" not in k or k == "can_sign_in" for a in items.annotators() for k in a)


@pytest.mark.parametrize(("name", "code"), [("alice", "wrong-code"), ("alice", ""), ("mallory", "x"), ("", "x")])
def test_wrong_name_or_code_is_not_recognised(items: Store, name: str, code: str) -> None:
    items.add_annotator("alice", "s", code="right-code")
    with pytest.raises(AccessDenied, match="not recognised"):
        items.authenticate(name, code)


def test_reset_code_replaces_the_old_one(items: Store) -> None:
    old = items.add_annotator("alice", "s")
    new = items.reset_code("alice")
    assert new != old
    assert items.authenticate("alice", new)["name"] == "alice"
    with pytest.raises(AccessDenied):
        items.authenticate("alice", old)
    with pytest.raises(ValueError, match="unknown annotator"):
        items.reset_code("nobody")


def test_unicode_name_can_sign_in(items: Store) -> None:
    # SQLite's lower() folds ASCII only; the name must still match.
    items.add_annotator("Émile", "s", code="code-e")
    assert items.authenticate("émile", "code-e")["name"] == "Émile"
    assert items.authenticate("Émile", "code-e")["name"] == "Émile"


def test_names_differing_only_in_case_are_refused(items: Store) -> None:
    items.add_annotator("Bob", "s", code="code-1")
    with pytest.raises(ValueError, match="already exists"):
        items.add_annotator("bob", "s", code="code-2")
    assert items.authenticate("bob", "code-1")["name"] == "Bob"


def test_rate_limit_locks_out_even_the_right_code(items: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(auth_module, "time", types.SimpleNamespace(time=lambda: clock[0]))
    items.add_annotator("alice", "s", code="right-code")
    items.add_annotator("bob", "s", code="bob-code")
    for _ in range(5):
        with pytest.raises(AccessDenied):
            items.authenticate("Alice", "wrong")
        clock[0] += 1
    with pytest.raises(TooManyAttempts) as info:
        items.authenticate("alice", "right-code")
    assert 1 <= info.value.wait_seconds <= 60
    assert "Try again in" in str(info.value)
    assert items.authenticate("bob", "bob-code")["name"] == "bob"  # others are not locked out
    clock[0] += 61  # the oldest failures leave the one-minute window
    assert items.authenticate("alice", "right-code")["name"] == "alice"


def test_four_failures_do_not_lock_out(items: Store) -> None:
    items.add_annotator("alice", "s", code="right-code")
    for _ in range(4):
        with pytest.raises(AccessDenied):
            items.authenticate("alice", "wrong")
    assert items.authenticate("alice", "right-code")["name"] == "alice"


# -- queues --------------------------------------------------------------------------------------------------------


def test_each_annotator_gets_a_random_permutation(store: Store, write_jsonl, tmp_path: Path) -> None:
    path = write_jsonl([nle("esnli", str(i)) for i in range(30)])
    store.import_nles(path, "s")
    overlap_all(store, "s")
    for name in ("alice", "bob"):
        store.add_annotator(name, "s", code=f"{name}-code")
    all_items = sorted(store.items_frame("s")["item_id"])
    qa, qb = queue(store, annotator_id(store, "alice")), queue(store, annotator_id(store, "bob"))
    assert sorted(qa) == sorted(qb) == all_items
    assert qa != qb and qa != all_items
    with Store(tmp_path / "second.db") as other:  # the same names give the same orders
        other.import_nles(path, "s")
        overlap_all(other, "s")
        for name in ("alice", "bob"):
            other.add_annotator(name, "s", code=f"{name}-code")
        assert queue(other, annotator_id(other, "alice")) == qa
        assert queue(other, annotator_id(other, "bob")) == qb


def test_items_imported_later_are_appended_to_queues(items: Store, write_jsonl) -> None:
    overlap_all(items, "s")
    items.add_annotator("alice", "s", code="a")
    aid = annotator_id(items, "alice")
    first = queue(items, aid)
    items.submit(aid, first[0], "yes")
    items.import_nles(write_jsonl([nle("esnli", f"new-{i}") for i in range(3)], "more.jsonl"), "s")
    after = queue(items, aid)
    assert after[:8] == first and len(after) == 11
    new_ids = set(items.items_frame("s").query("sample_id.str.startswith('new-')", engine="python")["item_id"])
    assert set(after[8:]) == new_ids
    assert items.answered_count(aid) == 1 and items.annotators("s")[0]["assigned"] == 11


def test_next_unanswered_first_skip_wrap_and_done(store: Store, write_jsonl) -> None:
    store.import_nles(write_jsonl([nle("esnli", str(i)) for i in range(5)]), "s")
    overlap_all(store, "s")
    store.add_annotator("alice", "s", code="a")
    aid = annotator_id(store, "alice")
    q = queue(store, aid)
    assert store.next_unanswered(aid) == 0
    store.submit(aid, q[0], "yes")
    store.submit(aid, q[2], "weak_yes")
    assert store.next_unanswered(aid) == 1
    assert store.next_unanswered(aid, after=1) == 3  # skip: the next unanswered after position 1
    assert store.next_unanswered(aid, after=3) == 4
    assert store.next_unanswered(aid, after=4) == 1  # wraps round to the start
    for item in (q[1], q[3], q[4]):
        store.submit(aid, item, "no", ["irrelevant"])
    assert store.next_unanswered(aid) is None and store.next_unanswered(aid, after=2) is None
    assert store.answered_count(aid) == store.queue_length(aid) == 5


# -- answers -------------------------------------------------------------------------------------------------------


def test_annotator_item_is_blind(store: Store, write_jsonl) -> None:
    secret = nle("esnli", "1", "att_q+layer_norm", model="secret-model-xyz", prompt="secret-prompt",
                 gold_label="secret-gold-label", gold_explanations=["secret-gold-text"], secret_meta="secret-meta",
                 explanation="because playing is performing")
    store.import_nles(write_jsonl([secret]), "s")
    store.add_annotator("alice", "s", code="a")
    store.add_annotator("bob", "s", code="b")
    alice, bob = annotator_id(store, "alice"), annotator_id(store, "bob")
    item = next_item(store, alice)
    assert set(item) == {"item_id", "position", "dataset", "input", "predicted_label", "explanation", "answer"}
    text = json.dumps(item)
    for hidden in ("att_q+layer_norm", "secret-model-xyz", "secret-prompt", "secret-gold", "secret-meta", "config"):
        assert hidden not in text
    store.submit(alice, item["item_id"], "weak_no", ["inaccurate"], "alice's private comment")
    assert store.annotator_item(alice, 0)["answer"] == {
        "rating": "weak_no", "tags": ["inaccurate"], "comment": "alice's private comment", "revision": 1}
    assert next_item(store, bob) == {**item, "answer": None}  # the same item, never another annotator's answer
    assert store.annotator_item(alice, 1) is None


def test_submit_and_revise_keep_every_version(items: Store, db_path: Path) -> None:
    items.add_annotator("alice", "s", code="a")
    aid = annotator_id(items, "alice")
    item = next_item(items, aid)["item_id"]
    first = items.submit(aid, item, "weak_no", ["inaccurate"], "first thoughts", seconds=12.5)
    second = items.submit(aid, item, "yes", [], "on reflection, fine", seconds=3.0)
    assert (first["revision"], second["revision"]) == (1, 2)
    current = items.ratings_frame("s", extra=True)
    assert len(current) == 1
    row = current.iloc[0]
    assert (row["rating"], row["tags"], row["comment"], row["seconds"], row["revision"], row["source"]) == (
        "yes", "", "on reflection, fine", 3.0, 2, "app")
    assert row["score"] == 1.0
    history = items.history(aid, item)
    assert [(h["rating"], h["tags"], h["comment"], h["seconds"], h["revision"]) for h in history] == [
        ("weak_no", ["inaccurate"], "first thoughts", 12.5, 1), ("yes", [], "on reflection, fine", 3.0, 2)]
    assert history[0]["score"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("sql", ["UPDATE rating_history SET rating = 'yes'", "DELETE FROM rating_history",
                                 "UPDATE rating_history SET comment = '' WHERE id = 1"])
def test_database_refuses_to_edit_history(items: Store, db_path: Path, sql: str) -> None:
    items.add_annotator("alice", "s", code="a")
    aid = annotator_id(items, "alice")
    items.submit(aid, next_item(items, aid)["item_id"], "no", ["empty"])
    before = dump(db_path)
    rogue = sqlite3.connect(str(db_path))
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            with rogue:
                rogue.execute(sql)
    finally:
        rogue.close()
    assert dump(db_path) == before


def test_guidelines_version_is_recorded(items: Store) -> None:
    items.add_annotator("alice", "s", code="a")
    aid = annotator_id(items, "alice")
    item = next_item(items, aid)["item_id"]
    items.submit(aid, item, "yes")
    items.set_guidelines("s", Guidelines(version="2b"))
    items.submit(aid, item, "weak_yes")
    assert [h["guidelines_version"] for h in items.history(aid, item)] == ["1", "2b"]
    assert items.ratings_frame("s", extra=True)["guidelines_version"].tolist() == ["2b"]
    assert items.get_study("s")["guidelines_version"] == "2b"


def test_seconds_and_timestamps_are_recorded(items: Store) -> None:
    items.add_annotator("alice", "s", code="a")
    aid = annotator_id(items, "alice")
    item = next_item(items, aid)["item_id"]
    before = store_module.now_iso()
    items.submit(aid, item, "yes", seconds=42.25)
    after = store_module.now_iso()
    row = items.ratings_frame("s").iloc[0]
    assert row["seconds"] == 42.25
    assert before <= row["submitted_at"] <= after
    answered_at = items.conn.execute("SELECT answered_at FROM assignments WHERE annotator_id = ? AND item_id = ?",
                                     (aid, item)).fetchone()[0]
    assert answered_at == row["submitted_at"]


def test_submit_outside_the_queue_is_denied_and_writes_nothing(items: Store, write_jsonl, db_path: Path) -> None:
    items.import_nles(write_jsonl([nle("esnli", "other-1")], "other.jsonl"), "other")
    items.add_annotator("alice", "s", code="a")
    items.add_annotator("olga", "other", code="o")
    alice = annotator_id(items, "alice")
    foreign = int(items.items_frame("other")["item_id"].iloc[0])
    own = next_item(items, alice)["item_id"]
    before = dump(db_path)
    for item_id in (foreign, 10_000):
        with pytest.raises(AccessDenied, match="not in your queue"):
            items.submit(alice, item_id, "yes")
    with pytest.raises(AccessDenied):
        items.submit(10_000, own, "yes")  # an annotator id that does not exist
    assert dump(db_path) == before


@pytest.mark.parametrize(("rating", "tags", "seconds", "message"), [
    ("perfect", [], None, "unknown rating 'perfect'"),
    ("Yes", [], None, "unknown rating 'Yes'"),
    ("no", ["made-up tag"], None, "unknown shortcoming tags: ['made-up tag']"),
    ("yes", [], -1.0, "seconds must be a non-negative number, got -1.0"),
    ("yes", [], math.inf, "seconds must be a non-negative number, got inf"),
])
def test_bad_rating_tag_or_seconds_is_refused(items: Store, db_path: Path, rating: str, tags: list[str],
                                      seconds: float | None, message: str) -> None:
    items.add_annotator("alice", "s", code="a")
    aid = annotator_id(items, "alice")
    item = next_item(items, aid)["item_id"]
    before = dump(db_path)
    with pytest.raises(ValueError) as info:
        items.submit(aid, item, rating, tags, seconds=seconds)
    assert message in str(info.value)
    assert dump(db_path) == before


CUSTOM_RULES = {"no_tags_for": ["yes", "weak_yes"], "tags_required_for": ["no"], "exclusive_tags": ["one word"]}

# (rating, tags, study rules or None for the defaults, expected violation substring or None when accepted)
SUBMIT_RULES = [
    ("yes", [], None, None),
    ("yes", ["hallucination"], None, 'Rule "no tags for Yes"'),
    ("weak_yes", ["hallucination"], None, None),
    ("weak_no", [], None, 'Rule "tags required for Weak no"'),
    ("no", [], None, 'Rule "tags required for No"'),
    ("no", ["empty"], None, None),
    ("no", ["empty", "one word"], None, 'Rule "empty is exclusive"'),
    ("weak_yes", ["inaccurate"], CUSTOM_RULES, 'Rule "no tags for Weak yes"'),
    ("weak_no", [], CUSTOM_RULES, None),
    ("no", ["one word", "inaccurate"], CUSTOM_RULES, 'Rule "one word is exclusive"'),
    ("no", ["empty", "inaccurate"], CUSTOM_RULES, None),
]


@pytest.mark.parametrize(("rating", "tags", "rules", "expected"), SUBMIT_RULES)
def test_study_rules_are_enforced_on_submit(store: Store, write_jsonl, db_path: Path, rating: str,
                                            tags: list[str], rules: dict | None, expected: str | None) -> None:
    store.create_study("s", rules=rules)
    store.import_nles(write_jsonl([nle()]), "s")
    store.add_annotator("alice", "s", code="a")
    aid = annotator_id(store, "alice")
    item = next_item(store, aid)["item_id"]
    before = dump(db_path)
    if expected is None:
        store.submit(aid, item, rating, tags)
        assert store.history(aid, item)[-1]["tags"] == tags
        return
    with pytest.raises(RuleViolation) as info:
        store.submit(aid, item, rating, tags)
    assert expected in str(info.value)
    assert dump(db_path) == before


def test_custom_study_tags_and_impossible_settings(store: Store) -> None:
    study = store.create_study("custom", tags=["vague", "wrong"], rules={"exclusive_tags": []})
    assert study["tags"] == ["vague", "wrong"]
    with pytest.raises(ValueError, match="already exists"):
        store.create_study("custom")
    with pytest.raises(ValueError, match="no ';'"):
        store.create_study("bad", tags=["a;b"])
    with pytest.raises(ValueError, match="'empty' is not one of the study's tags"):
        store.create_study("bad", tags=["vague"])


# -- rejection of bad NLE files: all or nothing ------------------------------------------------------------------------

GOOD_BEFORE = [nle("esnli", "g1"), nle("ecqa", "g2")]
GOOD_AFTER = [nle("sbic", "g3"), nle("comve", "g4")]


def _without(key: str) -> str:
    return json.dumps({k: v for k, v in nle("esnli", "bad").items() if k != key})


def _with(**over: Any) -> str:
    return json.dumps({**nle("esnli", "bad"), **over})


# (id, the bad third line, expected substring after "<file>, line 3")
BAD_LINES: list[tuple[str, str | bytes, str]] = [
    ("invalid-json", '{"dataset": "esnli", "sample_id": ', ": invalid JSON (Expecting value)"),
    ("trailing-garbage", _with() + " x", ": invalid JSON (Extra data)"),
    ("number-too-long", _with()[:-1] + ', "n": ' + "9" * 5000 + "}", ": invalid JSON (number too long)"),
    ("deep-nesting", _with()[:-1] + ', "n": ' + "[" * 100_000 + "]" * 100_000 + "}", ": invalid JSON (nested too deeply)"),
    *[(f"missing-{k}", _without(k), f", field '{k}': required field is missing") for k in REQUIRED_KEYS],
    ("dataset-int", _with(dataset=5), ", field 'dataset': must be a non-empty string, got int"),
    ("dataset-blank", _with(dataset="  "), ", field 'dataset': must be a non-empty string, got an empty string"),
    ("sample_id-bool", _with(sample_id=True), ", field 'sample_id': must be a non-empty string or an integer, got a boolean"),
    ("sample_id-float", _with(sample_id=1.5), ", field 'sample_id': must be a non-empty string or an integer, got float"),
    ("sample_id-empty", _with(sample_id=""), ", field 'sample_id': must be a non-empty string or an integer"),
    ("config-null", _with(config=None), ", field 'config': must be a non-empty string, got null"),
    ("input-string", _with(input="a premise"), ", field 'input': must be a non-empty object of named strings, got a string"),
    ("input-list", _with(input=["a"]), ", field 'input': must be a non-empty object of named strings, got a list"),
    ("input-empty", _with(input={}), ", field 'input': must be a non-empty object of named strings, got an object"),
    ("input-value-int", _with(input={"premise": 3}), ", field 'input.premise': must be a string or a list of strings, got int"),
    ("input-value-null", _with(input={"post": None}), ", field 'input.post': must be a string or a list of strings, got null"),
    ("input-choices-mixed", _with(input={"choices": ["a", 1]}), ", field 'input.choices': must be a string or a list of strings, got a list"),
    ("input-value-object", _with(input={"p": {"x": "y"}}), ", field 'input.p': must be a string or a list of strings, got an object"),
    ("predicted_label-int", _with(predicted_label=1), ", field 'predicted_label': must be a string, got int"),
    ("explanation-null", _with(explanation=None), ", field 'explanation': must be a string, got null"),
    ("explanation-list", _with(explanation=["a"]), ", field 'explanation': must be a string, got a list"),
    ("model-int", _with(model=3), ", field 'model': must be a string, got int"),
    ("gold_label-list", _with(gold_label=[]), ", field 'gold_label': must be a string, got a list"),
    ("prompt-object", _with(prompt={}), ", field 'prompt': must be a string, got an object"),
    ("split_seed-string", _with(split_seed="7"), ", field 'split_seed': must be an integer, got a string"),
    ("split_seed-bool", _with(split_seed=True), ", field 'split_seed': must be an integer, got a boolean"),
    ("split_seed-float", _with(split_seed=7.0), ", field 'split_seed': must be an integer, got float"),
    ("split_seed-huge", _with(split_seed=2**63), ", field 'split_seed': must fit in a signed 64-bit integer"),
    ("gold_explanations-string", _with(gold_explanations="g"), ", field 'gold_explanations': must be a list of strings, got a string"),
    ("gold_explanations-mixed", _with(gold_explanations=["g", 2]), ", field 'gold_explanations': must be a list of strings, got a list"),
    ("non-object-list", '["esnli", "1"]', ": expected a JSON object, got a list"),
    ("non-object-string", '"esnli"', ": expected a JSON object, got a string"),
    ("non-object-number", "42", ": expected a JSON object, got int"),
    ("non-object-null", "null", ": expected a JSON object, got null"),
    ("duplicate-key", '{"explanation": "first", ' + _with()[1:], ", field 'explanation': key appears twice in the same object"),
    ("duplicate-key-nested", _with(input={"premise": "a"}).replace('"premise": "a"', '"premise": "a", "premise": "b"'),
     ", field 'premise': key appears twice in the same object"),
    ("duplicate-key-newline", '{"a\\nb": 1, "a\\nb": 2}', ", field 'a\\nb': key appears twice in the same object"),
    ("invalid-utf8", _with().encode().replace(b"esnli", b"esn\xffli"), ": invalid UTF-8 (byte 0xff)"),
    ("latin-1", _with(explanation="café").replace("\\u00e9", "é").encode("utf-8").replace("é".encode(), b"\xe9"), ": invalid UTF-8 (byte 0xe9)"),
    ("lone-surrogate", _with(explanation="x").replace('"x"', '"\\ud800"'),
     ", field 'explanation': contains an unpaired surrogate escape"),
    ("huge-line", _with(explanation="x" * 1_000_001), ": line is longer than 1,000,000 characters"),
    # Python's json reads NaN, Infinity and 1e999 (as inf); JSON has none of them, and SQLite calls the stored
    # metadata "malformed JSON". Refused with the path of the field, at any depth.
    ("nan-metadata", _with()[:-1] + ', "score": NaN}', ", field 'score': NaN is not a finite number"),
    ("infinity-nested", _with()[:-1] + ', "extra": {"runs": [{"loss": 0.5}, {"loss": -Infinity}]}}',
     ", field 'extra.runs[1].loss': -Infinity is not a finite number"),
    ("infinity-input", _with(input={"premise": "p"}).replace('"p"', "Infinity"),
     ", field 'input.premise': Infinity is not a finite number"),
    ("overflow-number", _with()[:-1] + ', "big": -1e999}', ", field 'big': -1e999 is not a finite number"),
    ("nan-split_seed", _with(split_seed=0).replace('"split_seed": 0', '"split_seed": NaN'),
     ", field 'split_seed': NaN is not a finite number"),
    ("nan-top-level", "NaN", ": NaN is not a finite number"),
    ("unknown-study", _with(study="nosuchstudy"), ", field 'study': unknown rating study 'nosuchstudy'"),
    ("other-study", _with(study="t"), ", field 'study': line belongs to study 't' but the import targets 's'"),
    ("conflicting-duplicate", json.dumps(nle("esnli", "g1", explanation="a different one")),
     ", field 'sample_id': ('esnli', 'g1', 'full_ft') already appears on line 1 with different content"),
    ("changed-explanation", json.dumps(nle("esnli", "old", explanation="changed")),
     ", field 'explanation': item ('esnli', 'old', 'full_ft') is already in study 's' with a different explanation"),
    ("changed-label", json.dumps(nle("esnli", "old", predicted_label="neutral")),
     ", field 'predicted_label': item ('esnli', 'old', 'full_ft') is already in study 's' with a different predicted_label"),
    ("changed-input", json.dumps(nle("esnli", "old", input={"premise": "p", "hypothesis": "h"})),
     ", field 'input': item ('esnli', 'old', 'full_ft') is already in study 's' with a different input"),
]


@pytest.fixture
def seeded(store: Store, write_jsonl) -> Store:
    """Study "s" with items, a gold item, an annotator and a rating; an empty study "t"."""
    store.import_nles(write_jsonl([nle("esnli", "old"), nle("sbic", "old2")], "seed.jsonl"), "s", with_gold=True)
    store.create_study("t")
    store.add_annotator("alice", "s", code="alice-code")
    aid = annotator_id(store, "alice")
    store.submit(aid, next_item(store, aid)["item_id"], "weak_no", ["inaccurate"], "seed", seconds=5)
    return store


def _write_raw(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in lines))
    return path


@pytest.mark.parametrize(("bad", "expected"), [pytest.param(b, e, id=i) for i, b, e in BAD_LINES])
def test_bad_nle_file_is_rejected_whole(seeded: Store, db_path: Path, tmp_path: Path, bad: str | bytes,
                                        expected: str) -> None:
    path = _write_raw(tmp_path / "bad.jsonl", [*map(json.dumps, GOOD_BEFORE), bad, *map(json.dumps, GOOD_AFTER)])
    before, before_hash = dump(db_path), file_hash(seeded)
    with pytest.raises(InputFileError) as info:
        seeded.import_nles(path, "s")
    message = str(info.value)
    assert f"{path}, line 3{expected}" in message
    assert "\n" not in message and info.value.line == 3
    assert dump(db_path) == before
    assert file_hash(seeded) == before_hash


@pytest.mark.parametrize(("content", "expected"), [
    (b"", ": file holds no NLE lines"),
    (b"\n  \n\n", ": file holds no NLE lines"),
    (None, ": file not found"),
])
def test_empty_or_missing_nle_file_is_rejected(seeded: Store, db_path: Path, tmp_path: Path, content: bytes | None,
                                               expected: str) -> None:
    path = tmp_path / "empty.jsonl"
    if content is not None:
        path.write_bytes(content)
    before = dump(db_path)
    with pytest.raises(InputFileError) as info:
        seeded.import_nles(path, "s")
    assert str(info.value) == f"{path}{expected}"
    assert dump(db_path) == before


def test_checkpointed_file_hash_detects_a_real_change(seeded: Store, write_jsonl) -> None:
    # The byte-for-byte check above would be worthless if the hash did not move on a successful import.
    before = file_hash(seeded)
    seeded.import_nles(write_jsonl([*GOOD_BEFORE, *GOOD_AFTER], "good.jsonl"), "s")
    assert file_hash(seeded) != before


def test_blank_lines_crlf_and_bom_are_accepted(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    body = "\r\n".join([json.dumps(nle("esnli", "1")), "", "   ", json.dumps(nle("esnli", "2"))]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert store.import_nles(path, "s").added == 2


def test_same_line_twice_in_a_file_is_one_item(store: Store, write_jsonl) -> None:
    line = nle("esnli", "1")
    result = store.import_nles(write_jsonl([line, line, {**line, "sample_id": 1}]), "s")
    assert (result.added, len(store.items_frame("s"))) == (1, 1)


def test_counts_and_backup(seeded: Store, tmp_path: Path) -> None:
    counts = seeded.counts()
    assert counts["items"] == 4 and counts["ratings"] == 1 and counts["rating_history"] == 1
    out = seeded.backup(tmp_path / "copy.db")
    with Store(out) as copy:
        assert copy.integrity_check() == "ok"
        assert dump(out)["ratings"] == dump(seeded.path)["ratings"]
    with pytest.raises(FileExistsError):
        seeded.backup(out)
