"""Crowd workers who cannot fill a study, act as each other or squat a name (annotate/core/crowd.py): joins per
client address, a worker bound to the browser that joined (resume code otherwise), and the `crowd:` namespace."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from annotate import cli
from annotate.core import auth, crowd
from annotate.core.crowd import JoinRefused
from annotate.core.errors import AccessDenied
from annotate.core.schema import now_iso
from annotate.core.store import Store
from tests.annotate import test_app_crowd
from tests.annotate.test_app_crowd import visit
from tests.annotate.test_assignment import database_before
from tests.helpers import dump, nle

crowd_link = test_app_crowd.crowd  # the app tests' study "s" with joining open; the fixture returns its token
HOME, OTHER = "198.51.100.7", "203.0.113.20"
PER_ADDRESS = "This study has all the participants it takes from one network address"


@pytest.fixture
def study(store: Store, write_jsonl) -> Store:
    """Study "s": 10 items, k = 2, researcher-added annotator "Dr.Smith"."""
    store.import_nles(write_jsonl([nle("esnli", f"s{i}") for i in range(10)]), "s")
    store.add_annotator("Dr.Smith", "s", code="code-smith")
    return store


def names(store: Store) -> list[str]:
    return [a["name"] for a in store.annotators()]


# -- joins per client address -------------------------------------------------------------------------------------


def test_one_address_joins_at_most_the_limit_and_others_still_join(study: Store) -> None:
    """One browser joining as filler1, filler2, ... filled a study; now an address gets `joins_per_address`."""
    token = study.open_joining("s", joins_per_address=2)
    first = study.join("s", token, "filler1", HOME)
    study.join("s", token, "filler2", HOME)
    before = dump(study.path, without=("login_attempts",))
    with pytest.raises(JoinRefused, match=PER_ADDRESS):
        study.join("s", token, "filler3", HOME)
    assert dump(study.path, without=("login_attempts",)) == before
    assert study.join("s", token, "honest", OTHER)["name"] == "crowd:honest"
    # A worker who joined comes back from that address (or any other) without counting again.
    assert study.join("s", token, "filler1", HOME, browser_annotator=first["id"])["id"] == first["id"]
    assert study.join("s", token, "filler1", OTHER, browser_annotator=first["id"])["id"] == first["id"]
    assert study.study_settings("s")["joins_per_address"] == 2


def test_the_default_is_three_per_address_and_zero_means_no_limit(study: Store) -> None:
    token = study.open_joining("s")
    for i in range(3):
        study.join("s", token, f"w{i}", HOME)
    with pytest.raises(JoinRefused, match=PER_ADDRESS):
        study.join("s", token, "w3", HOME)
    assert study.study_settings("s")["joins_per_address"] == crowd.DEFAULT_JOINS_PER_ADDRESS == 3
    token = study.open_joining("s", joins_per_address=0)  # e.g. a load test: many workers from one address
    for i in range(3, 12):
        study.join("s", token, f"w{i}", HOME)
    assert len(names(study)) == 13
    with pytest.raises(ValueError, match=r"joins per address must be a whole number \(0 = no limit\), got -1"):
        study.open_joining("s", joins_per_address=-1)


def test_parallel_joins_from_one_address_never_pass_the_limit(study: Store) -> None:
    """Counted in the join's own write transaction: eight workers joining at once from one address, three get in."""
    token = study.open_joining("s", joins_per_address=3)
    results: list[str] = []
    start = threading.Barrier(8)

    def join(i: int) -> None:
        with Store(study.path) as mine:
            start.wait()
            try:
                mine.join("s", token, f"rush{i}", HOME)
                results.append("in")
            except JoinRefused as e:
                results.append(str(e))

    threads = [threading.Thread(target=join, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("in") == 3, results
    assert sum(PER_ADDRESS in r for r in results) == 5


def test_refused_joins_cost_no_slow_hash(study: Store, monkeypatch) -> None:
    """A new worker's resume code is hashed with scrypt (slow on purpose); wrong links and an address at its limit
    must not make the server do that work."""
    token = study.open_joining("s", joins_per_address=1)
    study.join("s", token, "w1", HOME)
    hashed = []
    monkeypatch.setattr(auth, "hash_code", lambda code, salt=None: hashed.append(code) or "scrypt$1$1$1$00$00")
    for bad in ("wrong-token", ""):
        with pytest.raises(JoinRefused, match="not valid"):
            study.join("s", bad, "w2", OTHER)
    with pytest.raises(JoinRefused, match=PER_ADDRESS):
        study.join("s", token, "w2", HOME)
    study.close_joining("s")
    with pytest.raises(JoinRefused, match="closed"):
        study.join("s", token, "w2", OTHER)
    assert hashed == []


def test_the_address_is_stored_only_as_a_hash(study: Store) -> None:
    token = study.open_joining("s")
    study.join("s", token, "w1", HOME)
    assert HOME not in json.dumps(dump(study.path, without=("login_attempts",)))
    (address,) = study.conn.execute("SELECT address FROM crowd_joins").fetchone()
    assert address == crowd.address_key(study.get_study("s")["id"], HOME)


def test_cli_open_sets_and_show_prints_the_limit(study: Store, capsys) -> None:
    assert cli.main(["study", "open", "--db", study.path, "s", "--joins-per-address", "5"]) == 0
    assert "at most 5 new per client address" in capsys.readouterr().out
    assert cli.main(["study", "show", "--db", study.path, "s"]) == 0
    assert "joining by link: open, at most 5 new per client address" in capsys.readouterr().out
    assert cli.main(["study", "open", "--db", study.path, "s", "--joins-per-address", "0"]) == 0
    assert "no limit per client address" in capsys.readouterr().out
    before = dump(study.path)
    assert cli.main(["study", "open", "--db", study.path, "s", "--joins-per-address", "-2"]) == 2
    assert capsys.readouterr().err == "error: joins per address must be a whole number (0 = no limit), got -2\n"
    assert dump(study.path) == before


def test_the_researcher_page_opens_joining_with_a_limit_per_address(monkeypatch, crowd_link, store: Store) -> None:
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "s3cret-pw")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "streamlit_app.py"), default_timeout=30).run()
    at.text_input(key="admin_password").input("s3cret-pw")
    at = at.button(key="admin_sign_in").click().run()
    assert at.number_input(key="join_per_address").value == 3
    at.number_input(key="join_per_address").set_value(7)
    at = at.button(key="join_open").click().run()
    assert not at.exception, at.exception
    assert store.study_settings("s")["joins_per_address"] == 7


# -- a worker id belongs to the browser that joined with it --------------------------------------------------------


def test_a_second_browser_with_the_same_worker_id_needs_the_resume_code(study: Store) -> None:
    """Whoever knew a worker id opened the link as that worker and revised their answers; now the id resumes only
    in the browser it joined from (its session or resume cookie) or with the resume code shown at the start."""
    token = study.open_joining("s")
    first = study.join("s", token, "5f1a2b3c", HOME)
    before = dump(study.path)
    for where, code in ((HOME, None), (OTHER, None), (OTHER, "  ")):
        with pytest.raises(JoinRefused, match="This worker ID has already started in another browser"):
            study.join("s", token, "5f1a2b3c", where, resume_code=code)
    assert dump(study.path) == before  # nothing written, not even an attempt
    code = first.pop("resume_code")
    assert first == {"id": first["id"], "name": "crowd:5f1a2b3c", "study_id": study.get_study("s")["id"]}
    assert code not in json.dumps(before)  # kept as a hash, like an access code
    assert study.join("s", token, "5f1a2b3c", HOME, browser_annotator=first["id"]) == first
    with pytest.raises(JoinRefused, match="That resume code is not right"):
        study.join("s", token, "5f1a2b3c", OTHER, resume_code="wrong-code-0000")
    assert study.join("s", token, "5f1a2b3c", OTHER, resume_code=f"  {code} ") == first
    # Another annotator's browser is no proof either.
    other = study.join("s", token, "someone-else", OTHER)
    with pytest.raises(crowd.ResumeNeeded):
        study.join("s", token, "5f1a2b3c", OTHER, browser_annotator=other["id"])


def test_wrong_resume_codes_are_limited_per_address(study: Store, monkeypatch) -> None:
    monkeypatch.setattr(auth.time, "time", lambda: 1_000_000.0)  # a still clock: the back-off never runs out
    token = study.open_joining("s")
    code = study.join("s", token, "w1", HOME)["resume_code"]
    for i in range(auth.MAX_FAILURES):
        with pytest.raises(JoinRefused, match="not right"):
            study.join("s", token, "w1", OTHER, resume_code=f"guess-{i}")
    with pytest.raises(JoinRefused, match=r"Too many wrong resume codes from this address; try again in 60 s\."):
        study.join("s", token, "w1", OTHER, resume_code=code)
    assert study.join("s", token, "w1", "192.0.2.1", resume_code=code)["name"] == "crowd:w1"  # the worker's own


def test_a_resume_code_is_no_sign_in_and_the_researcher_can_issue_a_new_one(study: Store, capsys) -> None:
    token = study.open_joining("s")
    code = study.join("s", token, "w1", HOME)["resume_code"]
    with pytest.raises(AccessDenied, match="not recognised"):
        study.authenticate("crowd:w1", code)  # only through the study's link, so closing joining ends it
    assert [a["can_sign_in"] for a in study.annotators("s") if a["name"] == "crowd:w1"] == [0]
    assert cli.main(["annotators", "list", "--db", study.path]) == 0
    assert "crowd:w1\tstudy s\t0 of 10 answered (joined by link)\n" in capsys.readouterr().out
    assert cli.main(["annotators", "reset-code", "--db", study.path, "crowd:w1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("new resume code for 'crowd:w1' (the old one no longer works): ")
    new = out.strip().rsplit(" ", 1)[1]
    with pytest.raises(JoinRefused, match="not right"):
        study.join("s", token, "w1", OTHER, resume_code=code)
    assert study.join("s", token, "w1", OTHER, resume_code=new)["name"] == "crowd:w1"


def test_in_the_app_a_new_browser_asks_for_the_code_and_the_joining_one_continues(crowd_link: str,
                                                                                 store: Store) -> None:
    at = visit(study="s", join=crowd_link, pid="w1")
    assert not at.exception, at.exception
    (code,) = [c.value for c in at.code]
    assert "Signed in as crowd:w1" in [t.value for t in at.sidebar.text]
    # A reload in the same browser: the resume cookie (here through the `?resume=` form it replaced) continues.
    token = at.session_state["_resume_token"]
    again = visit(study="s", join=crowd_link, pid="w1", resume=token)
    assert "Signed in as crowd:w1" in [t.value for t in again.sidebar.text] and not again.error
    assert code not in [c.value for c in again.code]  # shown once
    # Another browser: no queue, the resume code form.
    other = visit(study="s", join=crowd_link, pid="w1")
    assert not other.sidebar.text and "already started in another browser" in other.error[0].value
    other.text_input(key="join_resume_code").input("wrong-code-0000")
    other = other.button(key="join_resume").click().run()
    assert not other.sidebar.text and [e.value for e in other.error] == [
        "That resume code is not right. Check it and try again, or contact the researcher."]
    other.text_input(key="join_resume_code").input(code)
    other = other.button(key="join_resume").click().run()
    assert not other.exception, other.exception
    assert "Signed in as crowd:w1" in [t.value for t in other.sidebar.text] and not other.error
    assert names(store) == ["crowd:w1"]


def test_a_closed_study_does_not_take_a_worker_back_through_the_cookie(crowd_link: str, store: Store) -> None:
    at = visit(study="s", join=crowd_link, pid="w1")
    token = at.session_state["_resume_token"]
    store.close_joining("s")
    again = visit(resume=token)
    assert not again.sidebar.text and again.text_input(key="sign_in_name")


# -- crowd workers have their own names --------------------------------------------------------------------------


def test_a_worker_id_never_collides_with_a_researchers_name(study: Store, tmp_path: Path) -> None:
    """A worker joining as `dr.smith` blocked `annotators add Dr.Smith`; and a researcher's name blocked a worker."""
    token = study.open_joining("s")
    smith = study.annotators("s")[0]["id"]
    worker = study.join("s", token, "dr.smith", HOME)  # "Dr.Smith" exists already, and stays out of reach
    assert worker["name"] == "crowd:dr.smith" and worker["id"] != smith
    study.join("s", token, "dr.jones", HOME)
    study.add_annotator("Dr.Jones", "s", code="code-jones")  # after the worker: still free
    assert sorted(names(study)) == ["Dr.Jones", "Dr.Smith", "crowd:dr.jones", "crowd:dr.smith"]
    assert study.authenticate("Dr.Jones", "code-jones")["name"] == "Dr.Jones"
    for name in ("crowd:x", "CROWD:dr.who", " crowd:y"):
        with pytest.raises(ValueError, match="annotator names starting with 'crowd:' are kept for crowd workers"):
            study.add_annotator(name, "s")
    # In the export, each answer names its annotator unambiguously.
    for name in ("Dr.Smith", "crowd:dr.smith"):
        a = next(x["id"] for x in study.annotators() if x["name"] == name)
        pos = study.next_unanswered(a)
        study.submit(a, study.annotator_item(a, pos)["item_id"], "yes")
    assert sorted(study.ratings_frame("s")["annotator"]) == ["Dr.Smith", "crowd:dr.smith"]


def test_migration_0007_renames_earlier_workers_and_binds_them_on_their_next_visit(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db, study_id = database_before(path, "0007_crowd_workers")
    db.execute("INSERT INTO study_settings (study_id, overlap, join_token_hash, join_open) VALUES (?, 2, ?, 1)",
               (study_id, crowd.hash_token("tok")))
    for name, joined in (("w1", 1), ("x", 1), ("crowd:x", 1), ("Dr.Smith", 0)):
        db["annotators"].insert({"study_id": study_id, "name": name, "created_at": now_iso(), "joined": joined})
    db.conn.commit()
    db.close()
    with Store(path) as store:
        assert sorted(names(store)) == ["Dr.Smith", "crowd:crowd:x", "crowd:w1", "crowd:x"]
        assert store.study_settings("old")["joins_per_address"] == 3
        worker = store.join("old", "tok", "w1", HOME)  # joined before resume codes: this browser gets one
        assert worker["name"] == "crowd:w1" and worker["resume_code"]
        with pytest.raises(crowd.ResumeNeeded):
            store.join("old", "tok", "w1", OTHER)
        assert store.conn.execute("SELECT COUNT(*) FROM crowd_joins").fetchone()[0] == 0  # not a new join
