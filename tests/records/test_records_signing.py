"""Signing a sealed record: append-only addenda that verify() covers and open_batch() reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from records_helpers import StepClock

from cellauto.cli import main
from cellauto.errors import RecordIntegrityError, RecordStateError
from cellauto.records import RecordWriter, open_batch, sign, verify
from cellauto.records.audit import SIGNED_SEALED, record_hash
from cellauto.records.layout import manifest_digest, sha256_file
from cellauto.records.tables import file_schema
from cellauto.schema import SignatureMeaning

ADDENDUM_1 = "addenda/addendum-000001.arrow"
ADDENDUM_2 = "addenda/addendum-000002.arrow"


def _review_and_approve(path: Path) -> None:
    clock = StepClock()
    sign(path, printed_name="Quinn Ash", user_id="quinn", meaning="review", clock=clock)
    sign(
        path,
        printed_name="Bob Jones",
        user_id="bob",
        meaning=SignatureMeaning.APPROVAL,
        reason="release for infusion",
        clock=clock,
    )


def _sealed_files(path: Path) -> dict[str, str]:
    return {name: sha256_file(path / f"{name}.arrow") for name in ("samples", "events", "audit")}


def test_signing_a_sealed_record_appends_verified_signatures(
    make_record: Callable[..., Path],
) -> None:
    path = make_record()
    before = _sealed_files(path)
    sealed = open_batch(path).manifest
    digest = manifest_digest(path)

    _review_and_approve(path)

    assert _sealed_files(path) == before  # the sealed tables are not rewritten
    report = verify(path)
    assert report.status == "sealed and intact"
    assert report.rows["audit"] == 8
    assert report.signatures[-2].startswith("review by Quinn Ash (quinn) at ")
    assert report.signatures[-1].startswith("approval by Bob Jones (bob) at ")
    assert report.signatures[-1].endswith(f"(added after the seal: {ADDENDUM_2})")

    record = open_batch(path)
    entries = record.audit_entries()
    assert [e.seq for e in entries] == list(range(8))
    review, approval = entries[-2:]
    assert record.audit.column("action").to_pylist()[-2:] == ["sign", "sign"]
    assert review.prev_hash == sealed.chain_head == entries[5].hash  # on the sealed head
    assert approval.prev_hash == review.hash  # and on the review
    assert review.signature is not None
    assert approval.signature is not None
    assert approval.signature.meaning == SignatureMeaning.APPROVAL
    assert approval.signature.signed_at == approval.time
    assert approval.value == {
        "signed": SIGNED_SEALED,
        "chain_head": review.hash,
        "manifest_sha256": digest,
    }
    assert approval.signature.signed_hash == record_hash(review.hash, digest)
    manifest = record.manifest
    assert manifest.chain_head == sealed.chain_head  # the head at the seal stays
    assert [a.file for a in manifest.addenda] == [ADDENDUM_1, ADDENDUM_2]
    assert manifest.head == approval.hash
    assert manifest_digest(path) == digest  # adding signatures does not change it
    count = record.duckdb().sql("select count(*) from audit where action = 'sign'").fetchall()
    assert count == [(3,)]  # the responsibility signature made while open, and the two addenda


def _rewrite(file: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    rows = pa.ipc.open_file(pa.memory_map(str(file))).read_all().to_pylist()
    change(rows)
    table = pa.Table.from_pylist(rows, schema=file_schema("audit"))
    with pa.ipc.new_file(str(file), table.schema) as out:
        out.write_table(table)


def test_an_edited_addendum_entry_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _review_and_approve(path)

    def edit(rows: list[dict[str, Any]]) -> None:
        rows[0]["signature_meaning"] = "approval"

    _rewrite(path / ADDENDUM_1, edit)
    problems = verify(path).problems
    assert (
        problems[0] == f"audit entry seq 6 (#6): content changed (hash mismatch) (in {ADDENDUM_1})"
    )
    assert f"{ADDENDUM_1}: changed since it was added (SHA-256 mismatch)" in problems


def test_a_removed_addendum_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _review_and_approve(path)
    (path / ADDENDUM_1).unlink()
    problems = verify(path).problems
    assert problems[0].startswith(f"{ADDENDUM_1}: missing (listed in manifest.json")
    assert problems[1] == (
        "audit entry seq 7 (#6): prev_hash does not match the entry before it (an entry was "
        f"removed, inserted or reordered) (in {ADDENDUM_2})"
    )


def test_an_addendum_dropped_from_the_manifest_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _review_and_approve(path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["addenda"].pop()
    (path / "manifest.json").chmod(0o644)
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert verify(path).problems == [
        f"{ADDENDUM_2}: not listed in manifest.json (a signing interrupted before its commit, "
        "or a signature removed from the manifest); not part of the record"
    ]


def test_reordered_addenda_are_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _review_and_approve(path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["addenda"].reverse()
    (path / "manifest.json").chmod(0o644)
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert verify(path).problems[0] == (
        "audit entry seq 7 (#6): prev_hash does not match the entry before it (an entry was "
        f"removed, inserted or reordered) (in {ADDENDUM_2})"
    )


def test_a_manifest_changed_after_signing_is_named(make_record: Callable[..., Path]) -> None:
    path = make_record()
    _review_and_approve(path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["time_end"] = "2030-01-01T00:00:00Z"
    (path / "manifest.json").chmod(0o644)
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert verify(path).problems == [
        "manifest.json: time_end is '2030-01-01T00:00:00Z', the seal recorded "
        "'2026-03-01T08:00:07Z' (the manifest was edited after the seal)",
        f"manifest.json: changed since audit entry seq 6 (#6) (in {ADDENDUM_1}) signed it "
        "(the sealed manifest's SHA-256 differs)",
    ]


def test_a_tampered_record_is_not_signed(make_record: Callable[..., Path]) -> None:
    path = make_record()
    (path / "files" / "report.txt").write_bytes(b"edited\n")
    with pytest.raises(RecordIntegrityError, match=r"files/report\.txt: changed"):
        sign(path, printed_name="Bob Jones", user_id="bob", meaning="approval")
    assert not (path / ADDENDUM_1).exists()


def test_an_interrupted_signing_is_replaced_by_the_next(make_record: Callable[..., Path]) -> None:
    path = make_record()
    sign(path, printed_name="Quinn Ash", user_id="quinn", meaning="review")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["addenda"].pop()  # as if killed between the addendum file and the manifest commit
    (path / "manifest.json").chmod(0o644)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    assert "not listed in manifest.json" in verify(path).problems[0]
    sign(path, printed_name="Quinn Ash", user_id="quinn", meaning="review")
    assert verify(path).status == "sealed and intact"
    assert len(open_batch(path).manifest.addenda) == 1


def test_an_open_record_is_signed_by_its_writer_as_before(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_record("B-open", seal=False)
    with pytest.raises(RecordStateError, match=r"is open: sign it with RecordWriter\.sign\(\)"):
        sign(path, printed_name="Bob Jones", user_id="bob", meaning="approval")
    writer = RecordWriter.resume(path)
    entry = writer.sign("Bob Jones", "bob", "approval")
    assert entry.signature is not None
    assert entry.signature.signed_hash == entry.prev_hash  # the checkpoint
    writer.close()
    report = verify(path)
    assert report.status == "sealed and intact"
    assert report.signatures[-1].startswith("approval by Bob Jones (bob)")
    assert not (path / "addenda").exists()
    assert "addenda" not in json.loads((path / "manifest.json").read_text())


def test_cli_sign_then_verify_shows_the_signature(
    make_record: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_record()
    argv = ["records", "sign", str(path), "--name", "Bob Jones", "--user", "bob"]
    assert main([*argv, "--meaning", "approval", "--reason", "QA release"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"signed {path}: approval by Bob Jones (bob) at ")
    assert main(["records", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "B-0001: sealed and intact" in out
    assert "signature: approval by Bob Jones (bob) at " in out
    assert f"(added after the seal: {ADDENDUM_1})" in out
