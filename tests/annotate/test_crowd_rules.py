"""Crowd studies that hold up, in the store: no hoarding with Skip, no renewal by coming back, no completion code for
nothing, attention checks spread through each worker's own queue, and nothing that singles out checks after a lapse.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from types import SimpleNamespace

import pytest
from scipy import stats

from annotate import cli
from annotate.core import assignment
from annotate.core.assignment import MAX_OPEN
from annotate.core.store import Store
from tests.helpers import nle

CODE = "C1A2B3"


class Clock:
    """The time assignment.py reads (reservations and their lapse), moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float = 1_000_000.0) -> None:
        self.now = start
        monkeypatch.setattr(assignment, "time", SimpleNamespace(time=lambda: self.now))

    def advance(self, seconds: float) -> None:
        self.now += seconds


def crowd_study(store: Store, write_jsonl, n_items: int, *, k: int = 2, checks: int = 0, name: str = "s",
                **settings) -> str:
    """A study of `n_items` regular items and `checks` attention checks with a completion code; joining open.
    Returns the join token. Every simulated worker joins from the same (test) address, so that limit is off."""
    lines = [nle("esnli", f"{name}-{i}") for i in range(n_items)]
    lines += [nle("esnli", f"{name}-check{i}", expected_rating="yes") for i in range(checks)]
    store.import_nles(write_jsonl(lines, f"{name}.jsonl"), name)
    max_joined = settings.pop("max_joined", None)
    store.configure_study(name, overlap=k, completion_code=CODE, **settings)
    return store.open_joining(name, max_joined=max_joined, joins_per_address=0)


def open_items(store: Store, annotator_id: int) -> list[int]:
    return [r[0] for r in store.conn.execute(
        "SELECT item_id FROM assignments WHERE annotator_id = ? AND answered_at IS NULL", (annotator_id,))]


def is_check(store: Store, item_id: int) -> bool:
    return store.conn.execute("SELECT expected_rating IS NOT NULL FROM items WHERE id = ?", (item_id,)).fetchone()[0]


def answer_all(store: Store, annotator_id: int) -> list[int]:
    """Answer like the app (next, submit) until nothing is left; returns the item ids answered."""
    done, pos = [], store.next_unanswered(annotator_id)
    while pos is not None:
        item_id = store.annotator_item(annotator_id, pos)["item_id"]
        store.submit(annotator_id, item_id, "yes")
        done.append(item_id)
        pos = store.next_unanswered(annotator_id, after=pos)
    return done


# -- hoarding ---------------------------------------------------------------------------------------------------


def test_pressing_skip_never_holds_more_than_a_few_items_and_the_next_worker_gets_the_rest(store, write_jsonl):
    token = crowd_study(store, write_jsonl, 8, k=1)
    hoarder = store.join("s", token, "hoarder")["id"]
    pos = store.next_unanswered(hoarder)
    for _ in range(20):  # Skip, as the page does it: the next unanswered item after the one on screen
        pos = store.next_unanswered(hoarder, after=pos)
    assert len(open_items(store, hoarder)) == MAX_OPEN
    honest = store.join("s", token, "honest")["id"]
    assert len(answer_all(store, honest)) == 8 - MAX_OPEN
    assert store.completion(honest) == {"completion_code": CODE, "redirect_url": None}
    assert store.completion(hoarder) is None  # holds items, answered none


def test_coming_back_to_an_item_does_not_renew_its_reservation(store, write_jsonl, monkeypatch) -> None:
    clock = Clock(monkeypatch)
    token = crowd_study(store, write_jsonl, 1, k=1, lapse_seconds=60)
    first = store.join("s", token, "first")["id"]
    assert store.next_unanswered(first) is not None
    for _ in range(5):  # reloads and visits within the lapse
        clock.advance(10)
        assert store.next_unanswered(first) is not None
    clock.advance(15)  # 65 s after the item was given
    second = store.join("s", token, "second")["id"]
    assert store.next_unanswered(second) is not None, "the reservation was renewed by visits"
    assert open_items(store, first) == []


def test_a_worker_who_never_answers_gets_no_more_than_the_skip_budget(store, write_jsonl, monkeypatch) -> None:
    clock = Clock(monkeypatch)
    token = crowd_study(store, write_jsonl, 20, k=1, lapse_seconds=60)
    hoarder, honest = (store.join("s", token, name)["id"] for name in ("hoarder", "honest"))
    given: set[int] = set()
    honest_pos = store.next_unanswered(honest)
    for _ in range(4):
        pos = store.next_unanswered(hoarder)  # a reload
        for _ in range(5):  # Skip
            if pos is not None:
                given.add(pos)
                pos = store.next_unanswered(hoarder, after=pos)
        clock.advance(61)
        held = set(open_items(store, hoarder))
        while held and held & set(open_items(store, hoarder)):  # the honest worker works on and takes one over
            store.submit(honest, store.annotator_item(honest, honest_pos)["item_id"], "yes")
            honest_pos = store.next_unanswered(honest, after=honest_pos)
    assert len(given) == assignment.SKIP_BUDGET  # items given, each for at most one lapse
    assert store.next_unanswered(hoarder) is None and store.queue_length(hoarder) == 0
    assert store.completion(hoarder) is None


# -- the completion code ----------------------------------------------------------------------------------------


def test_a_worker_the_study_had_nothing_left_for_gets_no_code_unless_the_researcher_chose_so(store, write_jsonl):
    token = crowd_study(store, write_jsonl, 3, k=1)
    early = store.join("s", token, "early")["id"]
    answer_all(store, early)
    late = store.join("s", token, "late")["id"]
    assert store.next_unanswered(late) is None
    assert store.finish(late) == {"answered": 0, "code_min_answers": 1, "has_code": True,
                                  "completion_code": None, "redirect_url": None}
    assert store.completion(late) is None
    assert store.completion(early)["completion_code"] == CODE
    store.configure_study("s", code_min_answers=0)
    assert store.completion(late)["completion_code"] == CODE


def test_the_code_needs_the_minimum_of_answers_or_the_whole_quota(store, write_jsonl) -> None:
    token = crowd_study(store, write_jsonl, 4, k=1, code_min_answers=3)
    first = store.join("s", token, "first")["id"]
    assert len(answer_all(store, first)) == 4 and store.completion(first)["completion_code"] == CODE
    token = crowd_study(store, write_jsonl, 4, k=1, code_min_answers=3, max_per_annotator=2, name="t")
    a, b, c = (store.join("t", token, f"t-{n}")["id"] for n in ("a", "b", "c"))
    assert [len(answer_all(store, w)) for w in (a, b)] == [2, 2]  # their quota: the code, though 2 < 3
    assert store.completion(a)["completion_code"] == CODE
    assert answer_all(store, c) == [] and store.completion(c) is None


@pytest.mark.parametrize("value", [-1, "two", 1.5, 10**30])
def test_a_bad_code_minimum_is_refused_and_changes_nothing(store, write_jsonl, value) -> None:
    crowd_study(store, write_jsonl, 2)
    with pytest.raises(ValueError, match="code_min_answers must be a whole number from 0 to 1,000,000"):
        store.configure_study("s", code_min_answers=value)
    assert store.study_settings("s")["code_min_answers"] == 1


def test_the_code_minimum_from_the_cli(store, write_jsonl, capsys) -> None:
    crowd_study(store, write_jsonl, 2)
    assert cli.main(["study", "set", "--db", store.path, "s", "--code-min-answers", "0"]) == 0
    assert "answers that earn the completion code: at least 0" in capsys.readouterr().out
    assert store.study_settings("s")["code_min_answers"] == 0


# -- attention checks -------------------------------------------------------------------------------------------


def test_checks_are_spread_uniformly_through_each_workers_own_queue() -> None:
    """The issue's set-up, many times over: 60 regular items, 3 checks, k = 2, 8 workers answering in turns.
    Each check's place in its worker's queue must look uniform over that queue."""
    places, relative, lengths = [], [], Counter()
    jitter = random.Random(1)
    with Store() as store:
        for study in range(24):
            name = f"s{study}"
            lines = [nle("esnli", f"{name}-{i}") for i in range(60)]
            lines += [nle("esnli", f"{name}-check{i}", expected_rating="yes") for i in range(3)]
            store.import_nles("items.jsonl", name, data="\n".join(json.dumps(x) for x in lines).encode())
            token = store.open_joining(name, max_joined=8, joins_per_address=0)
            workers = [store.join(name, token, f"{name}-w{i}")["id"] for i in range(8)]
            queues: dict[int, list[int]] = {w: [] for w in workers}
            positions = {w: store.next_unanswered(w) for w in workers}
            while any(p is not None for p in positions.values()):
                for w in workers:  # in turns
                    if positions[w] is None:
                        continue
                    item_id = store.annotator_item(w, positions[w])["item_id"]
                    store.submit(w, item_id, "yes")
                    queues[w].append(item_id)
                    positions[w] = store.next_unanswered(w, after=positions[w])
            for queue in queues.values():
                for place, item_id in enumerate(queue):
                    if is_check(store, item_id):
                        places.append(place)
                        relative.append((place + jitter.random()) / len(queue))
            lengths.update(len(q) for q in queues.values())
    assert len(places) == 24 * 8 * 3
    ks = stats.kstest(relative, "uniform")
    sixths = Counter(int(r * 6) for r in relative)
    chi = stats.chisquare([sixths[b] for b in range(6)])
    message = (f"{len(places)} checks, queue lengths {dict(lengths)}: KS D = {ks.statistic:.3f}, p = {ks.pvalue:.3g};"
               f" chi-square over sixths of the queue = {chi.statistic:.1f}, p = {chi.pvalue:.3g}"
               f" ({[sixths[b] for b in range(6)]}); places {sorted(Counter(places).items())}")
    print(message)
    assert ks.pvalue > 0.01 and chi.pvalue > 0.01, message


def test_after_a_lapse_a_worker_keeps_no_check_that_regular_items_lost(store, write_jsonl, monkeypatch) -> None:
    """One attacker, two ids: the first holds a regular item and a check and lets them lapse, the second takes the
    regular item over. The first must not be left holding the check, and their queue numbers close up."""
    clock = Clock(monkeypatch)
    token = crowd_study(store, write_jsonl, 8, k=1, checks=1, lapse_seconds=60)
    draws = iter([3])  # the first id's check comes 4th in their queue
    fallback = random.Random(0)
    monkeypatch.setattr(assignment, "_SLOT_RNG", SimpleNamespace(randrange=lambda n: next(draws, None)
                                                                  or fallback.randrange(n)))
    first = store.join("s", token, "first")["id"]
    pos = store.next_unanswered(first)
    for _ in range(2):
        store.submit(first, store.annotator_item(first, pos)["item_id"], "yes")
        pos = store.next_unanswered(first, after=pos)
    regular = store.annotator_item(first, pos)["item_id"]
    pos = store.next_unanswered(first, after=pos)  # Skip: the check comes next
    assert is_check(store, store.annotator_item(first, pos)["item_id"]) and not is_check(store, regular)
    clock.advance(61)
    second = store.join("s", token, "second")["id"]
    taken = answer_all(store, second)
    assert regular in taken
    assert open_items(store, first) == [], "the lapsed check stayed with its holder while the regular item went"
    pos = store.next_unanswered(first)  # back: what they get next is numbered right after what they answered
    assert pos is not None and store.queue_number(first, pos) == 3
    assert [store.queue_number(first, p) for p, in store.conn.execute(
        "SELECT position FROM assignments WHERE annotator_id = ? ORDER BY position", (first,))] == [1, 2, 3]


# -- a crowd at once --------------------------------------------------------------------------------------------


def test_fifty_workers_ten_of_them_hoarding_every_item_gets_k_honest_ratings_and_nothing_earns_no_code(
        store, write_jsonl, monkeypatch) -> None:
    """A k = 2 study of 60 items and 2 checks with 50 places: 40 honest workers arrive over an hour and answer an
    item every 30 s until the study has nothing left for them; 10 hoarders press Skip every 15 s, never answer and
    never leave. An honest worker who finds nothing left returns the study, and the platform gives the place to a
    new worker 1 to 10 minutes later. Every item must reach k = 2 ratings, all from honest workers, and nobody who
    answered nothing is shown a code."""
    clock = Clock(monkeypatch)
    token = crowd_study(store, write_jsonl, 60, k=2, checks=2, lapse_seconds=300)
    rng = random.Random(7)
    start = clock.now
    events = [(start + rng.uniform(0, 3600), f"honest-{i}") for i in range(40)]
    events += [(start + rng.uniform(0, 600), f"hoarder-{i}") for i in range(10)]
    heapq.heapify(events)
    ids: dict[str, int] = {}
    pos: dict[str, int | None] = {}
    codes: dict[str, str | None] = {}
    newcomers = 0
    complete = "SELECT COUNT(*) FROM items WHERE expected_rating IS NULL AND rating_count < 2"
    while store.conn.execute(complete).fetchone()[0] and clock.now - start < 12 * 3600:
        clock.now, name = heapq.heappop(events)
        hoarder = name.startswith("hoarder")
        if name not in ids:
            ids[name] = store.join("s", token, name)["id"]
            pos[name] = store.next_unanswered(ids[name])
        elif hoarder:  # Skip, or a reload once nothing is held
            pos[name] = store.next_unanswered(ids[name], after=-1 if pos[name] is None else pos[name])
        else:
            item_id = store.annotator_item(ids[name], pos[name])["item_id"]
            store.submit(ids[name], item_id, "yes")
            pos[name] = store.next_unanswered(ids[name], after=pos[name])
        if pos[name] is None and not hoarder:
            done = store.completion(ids[name])
            codes[name] = done and done["completion_code"]
            if codes[name] is None:  # returned: the place goes to someone new
                newcomers += 1
                heapq.heappush(events, (clock.now + rng.uniform(60, 600), f"newcomer-{newcomers}"))
            continue
        heapq.heappush(events, (clock.now + (15 if hoarder else 30), name))
    counts = dict(store.conn.execute(
        "SELECT i.sample_id, COUNT(r.id) FROM items i LEFT JOIN ratings r ON r.item_id = i.id"
        " WHERE i.expected_rating IS NULL GROUP BY i.id"))
    raters = {r[0] for r in store.conn.execute(
        "SELECT DISTINCT a.name FROM ratings r JOIN annotators a ON a.id = r.annotator_id")}
    answered = {name: store.answered_count(ids[name]) for name in ids}
    hoarders = [n for n in ids if n.startswith("hoarder")]
    assert set(counts.values()) == {2}, f"items short of k: {sorted(n for n, c in counts.items() if c < 2)}"
    assert raters and not raters & set(hoarders)
    assert all(store.completion(ids[n]) is None for n in hoarders)
    given_for_nothing = [n for n, code in codes.items() if code and answered[n] == 0]
    assert given_for_nothing == [], f"completion code shown to workers who answered nothing: {given_for_nothing}"
    assert all(code == CODE for n, code in codes.items() if answered[n] > 0)
    print(f"complete after {(clock.now - start) / 60:.0f} min; {len(ids) - 10} honest workers, "
          f"{sum(1 for c in codes.values() if c)} with a code, {sum(1 for c in codes.values() if c is None)} returned;"
          f" answers per honest worker {sorted(v for n, v in answered.items() if n not in hoarders)}")
