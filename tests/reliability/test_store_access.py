"""Access control at the store: hashed codes only, rate-limited sign-in, each annotator confined to their queue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import annotate.core.auth as auth_module
from annotate.core.errors import AccessDenied, TooManyAttempts
from annotate.core.store import Store
from tests.helpers import next_item

from .helpers import write_nles

CODES = {"alice": "tulip-9182-zebra", "bob": "tulip-9182-zebra", "carol": "quartz-5531-heron"}


@pytest.fixture
def two_studies(tmp_path: Path) -> Store:
    """Study 'one' (alice, bob: same code on purpose) and study 'two' (carol), 6 items each."""
    s = Store(tmp_path / "annotations.db")
    s.import_nles(write_nles(tmp_path / "one.jsonl", 6), study="one")
    s.import_nles(write_nles(tmp_path / "two.jsonl", 6), study="two")
    for name, study in (("alice", "one"), ("bob", "one"), ("carol", "two")):
        s.add_annotator(name, study, code=CODES[name])
    yield s
    s.close()


def test_codes_are_stored_only_as_salted_scrypt_hashes(two_studies: Store) -> None:
    two_studies.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(two_studies.path)
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    for code in CODES.values():
        assert code.encode() not in raw
        assert code.encode("utf-16-le") not in raw
    hashes = dict(two_studies.conn.execute("SELECT name, code_hash FROM annotators"))
    for h in hashes.values():
        assert re.fullmatch(r"scrypt\$16384\$8\$1\$[0-9a-f]{32}\$[0-9a-f]{64}", h), h
    assert hashes["alice"] != hashes["bob"], "the same code must hash differently (salt)"
    assert not any("code" in k or "hash" in k for r in two_studies.annotators() for k in r)


@pytest.mark.parametrize("name, code", [("alice", "wrong-code"), ("nobody", CODES["alice"]), ("alice", "")])
def test_wrong_name_or_code_is_a_plain_not_recognised(two_studies: Store, name: str, code: str) -> None:
    with pytest.raises(AccessDenied, match=r"^Name or access code not recognised\.$"):
        two_studies.authenticate(name, code)


def test_five_failures_in_a_minute_delay_even_the_right_code(two_studies: Store, monkeypatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(auth_module.time, "time", lambda: clock[0])
    for _ in range(5):
        with pytest.raises(AccessDenied):
            two_studies.authenticate("alice", "guess")
        clock[0] += 5
    with pytest.raises(TooManyAttempts) as exc:
        two_studies.authenticate("alice", CODES["alice"])
    assert 1 <= exc.value.wait_seconds <= 60
    assert two_studies.authenticate("bob", CODES["bob"])["name"] == "bob"  # other names are not locked out
    clock[0] += 60  # the first failure leaves the one-minute window
    assert two_studies.authenticate("Alice ", CODES["alice"])["name"] == "alice"


def test_an_annotator_cannot_change_or_read_anothers_answers(two_studies: Store) -> None:
    ids = {r["name"]: r["id"] for r in two_studies.annotators()}
    carol_item = next_item(two_studies, ids["carol"])["item_id"]
    before = two_studies.counts()
    with pytest.raises(AccessDenied):
        two_studies.submit(ids["alice"], carol_item, "yes")  # an item id from another study's queue
    with pytest.raises(AccessDenied):
        two_studies.submit(ids["alice"], 10_000, "yes")
    assert two_studies.counts() == before

    # alice and bob share every item (k = 2); each sees only their own answer to it.
    item = next_item(two_studies, ids["bob"])["item_id"]
    two_studies.submit(ids["bob"], item, "no", ["nonsensical"], comment="bob's private note")
    seen = next_item(two_studies, ids["alice"])  # the item bob rated comes first
    assert seen["item_id"] == item
    assert seen["answer"] is None and "bob's private note" not in repr(seen)
    assert set(seen) == {"item_id", "position", "dataset", "input", "predicted_label", "explanation", "answer"}
    assert two_studies.history(ids["alice"], item) == []
    two_studies.submit(ids["alice"], item, "yes")
    assert two_studies.annotator_item(ids["bob"], 0)["answer"]["rating"] == "no"
    assert two_studies.annotator_item(ids["alice"], 99) is None
