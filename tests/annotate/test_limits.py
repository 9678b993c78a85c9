"""One submit rate and one comment cap for both kinds of study (annotate/core/limits.py): the rating page, the
pairwise page, the store's submit methods and both CSV readers."""

from __future__ import annotations

import pytest

from annotate.core import limits
from annotate.core.errors import InputFileError
from annotate.core.store import Store
from tests.annotate import test_pairwise_app
from tests.annotate.test_pairwise_app import choose, signed_in, submit
from tests.helpers import dump

pair_study = test_pairwise_app.pair_study  # twelve pairs, annotators anna and ben


def test_allow_submit_keeps_a_burst_per_window() -> None:
    times: list[float] = []
    assert [limits.allow_submit(times, 100.0 + i * 0.1) for i in range(limits.SUBMIT_BURST + 2)] == (
        [True] * limits.SUBMIT_BURST + [False, False])
    assert len(times) == limits.SUBMIT_BURST  # refused submits are not counted
    assert limits.allow_submit(times, 100.0 + limits.SUBMIT_WINDOW_S)  # the first one has left the window


def test_the_pairwise_page_tells_a_flood_of_submits_to_slow_down(pair_study, store: Store, monkeypatch) -> None:
    """14 submits in 2.4 s were all saved on the pairwise page; now it keeps the rating page's limit."""
    monkeypatch.setattr(limits, "SUBMIT_BURST", 2)
    monkeypatch.setattr(limits, "SUBMIT_WINDOW_S", 600.0)
    at = signed_in("anna")
    at = submit(choose(at, "1"))
    at = submit(choose(at, "2"))
    assert not at.error
    at.text_area(key=next(t.key for t in at.text_area)).input("kept")
    at = submit(choose(at, "tie"))
    assert [e.value for e in at.error] == [limits.SLOW_DOWN]
    assert len(store.preferences_frame("pw")) == 2
    choice = next(r for r in at.radio if r.key.startswith("_p_choice_"))
    assert choice.value == "tie" and at.text_area[0].value == "kept"  # the answer is still on screen
    monkeypatch.setattr(limits, "SUBMIT_WINDOW_S", 0.0)
    at = submit(at)
    assert not at.error and len(store.preferences_frame("pw")) == 3
    assert "kept" in set(store.preferences_frame("pw")["comment"])


def test_the_pairwise_comment_is_capped_in_the_box_the_store_and_the_csv(pair_study, store: Store, tmp_path) -> None:
    """A 2,000,001-character comment was saved on a pairwise study; now the cap is the rating study's."""
    at = signed_in("anna")
    assert [t.proto.max_chars for t in at.text_area] == [limits.MAX_COMMENT_CHARS]
    aid = pair_study["anna"]
    item = store.annotator_pair(aid, store.next_unanswered(aid))["item_id"]
    before = dump(store.path)
    for length in (limits.MAX_COMMENT_CHARS + 1, 2_000_001):
        with pytest.raises(ValueError, match="comment is longer than 10,000 characters"):
            store.submit_preference(aid, item, "1", comment="x" * length)
    assert dump(store.path) == before
    store.submit_preference(aid, item, "1", comment="x" * limits.MAX_COMMENT_CHARS)
    data = store.export_bytes("pw", "csv")
    pair = ("full_ft_secret_A", "sparse_secret_B")
    with Store(tmp_path / "other.db") as other:  # the longest comment allowed exports and imports back
        assert other.import_preferences("export.csv", "pw", pairwise=pair, data=data).ratings_added == 1
    too_long = data.replace(b"x" * limits.MAX_COMMENT_CHARS, b"x" * (limits.MAX_COMMENT_CHARS + 1))
    with Store(tmp_path / "third.db") as third:
        with pytest.raises(InputFileError, match=r"export2\.csv, line 2, field 'comment': longer than 10,000"):
            third.import_preferences("export2.csv", "pw", pairwise=pair, data=too_long)
        assert third.studies() == []
