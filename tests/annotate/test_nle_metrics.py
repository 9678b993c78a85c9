"""The NLE file's optional `metrics` object: read onto the NLE, checked like every field, refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotate.core.errors import InputFileError
from annotate.core.formats import MAX_METRIC_NAME_CHARS, read_nle_file
from annotate.core.store import Store
from tests.helpers import dump, nle


def test_metrics_are_read_as_floats_by_name(write_jsonl) -> None:
    records = read_nle_file(write_jsonl([
        nle(sample_id="1", metrics={"bertscore_f1": 0.91, "bleu": 12, "métrique": -0.5, "1e-3 scale": 1e-300}),
        nle(sample_id="2"),
        nle(sample_id="3", metrics=None),
        nle(sample_id="4", metrics={}),
    ]))
    assert records[0].metrics == {"bertscore_f1": 0.91, "bleu": 12.0, "métrique": -0.5, "1e-3 scale": 1e-300}
    assert all(type(v) is float for v in records[0].metrics.values())
    assert [r.metrics for r in records[1:]] == [{}, {}, {}]


def test_other_unknown_fields_are_still_kept_as_metadata_but_metrics_are_not(write_jsonl) -> None:
    """Unknown fields stay the item's metadata, as before; the `metrics` object lives in one place, NLE.metrics
    (the store keeps it in its own table)."""
    (record,) = read_nle_file(write_jsonl([nle(metrics={"bertscore_f1": 1}, checkpoint="step-3000")]))
    assert record.metadata == {"checkpoint": "step-3000"}
    assert record.metrics == {"bertscore_f1": 1.0}


def _line(metrics: str) -> str:
    return json.dumps(nle(sample_id="bad"))[:-1] + f', "metrics": {metrics}}}'


LONG = "m" * (MAX_METRIC_NAME_CHARS + 1)
BAD_METRICS = [
    ("list", "[0.9]", "field 'metrics': must be an object of named numbers, got a list"),
    ("number", "0.9", "field 'metrics': must be an object of named numbers, got float"),
    ("string-value", '{"bertscore_f1": "0.9"}', "field 'metrics.bertscore_f1': must be a number, got a string"),
    ("bool-value", '{"bertscore_f1": true}', "field 'metrics.bertscore_f1': must be a number, got a boolean"),
    ("null-value", '{"bertscore_f1": null}', "field 'metrics.bertscore_f1': must be a number, got null"),
    ("object-value", '{"bertscore_f1": {"f1": 0.9}}', "field 'metrics.bertscore_f1': must be a number, got an object"),
    ("list-value", '{"bertscore_f1": [0.9]}', "field 'metrics.bertscore_f1': must be a number, got a list"),
    ("nan", '{"bertscore_f1": NaN}', "field 'metrics.bertscore_f1': NaN is not a finite number"),
    ("infinity", '{"bleu": -Infinity}', "field 'metrics.bleu': -Infinity is not a finite number"),
    ("overflow", '{"bleu": 1e999}', "field 'metrics.bleu': 1e999 is not a finite number"),
    ("huge-integer", '{"bleu": 1' + "0" * 400 + "}", "field 'metrics.bleu': is too large to be a finite number"),
    ("empty-name", '{"": 0.5}', "field 'metrics': a metric's name must be a non-empty string"),
    ("blank-name", '{"   ": 0.5}', "field 'metrics': a metric's name must be a non-empty string"),
    ("long-name", json.dumps({LONG: 0.5}),
     f"field 'metrics': metric name {LONG[:40]}... is longer than {MAX_METRIC_NAME_CHARS} characters"),
    ("newline-name", '{"a\\nb": 0.5}',
     "field 'metrics': metric name 'a\\nb' must be printable, without control characters or surrounding spaces"),
    ("bell-name", '{"a\\u0007b": 0.5}',
     "field 'metrics': metric name 'a\\x07b' must be printable, without control characters or surrounding spaces"),
    ("bidi-name", '{"a\\u202eb": 0.5}',
     "field 'metrics': metric name 'a\\u202eb' must be printable, without control characters or surrounding spaces"),
    ("padded-name", '{" bleu": 0.5}',
     "field 'metrics': metric name ' bleu' must be printable, without control characters or surrounding spaces"),
    ("duplicate-name", '{"bleu": 0.5, "bleu": 0.6}', "field 'bleu': key appears twice in the same object"),
]


@pytest.mark.parametrize(("metrics", "expected"), [pytest.param(m, e, id=i) for i, m, e in BAD_METRICS])
def test_bad_metrics_reject_the_file_whole(store: Store, db_path: Path, write_jsonl, metrics: str,
                                           expected: str) -> None:
    store.import_nles(write_jsonl([nle(sample_id="old")], "seed.jsonl"), "s")
    path = write_jsonl([nle(sample_id="ok", metrics={"bertscore_f1": 0.5}), _line(metrics), nle(sample_id="after")])
    before = dump(db_path)
    with pytest.raises(InputFileError) as info:
        store.import_nles(path, "s")
    message = str(info.value)
    assert message.startswith(f"{path}, line 2, {expected}")
    assert "\n" not in message and info.value.line == 2
    assert dump(db_path) == before
