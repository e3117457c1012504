"""The audit chain and verify(): any change, removal or reordering is found and named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from records_helpers import T0

from cellauto.errors import RecordIntegrityError
from cellauto.records import RecordWriter, open_batch, verify
from cellauto.records.audit import entry_row, first_break, make_entry, row_entry
from cellauto.records.tables import file_schema
from cellauto.schema import GENESIS_HASH, AuditEntry, BatchInfo, SignatureMeaning

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def chains(draw: st.DrawFn) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq in range(draw(st.integers(2, 8))):
        entry = make_entry(
            seq=seq,
            prev_hash=prev,
            time=T0 + timedelta(seconds=draw(st.integers(0, 10**6))),
            actor=draw(st.sampled_from(["alice", "bob", "cellauto"])),
            action=draw(st.sampled_from(["set", "acknowledge", "note"])),
            object=draw(st.text(max_size=10)),
            value=draw(json_values),
            previous_value=draw(json_values),
            reason=draw(st.text(max_size=10)),
        )
        entries.append(entry)
        prev = entry.hash
    return entries


@given(chains())
def test_an_untouched_chain_is_intact_and_survives_the_arrow_round_trip(
    entries: list[AuditEntry],
) -> None:
    assert first_break(entries) is None
    table = pa.Table.from_pylist([entry_row(e) for e in entries], schema=file_schema("audit"))
    back = [row_entry(row) for row in table.to_pylist()]
    assert back == entries
    assert first_break(back) is None


@given(chains(), st.data())
def test_any_tampering_is_found_at_the_first_tampered_entry(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    how = data.draw(st.sampled_from(["change", "remove", "swap", "insert", "rehash"]))
    tampered = list(entries)
    expected = index
    if how == "change":
        field = data.draw(st.sampled_from(["actor", "reason", "value", "previous_value", "time"]))
        new: Any = {
            "actor": "mallory",
            "reason": entries[index].reason + "!",
            "value": ["changed", entries[index].value],
            "previous_value": ["changed", entries[index].previous_value],
            "time": entries[index].time + timedelta(microseconds=1),
        }[field]
        tampered[index] = entries[index].model_copy(update={field: new})
    elif how == "remove":
        del tampered[index]
        if index == len(entries) - 1:
            return  # removing the tail of an unsealed chain is invisible to the chain itself
    elif how == "swap":
        other = data.draw(st.integers(0, len(entries) - 1).filter(lambda i: i != index))
        tampered[index], tampered[other] = tampered[other], tampered[index]
        expected = min(index, other)
    elif how == "insert":
        tampered.insert(index, entries[index])
        expected = index + 1
    else:  # change and recompute this entry's own hash: the next link breaks
        changed = entries[index].model_copy(update={"reason": "rewritten"})
        tampered[index] = changed.model_copy(update={"hash": changed.expected_hash()})
        expected = index + 1
        if index == len(entries) - 1:
            return  # a rewritten head is caught by the sealed manifest, not by the chain
    found = first_break(tampered)
    assert found is not None
    assert found[0] == expected, (how, found)


def test_signature_binds_name_meaning_time_and_chain_head(tmp_path: Path) -> None:
    writer = RecordWriter.create(tmp_path / "b", BatchInfo(batch_id="B", product="p"))
    entry = writer.sign("Bob Jones", "bob", SignatureMeaning.APPROVAL, reason="release")
    assert entry.signature is not None
    assert entry.signature.printed_name == "Bob Jones"
    assert entry.signature.meaning == SignatureMeaning.APPROVAL
    assert entry.signature.signed_hash == entry.prev_hash  # the checkpoint just before it
    checkpoint = open_batch(tmp_path / "b").audit_entries()[-2]
    assert checkpoint.action == "checkpoint"
    assert checkpoint.hash == entry.prev_hash
    assert entry.signature.signed_at == entry.time
    other = writer.sign("Bob Jones", "bob", "review", signed_hash="ab" * 32, object="result:r1")
    assert other.signature is not None
    assert other.signature.signed_hash == "ab" * 32
    writer.close()
    assert verify(tmp_path / "b").intact


def test_a_signature_moved_to_another_head_is_found() -> None:
    first = make_entry(seq=0, prev_hash=GENESIS_HASH, time=T0, actor="a", action="x", object="o")
    second = make_entry(seq=1, prev_hash=first.hash, time=T0, actor="a", action="y", object="o")
    from cellauto.schema import ElectronicSignature

    forged = ElectronicSignature(
        printed_name="A", user_id="a", meaning="approval", signed_at=T0, signed_hash=first.hash
    )
    sign = make_entry(
        seq=2,
        prev_hash=second.hash,
        time=T0,
        actor="a",
        action="sign",
        object="o",
        value={"signed": "audit_chain"},
        signature=forged,
    )
    found = first_break([first, second, sign])
    assert found is not None
    assert found[0] == 2
    assert "signature" in found[1]


# -- verify() on real records -------------------------------------------------------------


def _rewrite_audit(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    file = path / "audit.arrow"
    rows = pa.ipc.open_file(pa.memory_map(str(file))).read_all().to_pylist()
    change(rows)
    table = pa.Table.from_pylist(rows, schema=file_schema("audit"))
    with pa.ipc.new_file(str(file), table.schema) as out:
        out.write_table(table)


def test_sealed_record_verifies(make_record: Callable[..., Path]) -> None:
    report = verify(make_record())
    assert report.status == "sealed and intact"
    assert report.rows == {"samples": 22, "events": 3, "audit": 6, "results": 1}


def test_changed_audit_entry_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()

    def change(rows: list[dict[str, Any]]) -> None:
        rows[2]["value"] = json.dumps(2e9)

    _rewrite_audit(path, change)
    report = verify(path)
    assert not report.intact
    assert report.problems[0].startswith("audit entry seq 2 (#2): content changed")


def test_removed_and_reordered_entries_are_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _rewrite_audit(path, lambda rows: rows.pop(1))
    assert "seq 2 (#1): prev_hash does not match" in verify(path).problems[0]
    other = make_record("B-0002")
    _rewrite_audit(other, lambda rows: rows.insert(1, rows.pop(2)))
    assert "(#1): prev_hash does not match" in verify(other).problems[0]


def test_truncated_audit_of_a_sealed_record_is_found(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _rewrite_audit(path, lambda rows: rows.pop())
    assert "chain head" in verify(path).problems[0]


def test_changed_table_file_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    table = open_batch(path).samples
    changed = table.set_column(4, "value", pa.array([40.0] * table.num_rows))
    with pa.ipc.new_file(str(path / "samples.arrow"), changed.schema) as out:
        out.write_table(changed)
    report = verify(path)
    assert report.problems == [
        "samples.arrow: changed since the seal (SHA-256 mismatch)",
        "samples: its first 22 rows differ from the checkpoint at audit seq 3 (data changed "
        "after it was signed)",
    ]


def test_changed_removed_and_foreign_files_are_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    (path / "files" / "report.txt").write_bytes(b"edited\n")
    assert verify(path).problems == [
        "files/report.txt: changed (SHA-256 differs from the audit trail)"
    ]
    (path / "files" / "report.txt").unlink()
    assert verify(path).problems == ["files/report.txt: removed (recorded in the audit trail)"]
    (path / "files" / "extra.bin").write_bytes(b"x")
    assert "files/extra.bin: not in the audit trail" in verify(path).problems[-1]


def test_edited_manifest_batch_info_is_found(make_record: Callable[..., Path]) -> None:
    path = make_record()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["batch"]["product"] = "something else"
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert verify(path).problems == [
        "manifest.json: batch info differs from the sealed copy in the audit"
    ]


def test_open_record_with_changed_segment_entry_is_found(make_record: Callable[..., Path]) -> None:
    path = make_record(seal=False)
    segment = path / "audit" / "segment-000001.arrows"
    table = pa.ipc.open_stream(pa.memory_map(str(segment))).read_all()
    rows = table.to_pylist()
    rows[1]["actor"] = "mallory"
    rewritten = pa.Table.from_pylist(rows, schema=file_schema("audit"))
    with pa.ipc.new_stream(str(segment), rewritten.schema) as out:
        out.write_table(rewritten)
    report = verify(path)
    assert report.problems[0].startswith("audit entry seq 1 (#1): content changed")
    with pytest.raises(RecordIntegrityError, match="broken audit chain"):
        RecordWriter.resume(path)
