"""Round trip: ratings CSV → `nle-annotate import-ratings` → `nle-report` → the files agree with the functions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from analysis import cli as report_cli
from analysis.agreement import binary_kappa, cohen_kappa
from analysis.report import analyse_export, build_report, figures, outputs
from annotate import cli as annotate_cli
from annotate.core.scale import DEFAULT_TAGS
from annotate.core.store import Store
from tests.analysis.analysis_helpers import RATINGS, fill_store, write_ratings_csv
from tests.helpers import nle

TOP = {"study", "annotators", "n_items", "n_items_rated_by_all", "overall", "cells", "by_dataset", "by_config",
       "shortcomings", "comparison", "gold"}
GROUP = {"n", "mean_score", "cohen_kappa", "cohen_kappa_linear", "cohen_kappa_quadratic", "cohen_kappa_binary",
         "fleiss_kappa_free_binary", "n_items_fleiss", "percent_agreement", "disagreements"}
COMPARISON = {"a", "b", "test", "statistic", "n_a", "n_b", "n_pairs", "mean_a", "mean_b", "wins_a", "ties", "wins_b",
              "p_value", "paired"}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study imported with the nle-annotate CLI, then `nle-report` run as the installed console script
    (once for the module: the files are only read)."""
    tmp = tmp_path_factory.mktemp("round_trip")
    db_path = tmp / "annotations.db"
    nles = tmp / "nles.jsonl"
    nles.write_text("".join(json.dumps(nle(d, s, c)) + "\n" for d, s, c in RATINGS), encoding="utf-8")
    csv_path = write_ratings_csv(tmp / "ratings.csv")
    assert annotate_cli.main(["import", "--db", str(db_path), "--study", "pilot", str(nles)]) == 0
    assert annotate_cli.main(["import-ratings", "--db", str(db_path), "--study", "pilot", str(csv_path)]) == 0
    out = tmp / "report"
    exe = Path(sys.executable).with_name("nle-report")
    proc = subprocess.run([str(exe), "--db", str(db_path), "--out", str(out), "--seed", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "24 ratings of 12 items by 2 annotators" in proc.stdout
    return out


def test_agreement_json_contract_and_values(report_dir: Path) -> None:
    data = json.loads((report_dir / "agreement.json").read_text())
    assert set(data) == TOP
    assert set(data["overall"]) == GROUP
    assert all(set(c) == GROUP | {"dataset", "config"} for c in data["cells"])
    assert all(set(c) == GROUP | {"dataset"} for c in data["by_dataset"])
    assert all(set(c) == GROUP | {"config"} for c in data["by_config"])
    assert all(set(s) == {"dataset", "config", "tag", "count"} for s in data["shortcomings"])
    assert set(data["comparison"]) == COMPARISON
    assert data["study"] == "pilot" and data["annotators"] == ["alice", "bob"]
    assert (data["n_items"], data["n_items_rated_by_all"]) == (12, 12)

    # The same numbers from the functions, on the CSV read back with pandas.
    ratings = pd.read_csv(report_dir.parent / "ratings.csv", keep_default_na=False)
    expected = analyse_export(ratings, study="pilot", tags=list(DEFAULT_TAGS), seed=3).agreement_json()
    assert data == json.loads(json.dumps(expected))
    # And from first principles for the overall figures.
    wide = ratings.pivot(index=["dataset", "sample_id", "config"], columns="annotator", values="rating")
    assert data["overall"]["cohen_kappa"] == pytest.approx(cohen_kappa(wide["alice"], wide["bob"]).value)
    assert data["overall"]["cohen_kappa_quadratic"] == pytest.approx(
        cohen_kappa(wide["alice"], wide["bob"], "quadratic").value)
    assert data["overall"]["cohen_kappa_binary"] == pytest.approx(binary_kappa(wide["alice"], wide["bob"]).value)
    score = ratings["rating"].map({"yes": 1, "weak_yes": 2 / 3, "weak_no": 1 / 3, "no": 0})
    assert data["overall"]["mean_score"] == pytest.approx(score.mean())
    cell = next(c for c in data["cells"] if (c["dataset"], c["config"]) == ("esnli", "full_ft"))
    assert cell["cohen_kappa"] == pytest.approx(4 / 7) and cell["mean_score"] == pytest.approx(0.5)
    assert data["comparison"] == {**data["comparison"], "a": "full_ft", "b": "att_q+layer_norm", "n_pairs": 5,
                                  "wins_a": 3, "ties": 0, "wins_b": 2, "test": "mann-whitney", "n_a": 6, "n_b": 6,
                                  "statistic": 22.0, "paired": None}
    assert data["gold"] is None
    for block in [data["overall"], *data["cells"], *data["by_dataset"], *data["by_config"]]:
        assert 0 <= block["mean_score"] <= 1


def test_html_is_self_contained_and_holds_the_table(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="score-table"' in page and "50.0 (0.57)" in page  # esnli × full_ft: mean 0.5, κ 4/7
    assert not re.search(r"<script[^>]+src=[\"']?https?:", page), "external script in report.html"
    assert "<script src=" not in page
    assert page.count("Plotly.newPlot") >= 4 and len(page) > 1_000_000  # plotly.js inlined (~4.8 MB)
    assert "were rated on different samples" in page
    for kind in ("perception", "position", "expectation", "other"):
        assert f"<td>{kind}</td>" in page


def test_csv_outputs(report_dir: Path) -> None:
    scores = pd.read_csv(report_dir / "scores.csv")
    assert set(scores["level"]) == {"cell", "dataset", "config", "overall"} and len(scores) == 4 + 2 + 2 + 1
    assert {"cohen_kappa_low", "cohen_kappa_high", "cohen_kappa_reason", "mean_score_low", "fleiss_kappa_free_binary",
            "n_items_fleiss"} <= set(scores.columns)
    assert (scores["mean_score_low"] <= scores["mean_score"]).all()
    short = pd.read_csv(report_dir / "shortcomings.csv")
    # Tags given: alice 5 (nonsensical, hallucination, inaccurate, empty, one word), bob 6 (inaccurate,
    # nonsensical + one word, hallucination, inaccurate, empty) → 11.
    assert list(short.columns) == ["dataset", "config", "tag", "count"] and short["count"].sum() == 11
    dis = pd.read_csv(report_dir / "disagreements.csv", keep_default_na=False)
    assert len(dis) == 5 and {"alice", "bob", "alice tags", "bob tags", "final_rating", "kind"} <= set(dis.columns)


def test_adjudications_are_counted(store: Store, write_jsonl, tmp_path: Path) -> None:
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    items = store.items_frame("pilot").set_index(["dataset", "sample_id", "config"])["item_id"]
    store.set_adjudication(int(items[("esnli", "s2", "full_ft")]), "weak_yes", "perception", "bob misread")
    store.set_adjudication(int(items[("ecqa", "q1", "full_ft")]), "yes", "expectation")
    result = build_report(store, "pilot", out_dir=tmp_path / "out", png=False)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "5 items where annotators gave different answers; 2 of them adjudicated" in page
    counts = re.findall(r"<td>(perception|position|expectation|other)</td>\s*<td>(\d+)</td>", page)
    assert dict(counts) == {"perception": "1", "position": "0", "expectation": "1", "other": "0"}
    dis = pd.read_csv(tmp_path / "out" / "disagreements.csv", keep_default_na=False)
    row = dis[(dis["sample_id"] == "s2") & (dis["config"] == "full_ft")].iloc[0]
    assert (row["final_rating"], row["kind"], row["note"]) == ("weak_yes", "perception", "bob misread")
    assert result.analysis.comparison.n_pairs == 5


def test_report_tables_fit_a_screen_and_name_the_test(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    # An undefined κ is "n/a [k]" in the cell with its reason once, as footnote k, below the table.
    same = {("sbic", s, "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")} for s in ("x1", "x2")}
    ratings = pd.read_csv(write_ratings_csv(report_dir.parent / "same.csv", {**RATINGS, **same}), keep_default_na=False)
    other = outputs(analyse_export(ratings))["report.html"].decode()
    assert "n/a (undefined" not in other
    notes = re.findall(r"<li>(.*?)</li>", re.search(r"id='agreement-footnotes'>(.*?)</ol>", other).group(1))
    assert "same single answer (yes)" in notes[0] and len(notes) == len(set(notes))
    # κ, linear and quadratic of the sbic row and of the sbic × full_ft cell; binary κ has its own reason, [2].
    assert other.count("<td>n/a [1]</td>") == 6 and other.count("<td>n/a [2]</td>") == 2
    # Per-tag table: a defined κ has a blank reason; only undefined κ say n/a.
    tags = page[page.index("Agreement on each shortcoming tag"):page.index("<h2>Side by side")]
    row = re.search(r"<td>nonsensical</td>\s*<td>12</td>\s*<td>1\.0+</td>\s*<td>(.*?)</td>", tags)
    assert row and row.group(1) == ""
    assert "Mann–Whitney U: U = 22.0, p = " in page and "with uniform (free-marginal) chance agreement 1/2" in page


def test_report_csvs_are_safe_to_open_in_a_spreadsheet(store: Store, write_jsonl, tmp_path: Path) -> None:
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    items = store.items_frame("pilot").set_index(["dataset", "sample_id", "config"])["item_id"]
    store.set_adjudication(int(items[("esnli", "s2", "full_ft")]), "weak_yes", "other", '=cmd|" /C calc"!A0')
    build_report(store, "pilot", out_dir=tmp_path / "out", png=False)
    dis = pd.read_csv(tmp_path / "out" / "disagreements.csv", keep_default_na=False)
    assert dis[dis["note"] != ""]["note"].tolist() == ['\'=cmd|" /C calc"!A0']
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert scores["cohen_kappa"].dtype == float  # numbers are not quoted, negative or not


def test_undefined_kappa_is_null_in_json_with_reason_in_csv(tmp_path: Path, db_path: Path) -> None:
    same = {("esnli", str(i), "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")} for i in range(3)}
    with Store(db_path) as store:
        store.import_ratings(write_ratings_csv(tmp_path / "same.csv", same), "s")
    assert report_cli.main(["--db", str(db_path), "--out", str(tmp_path / "o")]) == 0
    data = json.loads((tmp_path / "o" / "agreement.json").read_text())
    assert data["overall"]["cohen_kappa"] is None and data["overall"]["percent_agreement"] == 1.0
    assert data["comparison"]["p_value"] is None and data["comparison"]["n_pairs"] == 0
    scores = pd.read_csv(tmp_path / "o" / "scores.csv")
    assert scores["cohen_kappa_reason"].str.contains("same single answer").all()


def _three_annotators_with_gold():
    """a, b, c rate two full_ft items, (yes, yes, no) and (yes, yes, yes), without tags; a and b rate one gold item."""
    rows = [{"dataset": "esnli", "sample_id": str(i), "config": "full_ft", "annotator": who, "rating": r, "tags": ""}
            for i, answers in enumerate([("yes", "yes", "no"), ("yes", "yes", "yes")])
            for who, r in zip("abc", answers, strict=True)]
    rows += [{"dataset": "esnli", "sample_id": "0", "config": "gold", "annotator": who, "rating": "yes", "tags": ""}
             for who in "ab"]
    return analyse_export(pd.DataFrame(rows), tags=list(DEFAULT_TAGS))


def test_report_shows_n_a_where_a_number_is_undefined_never_none_or_nan() -> None:
    a = _three_annotators_with_gold()  # no tag given: every tag's κ is undefined; κ(a, b) is undefined
    html = outputs(a)["report.html"].decode()
    cells = re.findall(r"<t[dh]>(.*?)</t[dh]>", html)
    assert cells and not {c.strip().lower() for c in cells} & {"none", "nan", "null"}
    tags = html[html.index("Agreement on each shortcoming tag"):]
    assert re.search(r"<td>contradiction</td>\s*<td>2</td>\s*<td>n/a</td>", tags)
    pairwise = html[html.index("Pairwise Cohen's κ</h3>"):]
    assert re.search(r"<th>a</th>\s*<td>1.000</td>\s*<td>n/a</td>\s*<td>0.000</td>", pairwise)


def test_report_says_which_pairs_each_agreement_figure_averages() -> None:
    html = unescape(outputs(_three_annotators_with_gold())["report.html"].decode())
    assert ("% agreement is the mean over every annotator pair with an item rated by both" in html
            and "κ is Light's κ, the mean over the annotator pairs where κ is defined" in html)


def test_kappa_per_cell_figure_draws_no_empty_trace() -> None:
    a = _three_annotators_with_gold()
    fig = figures(a)["kappa_per_cell"]
    assert [t.name for t in fig.data] == ["full_ft"]  # gold is reported apart: no empty "gold" trace
    assert list(fig.data[0].y) == [pytest.approx(0.0)]


@pytest.mark.parametrize("args, message", [
    (["--db", "{tmp}/missing.db"], "no such database file"),
    (["--db", "{db}", "--study", "nope"], "unknown study 'nope'"),
    (["--db", "{db}", "--compare", "full_ft", "full_ft"], "two different configurations"),
    (["--db", "{db}", "--compare", "full_ft", "full_tf"],
     "unknown configuration 'full_tf' to compare; the study's configurations: att_q+layer_norm, full_ft"),
])
def test_cli_errors_are_one_line(args: list[str], message: str, store: Store, write_jsonl, tmp_path: Path,
                                 db_path: Path, capsys) -> None:
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    argv = [a.format(tmp=tmp_path, db=db_path) for a in args] + ["--out", str(tmp_path / "o")]
    assert report_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("names", [["-x", "full_ft"], ["full_ft", "--png"]])
def test_cli_compare_takes_names_that_begin_with_a_dash(names: list[str], db_path: Path, tmp_path: Path,
                                                        capsys) -> None:
    ratings = {("esnli", str(i), c): {"alice": (r, ""), "bob": (r, "")} for i in range(3)
               for c, r in ((names[0], "yes"), (names[1], "no"))}
    with Store(db_path) as store:
        store.import_ratings(write_ratings_csv(tmp_path / "r.csv", ratings), "s")
    out = tmp_path / "o"
    assert report_cli.main(["--db", str(db_path), "--compare", *names, "--out", str(out), "--n-boot", "10"]) == 0, \
        capsys.readouterr().err
    comparison = json.loads((out / "agreement.json").read_text())["comparison"]
    assert [comparison["a"], comparison["b"]] == names and comparison["wins_a"] == 3
    assert not list(out.glob("*.png"))  # "--png" was a name, not the option


def test_cli_study_without_ratings(tmp_path: Path, db_path: Path, write_jsonl, capsys) -> None:
    with Store(db_path) as store:
        store.import_nles(write_jsonl([nle()]), "empty")
    assert report_cli.main(["--db", str(db_path), "--out", str(tmp_path / "o")]) == 2
    assert "study 'empty' has no ratings yet" in capsys.readouterr().err


def png_exporter_missing() -> str | None:
    """Why kaleido cannot write PNGs on this machine (as analysis/png.py asks), or None when it can."""
    try:
        import kaleido  # noqa: F401
        from choreographer.browsers.chromium import Chromium
    except ImportError as exc:
        return f"kaleido is not installed ({exc})"
    if os.environ.get("BROWSER_PATH") or Chromium.find_browser(skip_local=False) is not None:
        return None
    return "kaleido finds no Chrome or Chromium (apt-get install chromium, or set BROWSER_PATH)"


@pytest.mark.slow
def test_png_figures_when_an_exporter_works(store: Store, write_jsonl, tmp_path: Path) -> None:
    if missing := png_exporter_missing():
        pytest.skip(missing)
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    result = build_report(store, "pilot", out_dir=tmp_path / "out", png=True)
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert result.png_note is None, result.png_note
    assert pngs == sorted(["rating_distribution.png", "shortcomings_by_config.png", "shortcomings_by_dataset.png",
                           "kappa_per_cell.png", "comparison.png"])
    assert all((tmp_path / "out" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)


def test_without_an_exporter_the_report_is_complete_and_says_why(store: Store, write_jsonl, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kaleido", None)  # `import kaleido` fails, as where it is not installed
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    result = build_report(store, "pilot", out_dir=tmp_path / "out", png=True)
    assert list((tmp_path / "out").glob("*.png")) == []
    assert result.png_note.startswith("PNG figures skipped"), result.png_note
    assert (tmp_path / "out" / "report.html").exists()


def test_cli_help_stays_light() -> None:
    """`nle-report --help` answers without importing SciPy, scikit-learn or plotly (defaults live in a light module)."""
    code = ("import sys, json\nfrom analysis import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([m for m in ('scipy', 'sklearn', 'plotly') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--n-boot" in done.stdout and "(default 1000)" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_report_html_shows_bidi_controls_as_visible_tags_everywhere() -> None:
    """A U+202E in a name reverses the text after it on screen ("evil\u202etxt.exe"); report.html shows it as
    ⟦U+202E⟧ in the annotator line, every table header and cell and the figures, as the app does. The data files keep
    the names exactly."""
    rtl = "\u202e"
    names = {"alice": f"ali{rtl}ce", "bob": f"b{rtl}ob", "carol": f"car{rtl}ol"}
    rows = [{"dataset": f"e{rtl}snli" if d == "esnli" else d, "sample_id": f"{s}{rtl}", "config": c.replace("_", rtl, 1),
             "annotator": names[who], "rating": r, "tags": t}
            for (d, s, c), by in RATINGS.items() for who, (r, t) in [*by.items(), ("carol", by["alice"])]]
    a = analyse_export(pd.DataFrame(rows), study=f"pil{rtl}ot",
                       compare_configs=(f"full{rtl}ft", f"att{rtl}q+layer_norm"))
    files = outputs(a)
    page = files["report.html"].decode()
    assert rtl not in page, [page[max(0, m.start() - 60): m.end() + 20] for m in re.finditer(rtl, page)][:5]
    assert "Annotators: ali⟦U+202E⟧ce, b⟦U+202E⟧ob, car⟦U+202E⟧ol." in page
    headers = set(re.findall(r"<th>([^<]*)</th>", page))
    assert {"e⟦U+202E⟧snli", "full⟦U+202E⟧ft", "b⟦U+202E⟧ob", "given_by_car⟦U+202E⟧ol"} <= headers, headers
    assert "<title>Report — pil⟦U+202E⟧ot</title>" in page
    assert json.loads(files["agreement.json"])["annotators"] == sorted(names.values())  # the data keeps the names
