"""Issue 10 in the app (AppTest): revoked sessions, hostile resume tokens, ids kept out of the page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from annotate.app.session import RESUME_PARAM
from annotate.core.store import Store
from tests.annotate import test_app as base
from tests.annotate.test_app import CODES, answer, app, on_sign_in_page, reload, remembered, signed_in, walk
from tests.annotate.test_assignment import database_before
from tests.helpers import nle

app_env, study, admin = base.app_env, base.study, base.admin  # the same fixtures as the app's own tests


def sign_out(at: AppTest) -> AppTest:
    return next(b for b in at.sidebar.button if b.label == "Sign out").click().run()


# -- sessions ---------------------------------------------------------------------------------------------------


def test_sign_out_revokes_the_resume_token_on_the_server(study, store: Store) -> None:
    """Sign out, then a reload with the old cookie (had the browser kept it), a fresh browser holding a copy, or a
    `/?resume=` link with it: signed out every way."""
    at = signed_in("anna")
    token = remembered(at)
    assert not on_sign_in_page(reload(cookie=token))  # the cookie works while signed in (a reload continues)
    assert not on_sign_in_page(reload(token))
    sign_out(at)
    assert on_sign_in_page(reload(cookie=token))
    assert on_sign_in_page(reload(token))


# Another server process: signs anna in through the real page (AppTest) and prints the resume token it issued.
SIGN_IN_ELSEWHERE = """
from tests.annotate.test_app import remembered, signed_in
print(remembered(signed_in("anna")))
"""


def test_a_reload_that_reaches_another_server_process_on_the_same_database_continues(study, store: Store) -> None:
    """Several `serve` processes on one database behind a proxy (docs/deploying.md): the token one process issued
    resumes the session in another, as a cookie and as a `?resume=` link; signing out still ends it."""
    other = subprocess.run([sys.executable, "-c", SIGN_IN_ELSEWHERE], cwd=base.ROOT, capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 0, other.stderr[-2000:]
    token = other.stdout.split()[-1]
    for again in (reload(cookie=token), reload(token)):
        assert not again.exception, again.exception
        assert not on_sign_in_page(again)
        assert "Signed in as anna" in [t.value for t in again.sidebar.text]
    store.end_sessions(store.authenticate("anna", CODES["anna"])["id"])
    assert on_sign_in_page(reload(cookie=token))


def test_the_resume_key_is_made_once_per_database_and_read_by_every_process(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as first, Store(path) as second:
        key = first.resume_key()
        assert len(key) == 32 and second.resume_key() == key
    with Store(path) as reopened, Store(tmp_path / "b.db") as elsewhere:
        assert reopened.resume_key() == key and elsewhere.resume_key() != key
    read = f"from annotate.core.store import Store; print(Store({str(path)!r}).resume_key().hex())"
    assert subprocess.run([sys.executable, "-c", read], cwd=base.ROOT, capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip() == key.hex()
    # A database from before the key existed gets one when it is first opened, and keeps it.
    older = tmp_path / "old.db"
    database_before(older, "0008_resume_key")[0].conn.commit()
    with Store(older) as one, Store(older) as two:
        assert len(one.resume_key()) == 32 and two.resume_key() == one.resume_key() != key


def test_sign_out_in_one_tab_ends_the_other_tabs_session(study, store: Store) -> None:
    first, second = signed_in("anna"), signed_in("anna")
    sign_out(first)
    second.run()
    assert on_sign_in_page(second)
    assert not any(b.label == "Sign out" for b in second.sidebar.button)


def test_a_code_reset_ends_a_session_that_is_already_open(study, store: Store) -> None:
    at = signed_in("anna")
    store.reset_code("anna")
    assert on_sign_in_page(at.run())


def test_a_huge_or_malformed_resume_token_shows_the_sign_in_page_not_an_error(study) -> None:
    for token in ("99999999999999999999.1.x", "1.99999999999999999999999.x", "-99999999999999999999.1.x",
                  "1." + "9" * 5000 + ".x", "1.2.3.4", "\x00", "9" * 20 + "." + "9" * 20 + "." + "a" * 40,
                  "\u0661.2." + "a" * 40):
        for at in (reload(token), reload(cookie=token)):
            assert not at.exception, (token[:40], at.exception)
            assert on_sign_in_page(at)
            assert RESUME_PARAM not in at.query_params


# -- blindness --------------------------------------------------------------------------------------------------


def test_no_widget_key_or_element_carries_a_database_id(app_env: Path, store: Store, write_jsonl) -> None:
    """Item ids follow the file (configurations alternate, gold last); none may reach the page. Ids are made
    distinct from every queue position by importing another study first."""
    store.import_nles(write_jsonl([nle("sbic", f"pad-{i}") for i in range(50)], "pad.jsonl"), "pad")
    lines = [nle("esnli", f"s{i}", cfg) for i in range(3) for cfg in ("full_ft", "att_q")]
    store.import_nles(write_jsonl(lines), "s", with_gold=True)
    store.add_annotator("anna", "s", code=CODES["anna"])
    aid = store.annotators("s")[0]["id"]
    ids = set(store.items_frame("s")["item_id"])  # every item anna can be given
    assert store.queue_length(aid) == len(ids) and min(ids) > len(ids)
    at = signed_in("anna")
    for rating in ("yes", "no", "weak_yes"):
        keys = [str(el.proto.id) for el in walk(at) if getattr(getattr(el, "proto", None), "id", "")]
        assert any("_a_answer_" in k for k in keys)
        numbers = {int(n) for k in keys for n in re.findall(r"\d+", k.rsplit("-", 1)[-1])}
        assert not numbers & ids, f"item ids {numbers & ids} in widget keys {keys}"
        at = answer(at, rating)


# -- what `serve` passes to Streamlit ---------------------------------------------------------------------------


def test_serve_hides_error_details_queues_reruns_and_caps_uploads(monkeypatch, tmp_path: Path) -> None:
    from streamlit.web import cli as stcli

    from annotate import cli

    seen: list[list[str]] = []
    monkeypatch.setattr(stcli, "main", lambda: seen.append(list(cli.sys.argv)) or 0)
    monkeypatch.setattr(cli.sys, "argv", ["nle-annotate"])
    monkeypatch.delenv("NLE_DEMO", raising=False)
    assert cli.main(["serve", "--db", str(tmp_path / "a.db"), "--server.port", "8999"]) == 0
    argv = seen[0]
    options = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert options["--client.showErrorDetails"] == "none"
    assert options["--runner.fastReruns"] == "false"
    assert options["--server.maxUploadSize"] == "25"
    assert options["--runner.postScriptGC"] == "false"  # a full collection after every run held the GIL 200+ ms
    assert options["--server.fileWatcherType"] == "none"
    assert argv[-2:] == ["--server.port", "8999"]  # the user's own options come last and win


def test_the_researcher_page_names_the_upload_cap_and_the_cli_for_bigger_files(admin: AppTest) -> None:
    """The cap `serve` passes is the one the upload form states, and the command it points to parses."""
    from annotate import cli

    captions = [c.value for c in admin.caption]
    command = "nle-annotate import FILE --db DB"
    stated = [c for c in captions if f"Uploads up to {cli.MAX_UPLOAD_MB} MB" in c and f"`{command}`" in c]
    assert len(stated) == 1, captions
    args = cli.build_parser().parse_args(command.split()[1:])
    assert (args.command, args.db) == ("import", "DB")


def test_serve_freezes_the_app_modules_out_of_full_collections(monkeypatch, tmp_path: Path) -> None:
    import gc
    import sys

    from streamlit.web import cli as stcli

    from annotate import cli

    seen: list[tuple[int, bool]] = []
    monkeypatch.setattr(stcli, "main", lambda: seen.append((gc.get_freeze_count(), "analysis.report" in sys.modules)))
    monkeypatch.setattr(cli.sys, "argv", ["nle-annotate"])
    monkeypatch.delenv("NLE_DEMO", raising=False)
    gc.unfreeze()
    try:
        cli.main(["serve", "--db", str(tmp_path / "a.db")])
    finally:
        gc.unfreeze()
    (frozen, imported), = seen
    assert imported and frozen > 100_000  # the pages' modules were loaded, then frozen, before the server started


def test_sign_in_fields_cap_their_length(app_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "pw-123")
    at = app().run()
    for key in ("sign_in_name", "sign_in_code", "admin_password"):
        assert 0 < at.text_input(key=key).proto.max_chars <= 256, key


# -- resource abuse ---------------------------------------------------------------------------------------------


def test_a_flood_of_submits_is_told_to_slow_down_and_loses_nothing(study, store: Store, monkeypatch) -> None:
    from annotate.app import queue
    from annotate.core import limits

    monkeypatch.setattr(limits, "SUBMIT_BURST", 2)
    monkeypatch.setattr(limits, "SUBMIT_WINDOW_S", 600.0)
    at = signed_in("anna")
    at = answer(at, "yes")
    at = answer(at, "weak_yes")
    at = answer(at, "yes", comment="kept")
    assert [e.value for e in at.error] == [queue.SLOW_DOWN]
    assert store.answered_count(study["anna"]) == 2
    assert at.radio[0].value == "yes" and at.text_area[0].value == "kept"  # the answer is still on screen
    monkeypatch.setattr(limits, "SUBMIT_WINDOW_S", 0.0)
    at = next(b for b in at.button if b.label == "Submit").click().run()
    assert not at.error and store.answered_count(study["anna"]) == 3
    saved = store.ratings_frame("s")
    assert sorted(saved["rating"]) == ["weak_yes", "yes", "yes"] and "kept" in set(saved["comment"])


def test_comment_limit_is_the_same_in_the_box_the_store_and_the_csv(study, store: Store, tmp_path: Path) -> None:
    from annotate.core.errors import InputFileError
    from annotate.core.formats import MAX_COMMENT_CHARS

    at = signed_in("anna")
    assert at.text_area[0].proto.max_chars == MAX_COMMENT_CHARS
    item = store.annotator_item(study["anna"], 0)["item_id"]
    before = store.counts()
    with pytest.raises(ValueError, match="comment is longer than 10,000 characters"):
        store.submit(study["anna"], item, "yes", comment="x" * (MAX_COMMENT_CHARS + 1))
    assert store.counts() == before
    store.submit(study["anna"], item, "yes", comment="x" * MAX_COMMENT_CHARS)
    data = store.export_bytes("s", "csv")
    with Store(tmp_path / "other.db") as other:  # the longest comment allowed exports and imports back
        assert other.import_ratings("export.csv", "s", data=data).ratings_added == 1
        too_long = data.replace(b"x" * MAX_COMMENT_CHARS, b"x" * (MAX_COMMENT_CHARS + 1))
        with pytest.raises(InputFileError, match=r"export2\.csv, line 2, field 'comment': longer than 10,000"):
            other.import_ratings("export2.csv", "s", data=too_long)


# -- rendering --------------------------------------------------------------------------------------------------

HOSTILE_NAME = "![n](http://host/x.png)\u202eevil"


def test_hostile_names_and_texts_are_drawn_literally(app_env: Path, store: Store, write_jsonl) -> None:
    long = "x" * 200_000
    lines = [nle("esnli", "s1", explanation=long),
             nle("mystery", "s2", input={"see [link](http://host/) www.host.com": "abc \u202e fdp"})]
    store.import_nles(write_jsonl(lines), "s")
    store.add_annotator(HOSTILE_NAME, "s", code="code-h-1")
    at = app().run()
    at.text_input(key="sign_in_name").input(HOSTILE_NAME)
    at.text_input(key="sign_in_code").input("code-h-1")
    at = at.button(key="sign_in").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.sidebar.text] == ["Signed in as ![n](http://host/x.png)⟦U+202E⟧evil"]
    assert not [m for m in at.sidebar.markdown if "host" in m.value]
    drawn = []
    for _ in range(2):
        drawn += [t.value for t in at.text]
        at.radio[0].set_value("yes")
        at = next(b for b in at.button if b.label == "Submit").click().run()
    texts = "\n".join(drawn)
    assert "\u202e" not in texts and "abc ⟦U+202E⟧ fdp" in texts
    explanation = next(t for t in drawn if t.startswith("xxx"))
    assert len(explanation) < 10_100 and explanation.endswith("[… 190,000 more characters not shown]")
    assert long in set(store.items_frame("s")["explanation"])  # the store keeps the full text
    for el in walk(at):  # the unknown field's name: escaped markdown, its bare URLs as code, so no link at all
        if el.type == "caption" and "host" in str(el.value):
            assert el.value == "see `[link](http://host/)` `www.host.com`"


def test_chart_labels_from_files_are_literal_in_the_app_and_the_report() -> None:
    import pandas as pd

    from analysis.report import analyse_export, figures, render_html

    link = '<a href="http://evil/">full_ft</a>'
    rows = [{"dataset": "esnli", "sample_id": f"s{i}", "config": cfg, "annotator": who, "rating": r,
             "tags": "hallucination" if r == "no" else "", "comment": "", "seconds": 1.0, "submitted_at": ""}
            for i in range(6) for cfg in (link, "att\u202eq") for who, r in (("a", "yes"), ("b", "no" if i % 2 else "yes"))]
    a = analyse_export(pd.DataFrame(rows), compare_configs=(link, "att\u202eq"))
    figs = figures(a)
    blob = "".join(f.to_json() for f in figs.values())
    assert "<a" not in blob and "\u202e" not in blob and "\\u202e" not in blob.lower()
    assert "&lt;a href=" in blob  # plotly.js draws the entity as "<": the label reads literally
    page = render_html(a, figs)
    assert '<a href="http://evil/">' not in page
