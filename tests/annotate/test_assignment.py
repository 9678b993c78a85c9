"""k-of-N assignment, attention checks and crowd joining in the store (issue 12 §1, §3, §4)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
import sqlite_utils

from annotate import cli
from annotate.core.assignment import DEFAULT_OVERLAP
from annotate.core.crowd import JoinRefused
from annotate.core.errors import AccessDenied, InputFileError
from annotate.core.formats import read_nle_file
from annotate.core.scale import DEFAULT_TAGS, QUESTION, RATINGS, Guidelines, Rules
from annotate.core.schema import MIGRATIONS, now_iso
from annotate.core.store import Store
from tests.helpers import dump, nle


def aid(store: Store, name: str) -> int:
    return next(a["id"] for a in store.annotators() if a["name"] == name)


def rate(store: Store, name: str, limit: int | None = None, rating: str = "yes") -> list[int]:
    """Rate like the app (next, submit) until done or `limit`; returns the item ids rated."""
    a, rated = aid(store, name), []
    pos = store.next_unanswered(a)
    while pos is not None and (limit is None or len(rated) < limit):
        item = store.annotator_item(a, pos)
        store.submit(a, item["item_id"], rating, [] if rating in ("yes", "weak_yes") else ["nonsensical"])
        rated.append(item["item_id"])
        pos = store.next_unanswered(a, after=pos)
    return rated


@pytest.fixture
def study(store: Store, write_jsonl) -> Store:
    store.import_nles(write_jsonl([nle("esnli", f"s{i}") for i in range(10)]), "s")
    store.configure_study("s", overlap=2)
    for name in ("a", "b", "c"):
        store.add_annotator(name, "s", code=f"code-{name}")
    return store


def ratings_per_item(store: Store) -> Counter:
    return Counter(r[0] for r in store.conn.execute("SELECT item_id FROM ratings"))


def test_items_others_rated_come_first_and_no_item_gets_more_than_k(study: Store) -> None:
    first = rate(study, "a", limit=3)
    assert set(rate(study, "b", limit=3)) == set(first)  # b is offered a's items before any fresh one
    assert not set(rate(study, "c", limit=3)) & set(first)  # those have k = 2 ratings: c gets others
    rate(study, "a")
    rate(study, "b")
    rate(study, "c")
    assert set(ratings_per_item(study).values()) == {2}
    assert len(ratings_per_item(study)) == 10


def test_a_lapsed_reservation_goes_to_someone_else_and_its_holder_cannot_add_a_third(study: Store) -> None:
    study.configure_study("s", lapse_seconds=60)
    a, b, c = aid(study, "a"), aid(study, "b"), aid(study, "c")
    pos_a = study.next_unanswered(a)
    held = study.annotator_item(a, pos_a)["item_id"]
    pos_b = study.next_unanswered(b)
    assert study.annotator_item(b, pos_b)["item_id"] == held  # held by a: b joins it for the pair
    pos_c = study.next_unanswered(c)
    assert study.annotator_item(c, pos_c)["item_id"] != held  # two live reservations: k is reached
    # a walks away: the reservation lapses; the next claimant takes the item over.
    study.conn.execute("UPDATE assignments SET reserved_at = reserved_at - 120 WHERE annotator_id = ?", (a,))
    study.submit(c, study.annotator_item(c, pos_c)["item_id"], "yes")
    pos_c = study.next_unanswered(c, after=pos_c)
    assert study.annotator_item(c, pos_c)["item_id"] == held
    before = dump(study.path)
    with pytest.raises(AccessDenied):
        study.submit(a, held, "yes")  # a comes back: the item is no longer theirs, nothing is written
    assert dump(study.path) == before
    study.submit(b, held, "yes")
    study.submit(c, held, "yes")
    assert ratings_per_item(study)[held] == 2


def test_cap_per_annotator_and_a_late_annotator_gets_the_remaining_work(study: Store) -> None:
    study.configure_study("s", max_per_annotator=4)
    assert len(rate(study, "a")) == 4
    assert len(rate(study, "b")) == 4
    assert len(rate(study, "c")) == 4
    assert sum(ratings_per_item(study).values()) == 12
    study.add_annotator("d", "s", code="code-d")  # joins mid-study
    late = rate(study, "d")
    assert len(late) == 4 and all(ratings_per_item(study)[i] <= 2 for i in late)
    assert study.queue_length(aid(study, "d")) == 4


def test_progress_shows_assigned_done_median_seconds_and_complete_sets(study: Store) -> None:
    a, b = aid(study, "a"), aid(study, "b")
    for who in (a, b):
        pos = study.next_unanswered(who)
        study.submit(who, study.annotator_item(who, pos)["item_id"], "yes", seconds=4.0)
        pos = study.next_unanswered(who, after=pos)
        study.submit(who, study.annotator_item(who, pos)["item_id"], "yes", seconds=8.0)
    study.next_unanswered(a)  # a holds a third item
    p = study.progress("s")
    rows = {r["name"]: r for r in p["annotators"]}
    assert (rows["a"]["assigned"], rows["a"]["done"], rows["a"]["median_seconds"]) == (3, 2, 6.0)
    assert (rows["b"]["assigned"], rows["b"]["done"]) == (3 - 1, 2)
    assert rows["c"]["done"] == 0 and rows["a"]["last_activity"]
    assert (p["k"], p["items"], p["complete_sets"], p["ratings_needed"]) == (2, 10, 2, 16)
    assert p["eta_seconds"] is not None and p["eta_seconds"] > 0


def test_switching_between_all_and_k_keeps_every_rating(study: Store) -> None:
    rate(study, "a", limit=2)
    study.configure_study("s", overlap="all")
    assert study.queue_length(aid(study, "b")) == 10
    assert study.answered_count(aid(study, "a")) == 2
    study.configure_study("s", overlap=2)
    assert sum(ratings_per_item(study).values()) == 2
    assert study.assignment_settings("s").overlap == 2


@pytest.mark.parametrize(("changes", "message"), [
    ({"overlap": 0}, "overlap must be a positive integer or 'all', got 0"),
    ({"overlap": "two"}, "overlap must be a positive integer or 'all', got 'two'"),
    ({"max_per_annotator": 0}, "max_per_annotator must be at least 1, got 0"),
    ({"attention_tolerance": "loose"}, "attention_tolerance must be one of exact, within_one, got 'loose'"),
    ({"redirect_url": "javascript:alert(1)"}, "redirect URL must start with http:// or https://"),
])
def test_impossible_settings_are_refused_and_change_nothing(study: Store, changes: dict, message: str) -> None:
    before = dump(study.path)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        study.configure_study("s", **changes)
    assert dump(study.path) == before


# -- the default overlap and databases made before it ----------------------------------------------------------


def test_the_demo_study_is_k_2_and_alice_and_bob_each_still_rate_every_item(demo_store: Store) -> None:
    every = set(demo_store.items_frame("demo")["item_id"])
    assert demo_store.assignment_settings("demo").overlap == DEFAULT_OVERLAP == 2
    alice = rate(demo_store, "alice", limit=3)
    bob = rate(demo_store, "bob", limit=3)
    assert set(bob) == set(alice)  # k = 2 changes the order: what alice rated comes first for bob
    alice += rate(demo_store, "alice")
    bob += rate(demo_store, "bob")
    assert set(alice) == set(bob) == every and len(alice) == len(bob) == len(every)
    for name in ("alice", "bob"):
        assert demo_store.queue_length(aid(demo_store, name)) == len(every)
    # The demo items only: the database also holds feb-example, with FEB's three ratings per item.
    assert {n for item, n in ratings_per_item(demo_store).items() if item in every} == {2}


def database_before(path, migration: str) -> tuple[sqlite_utils.Database, int]:
    """A database as the code before `migration` made it, holding one study "old"; returns it and the study id."""
    db = sqlite_utils.Database(str(path))
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, step in MIGRATIONS[:[name for name, _ in MIGRATIONS].index(migration)]:
        step(db)
        db.execute("INSERT INTO migrations VALUES (?, ?)", (name, now_iso()))
    g = Guidelines()
    study = db["studies"].insert({
        "name": "old", "question": QUESTION, "scale": json.dumps(list(RATINGS)), "tags": json.dumps(DEFAULT_TAGS),
        "rules": json.dumps(Rules().to_dict()), "guidelines": json.dumps(g.__dict__),
        "guidelines_version": g.version, "created_at": now_iso()}).last_pk
    return db, study


def old_database(path) -> None:
    """A database as the code before migration 0003 made it: a study whose two annotators each had every item
    queued (k = all)."""
    db, study = database_before(path, "0003_k_of_n_assignment")
    annotators = [db["annotators"].insert({"study_id": study, "name": name, "created_at": now_iso()}).last_pk
                  for name in ("ann", "bea")]
    for position in range(3):
        line = nle("esnli", f"o{position}")
        item = db["items"].insert({
            **{k: line[k] for k in ("dataset", "sample_id", "config", "predicted_label", "explanation")},
            "study_id": study, "input": json.dumps(line["input"]), "created_at": now_iso()}).last_pk
        for annotator in annotators:
            db["assignments"].insert({"annotator_id": annotator, "item_id": item, "position": position})
    db.conn.commit()
    db.close()


def test_a_study_of_an_old_database_keeps_k_all_and_a_new_study_there_gets_k_2(tmp_path, write_jsonl,
                                                                              capsys) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    with Store(path) as store:  # migrates
        assert store.assignment_settings("old").overlap is None
        for name in ("ann", "bea"):  # the positional queues of k = all, untouched
            assert [store.annotator_item(aid(store, name), p) is not None for p in range(4)] == [True] * 3 + [False]
        store.configure_study("old", lapse_seconds=600)  # another setting changes nothing about k
        assert store.assignment_settings("old").overlap is None
        store.import_nles(write_jsonl([nle("esnli", "n1")], "new.jsonl"), "new")
        assert store.assignment_settings("new").overlap == 2
    assert cli.main(["study", "show", "--db", str(path), "old"]) == 0
    assert "  overlap k: all (every annotator rates every item)\n" in capsys.readouterr().out


def test_a_study_without_a_settings_row_stays_k_all(store: Store, write_jsonl) -> None:
    """A study inserted by code that predates the settings (an old app on a migrated file) has no settings row:
    it is k = all, and stays so when a setting is changed or joining is opened."""
    store.import_nles(write_jsonl([nle("esnli", f"s{i}") for i in range(3)]), "s")
    store.conn.execute("DELETE FROM study_settings")
    store.add_annotator("ann", "s", code="code-ann")
    assert store.assignment_settings("s").overlap is None and store.queue_length(aid(store, "ann")) == 3
    store.open_joining("s")
    assert store.assignment_settings("s").overlap is None
    store.configure_study("s", max_per_annotator=2)
    assert store.study_settings("s")["overlap"] is None and store.study_settings("s")["max_per_annotator"] == 2


# -- attention checks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stored"), [
    ("no", ("no",)), ("Weak yes", ("weak_yes",)), (["yes", "weak yes"], ("yes", "weak_yes")),
])
def test_expected_rating_is_parsed(write_jsonl, given, stored) -> None:
    (rec,) = read_nle_file(write_jsonl([nle(expected_rating=given)]))
    assert rec.expected_rating == stored and "expected_rating" not in rec.metadata


@pytest.mark.parametrize(("given", "message"), [
    ("perfect", "field 'expected_rating': unknown rating 'perfect'"),
    ([], "field 'expected_rating': must be a rating or a non-empty list of ratings"),
    (3, "field 'expected_rating': rating must be a string, got int"),
])
def test_bad_expected_rating_names_file_line_and_field(write_jsonl, given, message) -> None:
    path = write_jsonl([nle(), nle(sample_id="2", expected_rating=given)])
    with pytest.raises(InputFileError, match=f"line 2, {message}"):
        read_nle_file(path)


@pytest.fixture
def with_checks(store: Store, write_jsonl) -> Store:
    lines = [nle("esnli", f"s{i}") for i in range(12)]
    lines += [nle("esnli", "check-yes", explanation="A man plays guitar, so he makes music.", expected_rating="yes"),
              nle("esnli", "check-no", explanation="Bananas are yellow.", expected_rating=["no", "weak no"])]
    store.import_nles(write_jsonl(lines), "s")
    store.configure_study("s", overlap=2)
    for name in ("a", "b"):
        store.add_annotator(name, "s", code=f"code-{name}")
    return store


def test_attention_checks_go_to_everyone_mixed_in_and_never_into_scores(with_checks: Store) -> None:
    rated_a = rate(with_checks, "a", rating="yes")
    rated_b = rate(with_checks, "b", rating="no")
    checks = {r[0] for r in with_checks.conn.execute("SELECT id FROM items WHERE expected_rating IS NOT NULL")}
    for rated in (rated_a, rated_b):
        assert checks <= set(rated) and len(rated) == 14
        # Mixed in, not saved for the start or the end of the queue.
        assert [i for i, item in enumerate(rated) if item in checks] != [0, 1]
    # Blind: the annotator's view carries no trace of the expected answer.
    a = aid(with_checks, "a")
    assert all("expected" not in json.dumps(with_checks.annotator_item(a, p)) for p in range(14))
    att = with_checks.attention_frame("s").set_index("annotator")
    assert att.loc["a", "passed"] == 1 and att.loc["b", "passed"] == 1 and att.loc["a", "checks"] == 2
    items, ratings = with_checks.analysis_frames("s")
    assert len(items) == 12 and not set(ratings["item_id"]) & checks
    assert len(with_checks.ratings_frame("s")) == 24


def test_within_one_step_tolerance(with_checks: Store) -> None:
    rate(with_checks, "a", rating="weak_yes")  # one step from "yes" and from "weak no"; exact for neither
    assert with_checks.attention_frame("s").set_index("annotator").loc["a", "pass_rate"] == 0.0
    with_checks.configure_study("s", attention_tolerance="within_one")
    assert with_checks.attention_frame("s").set_index("annotator").loc["a", "pass_rate"] == 1.0


# -- crowd joining ----------------------------------------------------------------------------------------------


@pytest.fixture
def crowd_study(study: Store) -> tuple[Store, str]:
    return study, study.open_joining("s", max_joined=2)


def test_join_creates_then_resumes_and_completion_code_comes_at_the_end(crowd_study) -> None:
    store, token = crowd_study
    store.configure_study("s", max_per_annotator=3, completion_code="C0DE-42",
                          redirect_url="https://app.prolific.com/submissions/complete?cc=C0DE-42")
    first = store.join("s", token, "5f1a2b3c")
    del first["resume_code"]
    assert store.join("s", token, "5f1a2b3c", browser_annotator=first["id"]) == first
    assert store.completion(first["id"]) is None
    rate(store, "crowd:5f1a2b3c")
    assert store.completion(first["id"]) == {
        "completion_code": "C0DE-42", "redirect_url": "https://app.prolific.com/submissions/complete?cc=C0DE-42"}


@pytest.mark.parametrize(("study_name", "token", "pid", "message"), [
    ("nope", None, "w1", "This study does not exist"),
    ("s", "wrong-token", "w1", "This join link is not valid"),
    ("s", None, "", "This link has no worker ID"),
    ("s", None, "x" * 129, "longer than 128 characters"),
    ("s", None, "w\x07", "control characters"),
])
def test_bad_join_links_get_a_plain_message_and_change_nothing(crowd_study, study_name, token, pid, message) -> None:
    store, good = crowd_study
    before = dump(store.path, without=("login_attempts",))
    with pytest.raises(JoinRefused, match=message):
        store.join(study_name, token or good, pid)
    assert dump(store.path, without=("login_attempts",)) == before
    # Only a wrong study or token counts against the join-link limit (a bad pid is refused before any check).
    failed = store.conn.execute("SELECT name FROM login_attempts WHERE ok = 0").fetchall()
    assert failed == ([(f"join:{study_name}",)] if message.startswith("This study does not exist")
                      or message.startswith("This join link is not valid") else [])


def test_closed_and_full_studies_refuse_joining(crowd_study) -> None:
    store, token = crowd_study
    store.join("s", token, "w1")
    store.join("s", token, "w2")
    before = dump(store.path)
    with pytest.raises(JoinRefused, match="This study is full"):
        store.join("s", token, "w3")
    store.close_joining("s")
    with pytest.raises(JoinRefused, match="closed"):
        store.join("s", token, "w1")
    assert store.counts()["annotators"] == 5
    reopened = store.open_joining("s")
    with pytest.raises(JoinRefused, match="not valid"):
        store.join("s", token, "w1")  # re-opening issues a new secret
    w1 = aid(store, "crowd:w1")
    assert store.join("s", reopened, "w1", browser_annotator=w1)["name"] == "crowd:w1"
    del before


def test_the_token_is_stored_only_as_a_hash(crowd_study) -> None:
    store, token = crowd_study
    conn = sqlite3.connect(store.path)
    assert token not in json.dumps(conn.execute("SELECT * FROM study_settings").fetchall())
    conn.close()


def test_every_check_is_given_even_when_the_cap_ends_the_regular_work(with_checks: Store) -> None:
    with_checks.configure_study("s", max_per_annotator=2)
    a = aid(with_checks, "a")
    assert with_checks.queue_length(a) == 4
    rated = rate(with_checks, "a")
    checks = {r[0] for r in with_checks.conn.execute("SELECT id FROM items WHERE expected_rating IS NOT NULL")}
    assert len(rated) == 4 and checks <= set(rated)
    # An annotator who arrives when every item has its k ratings gets no attention check either.
    with_checks.configure_study("s", max_per_annotator=None)
    rate(with_checks, "b")
    rate(with_checks, "a")
    with_checks.add_annotator("late", "s", code="code-late")
    assert with_checks.next_unanswered(aid(with_checks, "late")) is None
    assert with_checks.queue_length(aid(with_checks, "late")) == 0


def test_ratings_imported_into_a_k_study_count_towards_k(study: Store, tmp_path) -> None:
    csv = tmp_path / "ext.csv"
    csv.write_text("dataset,sample_id,config,annotator,rating,tags\n"
                   + "".join(f"esnli,s{i},full_ft,{who},yes,\n" for i in range(3) for who in ("x", "y")))
    study.import_ratings(csv, "s")
    assert study.answered_count(aid(study, "x")) == 3
    rated = rate(study, "a")
    assert len(rated) == 7 and not set(rated) & {r[0] for r in study.conn.execute(
        "SELECT item_id FROM ratings WHERE annotator_id = ?", (aid(study, "x"),))}


# -- k-of-N counts: pairwise answers, who rated an item once, and the k = 2 index path (migration 0005) ----------


def answer_pairs(store: Store, name: str, limit: int | None = None) -> list[int]:
    """Answer pairs like the app until done or `limit`; returns the item ids answered."""
    a, done = aid(store, name), []
    pos = store.next_unanswered(a)
    while pos is not None and (limit is None or len(done) < limit):
        item = store.annotator_pair(a, pos)
        store.submit_preference(a, item["item_id"], "1")
        done.append(item["item_id"])
        pos = store.next_unanswered(a, after=pos)
    return done


def test_a_pairwise_study_gives_each_pair_k_answers_and_answered_pairs_come_first(store: Store,
                                                                                  write_jsonl) -> None:
    """Pairwise answers count towards k like ratings: before migration 0005 three annotators of a k = 2 pairwise
    study each got every pair."""
    store.import_pairwise(write_jsonl([nle("esnli", f"s{i}", c) for i in range(6) for c in ("A", "B")]), "A", "B",
                          "pw")
    assert store.assignment_settings("pw").overlap == 2
    for name in ("x", "y", "z"):
        store.add_annotator(name, "pw", code=f"code-{name}-1234")
    first = answer_pairs(store, "x", 3)
    assert set(answer_pairs(store, "y", 3)) == set(first)
    assert not set(answer_pairs(store, "z", 3)) & set(first)
    for name in ("x", "y", "z"):
        answer_pairs(store, name)
    per_item = Counter(r[0] for r in store.conn.execute("SELECT item_id FROM preferences"))
    assert len(per_item) == 6 and set(per_item.values()) == {2}
    progress = store.progress("pw")
    assert progress["complete_sets"] == 6 and progress["ratings_needed"] == 0
    answered = Counter(r[0] for r in store.conn.execute(
        "SELECT n.name FROM preferences p JOIN annotators n ON n.id = p.annotator_id"))
    assert {a["name"]: a["done"] for a in progress["annotators"]} == answered and sum(answered.values()) == 12


def test_migration_0005_counts_ratings_and_preferences_of_an_older_database(tmp_path) -> None:
    """A database written before 0005: its items get their counts (ratings and pairwise answers), their one rater
    and whether they may be offered (a ratings import's blank item may not)."""
    path = tmp_path / "old.db"
    db, study = database_before(path, "0005_k_of_n_at_scale")
    ann, bea = (db["annotators"].insert({"study_id": study, "name": n, "created_at": now_iso()}).last_pk
                for n in ("ann", "bea"))
    blank = json.dumps({"created_by": "import-ratings", "queued": False})
    items = [db["items"].insert({
        "study_id": study, "dataset": "esnli", "sample_id": f"o{i}", "config": "c", "input": "{}",
        "predicted_label": "x", "explanation": "y", "created_at": now_iso(), **({"metadata": blank} if i == 3 else {})
    }).last_pk for i in range(4)]
    answer = {"submitted_at": now_iso(), "revision": 1, "source": "app"}
    for item, who in ((items[0], ann), (items[1], ann), (items[1], bea)):
        db["ratings"].insert({"item_id": item, "annotator_id": who, "rating": "yes", "score": 1.0, **answer})
    db["preferences"].insert({"item_id": items[2], "annotator_id": bea, "preference": "tie", **answer})
    db.conn.commit()
    db.close()
    with Store(path) as store:  # opening applies 0005
        rows = [r for r in store.conn.execute("SELECT rating_count, sole_rater, queueable FROM items ORDER BY id")]
        assert rows == [(1, ann, 1), (2, None, 1), (1, bea, 1), (0, None, 0)]
        # The recount and the triggers find an item's answers through an index, not a scan per item (a large
        # pairwise study would otherwise take minutes to migrate).
        for table in ("ratings", "preferences"):
            plan = store.conn.execute(f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM {table} WHERE item_id = 1").fetchall()
            assert plan[0][3].startswith(f"SEARCH {table} USING"), plan


def test_the_counts_follow_every_answer_in_and_out(study: Store) -> None:
    """rating_count and sole_rater (the one rater while there is exactly one) after inserts and deletes,
    against a recount; a ratings import's blank item is not queueable, and becomes so when its text arrives."""
    import random

    rng = random.Random(7)
    annotators = [aid(study, n) for n in ("a", "b", "c")]
    items = [r[0] for r in study.conn.execute("SELECT id FROM items")]
    conn = study.conn
    for _ in range(200):
        a, i = rng.choice(annotators), rng.choice(items)
        if conn.execute("SELECT 1 FROM ratings WHERE annotator_id = ? AND item_id = ?", (a, i)).fetchone():
            conn.execute("DELETE FROM ratings WHERE annotator_id = ? AND item_id = ?", (a, i))
        else:
            conn.execute("INSERT INTO ratings (item_id, annotator_id, rating, score, submitted_at, revision,"
                         " source) VALUES (?, ?, 'yes', 1.0, ?, 1, 'app')", (i, a, now_iso()))
        for item, n, sole in conn.execute("SELECT id, rating_count, sole_rater FROM items"):
            raters = [r[0] for r in conn.execute("SELECT annotator_id FROM ratings WHERE item_id = ?", (item,))]
            assert (n, sole) == (len(raters), raters[0] if len(raters) == 1 else None)
    blank = study.db["items"].insert({"study_id": 1, "dataset": "esnli", "sample_id": "x", "config": "c",
                                      "input": "{}", "predicted_label": "", "explanation": "", "created_at": now_iso(),
                                      "metadata": json.dumps({"created_by": "import-ratings", "queued": False})}
                                     ).last_pk
    assert conn.execute("SELECT queueable FROM items WHERE id = ?", (blank,)).fetchone()[0] == 0
    conn.execute("UPDATE items SET metadata = ? WHERE id = ?",
                 (json.dumps({"created_by": "import-ratings", "queued": True}), blank))
    assert conn.execute("SELECT queueable FROM items WHERE id = ?", (blank,)).fetchone()[0] == 1


@pytest.mark.parametrize("seed", range(4))
def test_the_k_2_index_path_offers_what_the_full_search_does(store: Store, write_jsonl, seed: int) -> None:
    """For k = 2 a claim reads items rated once by others from the index instead of every item under k; at each
    step of a random study (claims, answers, lapses) it must pick an item of the full search's first rank, and
    its count must be the full search's."""
    import random

    from annotate.core import assignment

    store.import_nles(write_jsonl([nle("esnli", f"s{i}") for i in range(30)]), "s")
    store.configure_study("s", overlap=2, lapse_seconds=60)
    names = ["a", "b", "c", "d"]
    for name in names:
        store.add_annotator(name, "s", code=f"code-{name}")
    rng, now, study_id = random.Random(seed), 1_000_000.0, 1
    for _ in range(80):
        now += rng.choice([1, 1, 1, 120])  # now and then every reservation lapses
        who = aid(store, rng.choice(names))
        live_after = now - 60
        full = assignment._partial(store.conn, study_id, who, 2, live_after)
        fast = assignment._partial(store.conn, study_id, who, 2, live_after, limit=1)
        assert assignment._partial_count(store.conn, study_id, who, 2, live_after) == len(full)
        assert bool(fast) == bool(full)
        if fast:
            assert fast[0] in full
        with store._transaction() as conn:
            position = assignment.claim(conn, who, now=now)
        if position is not None and rng.random() < 0.7:
            item = store.annotator_item(who, position)
            store.submit(who, item["item_id"], "yes", [])
    counts = Counter(r[0] for r in store.conn.execute("SELECT item_id FROM ratings"))
    assert max(counts.values()) <= 2
