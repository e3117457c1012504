"""Batch ids are identifiers, never paths; `records list` shows every record under the root."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from records_helpers import batch_info

from cellauto import Batch
from cellauto.cli import main
from cellauto.errors import InvalidBatchId
from cellauto.records import RecordWriter
from cellauto.records.ids import check_batch_id
from cellauto.schema import BatchInfo

BAD = ["", "x" * 129, "x" * 257, "../x", "..", "/abs", "a/b", "a\\b", "a\nb", ".hidden", "a b"]


@pytest.mark.parametrize("batch_id", BAD)
def test_a_batch_id_that_names_a_path_is_refused_with_the_rule(batch_id: str) -> None:
    with pytest.raises(InvalidBatchId, match="a batch id is 1 to 128 letters, digits"):
        check_batch_id(batch_id)
    with pytest.raises(InvalidBatchId):
        Batch(batch_id, product="p", operator="alice")


def test_the_writer_refuses_an_escaping_id_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "records"
    root.mkdir()
    info = BatchInfo.model_construct(**{**batch_info().model_dump(), "batch_id": "../x"})
    with pytest.raises(InvalidBatchId, match=r"'\.\./x' is not an identifier"):
        RecordWriter.create(root / "../x", info)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records"]


def test_good_ids_pass() -> None:
    for batch_id in ("B-0001", "B.DEMO_001", "7", "x" * 128):
        assert check_batch_id(batch_id) == batch_id


def test_records_list_shows_nested_records_and_reports_unreadable_ones(
    make_record: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_record("B-0001")
    make_record("site-a/B-0002", batch_id="B-0002")
    broken = make_record("B-0003", batch_id="B-0003")
    (broken / "manifest.json").write_text("{not json")
    make_record("B-0004", batch_id="B-0004")
    assert main(["records", "list", str(tmp_path)]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["B-0001", "?", "B-0004", "B-0002"]
    assert "unreadable" in lines[1]
    assert lines[1].endswith("(B-0003)")
    assert lines[3].endswith("site-a/B-0002")
    assert "1 record(s) unreadable" in out.err
    assert json.loads((tmp_path / "B-0001" / "manifest.json").read_text())["state"] == "sealed"
