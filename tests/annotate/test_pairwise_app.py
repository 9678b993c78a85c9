"""The pairwise annotate page through Streamlit's AppTest: keys 1 / 2 / 3, tie, tags per side, sides random per
annotator but stable, nothing that reveals a configuration or the side mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from annotate.core import limits
from annotate.core.store import Store
from tests.helpers import nle, walk_queue

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
A, B = "full_ft_secret_A", "sparse_secret_B"
CODES = {"anna": "code-anna-1", "ben": "code-ben-2"}
N_PAIRS = 12


@pytest.fixture
def pair_study(monkeypatch: pytest.MonkeyPatch, db_path: Path, store: Store, write_jsonl) -> dict[str, int]:
    """Twelve e-SNLI pairs of A against B (explanations "reason N, first/second writer"), annotators anna, ben."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.delenv("NLE_DEMO", raising=False)
    monkeypatch.delenv("NLE_ADMIN_PASSWORD", raising=False)
    lines = [nle("esnli", f"s{i}", cfg, model="secret-model-7b", explanation=f"reason {i}, {who} writer")
             for i in range(N_PAIRS) for cfg, who in ((A, "first"), (B, "second"))]
    store.import_pairwise(write_jsonl(lines), A, B, "pw")
    for name, code in CODES.items():
        store.add_annotator(name, "pw", code=code)
    return {a["name"]: a["id"] for a in store.annotators("pw")}


def signed_in(name: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_code").input(CODES[name])
    at = at.button(key="sign_in").click().run()
    assert not at.exception, at.exception
    return at


def walk(at: AppTest):
    def rec(node):
        children = getattr(node, "children", None)
        if children is None:
            yield node
            return
        if node is not at._tree and node.type not in ("main", "sidebar", "event"):
            yield node
        for child in children.values():
            yield from rec(child)
    yield from rec(at._tree)


def shown(at: AppTest) -> tuple[str, str]:
    """The texts under the captions "Explanation 1" and "Explanation 2"."""
    elements = list(walk(at))
    out = {}
    for i, el in enumerate(elements):
        if el.type == "caption" and el.value in ("Explanation 1", "Explanation 2"):
            out[el.value] = elements[i + 1].value
    return out["Explanation 1"], out["Explanation 2"]


def page_text(at: AppTest) -> str:
    return "\n".join(str(el.proto) for el in walk(at) if getattr(el, "proto", None) is not None)


def choose(at: AppTest, choice: str) -> AppTest:
    """Pick 1, 2 or tie in the pair's form (in a browser: keys 1, 2, 3; tests/e2e); no run yet."""
    next(r for r in at.radio if r.key.startswith("_p_choice_")).set_value(choice)
    return at


def submit(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Submit").click().run()


def saved(store: Store, aid: int) -> dict[str, dict]:
    df = store.preferences_frame("pw")
    return {r.sample_id: r._asdict() for r in df[df["annotator"] == store.annotator_by_id(aid)["name"]].itertuples()}


def sample_on_screen(at: AppTest) -> str:
    first, _ = shown(at)
    return "s" + first.split(",")[0].removeprefix("reason ")


@pytest.mark.parametrize("choice", ["1", "2", "tie"])
def test_the_choice_is_saved_by_configuration(pair_study: dict[str, int], store: Store, choice: str) -> None:
    at = signed_in("anna")
    first, _ = shown(at)
    sample = sample_on_screen(at)
    at = submit(choose(at, choice))
    assert not at.exception and not at.error
    row = saved(store, pair_study["anna"])[sample]
    a_first = "first writer" in first
    expected = {"1": "a" if a_first else "b", "2": "b" if a_first else "a", "tie": "tie"}[choice]
    assert row["preference"] == expected
    assert row["a_first"] == int(a_first)
    assert at.get("progress")[0].proto.text == f"1 of {N_PAIRS}"


def test_submit_without_a_choice_asks_for_one_and_saves_nothing(pair_study: dict[str, int], store: Store) -> None:
    at = submit(signed_in("anna"))
    assert [e.value for e in at.error] == ["Choose Explanation 1, Explanation 2 or Tie (keys 1, 2, 3) before "
                                           "submitting."]
    assert store.preferences_frame("pw").empty


def test_tags_are_kept_per_side_and_mapped_to_configurations(pair_study: dict[str, int], store: Store) -> None:
    at = signed_in("anna")
    first, _ = shown(at)
    sample = sample_on_screen(at)
    at.checkbox(key="_p_tag_0_1_0").check()   # first tag on Explanation 1
    at.checkbox(key="_p_tag_0_2_5").check()   # sixth tag on Explanation 2
    at.text_area(key="_p_comment_0").input("both so-so")
    at = choose(at, "tie")
    at = submit(at)
    tags = store.get_study("pw")["tags"]
    row = saved(store, pair_study["anna"])[sample]
    on_a, on_b = (tags[0], tags[5]) if "first writer" in first else (tags[5], tags[0])
    assert (row["preference"], row["tags_a"], row["tags_b"], row["comment"]) == ("tie", on_a, on_b, "both so-so")

    # Back: the answer comes back on the same sides.
    at = next(b for b in at.button if b.label == "Back").click().run()
    assert at.checkbox(key="_p_tag_0_1_0").value and at.checkbox(key="_p_tag_0_2_5").value
    assert not at.checkbox(key="_p_tag_0_1_5").value
    assert at.radio(key="_p_choice_0").value == "tie"


def test_sides_are_random_per_annotator_but_stable(pair_study: dict[str, int], store: Store, monkeypatch) -> None:
    # AppTest answers twelve pairs faster than the submit limit lets a person (tests/annotate/test_limits.py).
    monkeypatch.setattr(limits, "SUBMIT_BURST", 1_000)
    sides: dict[str, dict[str, bool]] = {}
    for name in ("anna", "ben"):
        at = signed_in(name)
        sides[name] = {}
        for _ in range(N_PAIRS):
            first, second = shown(at)
            sample = sample_on_screen(at)
            assert {first, second} == {f"reason {sample[1:]}, first writer", f"reason {sample[1:]}, second writer"}
            sides[name][sample] = "first writer" in first
            at = submit(choose(at, "1"))
            assert not at.error
        # Stable: revisiting shows the same order, and the saved answers agree with what was shown.
        at = next(b for b in at.button if b.label.startswith("Revise from the first")).click().run()
        for _ in range(N_PAIRS):
            first, _ = shown(at)
            assert sides[name][sample_on_screen(at)] == ("first writer" in first)
            at = next(b for b in at.button if b.label == "Skip").click().run()
        rows = saved(store, pair_study[name])
        assert {s: r["preference"] == "a" for s, r in rows.items()} == sides[name]
    # Random: both orders occur for each annotator, and the two annotators' orders differ somewhere
    # (each fails with probability 2^-11 or 2^-12 under fair coin flips).
    for name in sides:
        assert set(sides[name].values()) == {True, False}
    assert sides["anna"] != sides["ben"]
    # A new session of the same annotator sees the stored order.
    at = signed_in("anna")
    at = next(b for b in at.button if b.label.startswith("Revise from the first")).click().run()
    first, _ = shown(at)
    assert sides["anna"][sample_on_screen(at)] == ("first writer" in first)


def test_page_reveals_no_configuration_model_or_side_mapping(pair_study: dict[str, int], store: Store) -> None:
    at = signed_in("anna")
    at = submit(choose(at, "2"))
    keys = [str(k) for k in (getattr(el, "key", None) for el in walk(at)) if k]
    text = page_text(at) + "\n".join(keys)
    for secret in (A, B, "secret-model-7b", "a_first", "shown_first", " vs "):
        assert secret not in text
    # Widget keys carry the queue position (the second pair is on screen), never the item's database id.
    pos_keys = {k for k in keys if k.startswith("_p_choice_")}
    assert pos_keys == {"_p_choice_1"}


def test_rate_sides_study_asks_for_both_ratings(pair_study: dict[str, int], store: Store) -> None:
    store.set_rate_sides("pw", True)
    at = signed_in("ben")
    first, _ = shown(at)
    sample = sample_on_screen(at)
    at = submit(choose(at, "1"))
    assert [e.value for e in at.error] == ["Rate each explanation (yes, weak yes, weak no or no) before submitting."]
    at.radio(key="_p_rating_0_1").set_value("yes")
    at.radio(key="_p_rating_0_2").set_value("weak_no")
    at = submit(at)  # the choice made before is still in the form
    assert not at.error
    row = saved(store, pair_study["ben"])[sample]
    a_first = "first writer" in first
    assert (row["rating_a"], row["rating_b"]) == (("yes", "weak_no") if a_first else ("weak_no", "yes"))


def test_side_by_side_page_shows_the_pairwise_figures(pair_study: dict[str, int], store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "pw-admin")
    # anna prefers A on every pair, ben calls every pair a tie.
    for name, pick in (("anna", "a"), ("ben", "tie")):
        aid = pair_study[name]
        for pos in walk_queue(store, aid):
            item = store.annotator_pair(aid, pos)
            a_first = store.conn.execute("SELECT a_first FROM pair_sides WHERE annotator_id = ? AND item_id = ?",
                                         (aid, item["item_id"])).fetchone()[0]
            choice = "tie" if pick == "tie" else ("1" if a_first else "2")
            store.submit_preference(aid, item["item_id"], choice, tags_2=["empty"] if pos == 0 else [])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="admin_password").input("pw-admin")
    at.button(key="admin_sign_in").click().run()
    at = at.switch_page("annotate/app/pages/side_by_side.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    # 12 answers for A and 12 ties: (12 + 6) / 24 = 0.75; every pair leans to A: sign test 12 of 12 = 2 / 4096.
    assert metrics["Pairs answered"] == str(N_PAIRS)
    assert metrics["Win rate of A"] == "0.750"
    assert metrics["Sign test p"] == f"{2 / 2**12:.3g}"
    texts = [t.value for t in at.text]
    assert f"{A} wins: {N_PAIRS}   ties: {N_PAIRS}   {B} wins: 0   (answers; pairs A / tie / B: {N_PAIRS} / 0 / 0)" \
        in texts
    assert any(t.startswith("anna: " + A) for t in texts) and any(t == "ben: tie" for t in texts)


def test_answer_keys_target_only_the_preference_radio(pair_study, store: Store) -> None:
    """The page's key script ticks the radio whose widget key starts with the preference prefix, and the
    preference radio is the only widget with that prefix (a side's rating radio must never get a key)."""
    from annotate.app import pair_queue

    store.set_rate_sides("pw", True)
    at = signed_in("anna")
    assert len(at.radio) == 3  # a rating radio per side, then the preference
    scripts = [el.proto.body for el in walk(at) if el.type == "html" and "__nleAnswerRadio" in el.proto.body]
    assert len(scripts) == 1 and f'window.__nleAnswerRadio = "{pair_queue.CHOICE_KEY_PREFIX}";' in scripts[0]
    keyed = [r.key for r in at.radio if r.key and r.key.startswith(pair_queue.CHOICE_KEY_PREFIX)]
    assert keyed == [pair_queue.choice_key(0)]


@pytest.mark.parametrize("prefix", ["", '_a"; alert(1); "', "x-y", "_a_answer_1 "])
def test_the_key_script_takes_only_a_widget_key_prefix(prefix: str) -> None:
    from annotate.app import render

    with pytest.raises(ValueError, match="not a widget key prefix"):
        render.keep_shortcuts_after_clicks(prefix)
