"""Signatures that bind data and signer: per-person Ed25519 keys, a trust store, an anchor."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from records_helpers import StepClock, batch_info, sample

from cellauto.cli import main
from cellauto.records import RecordWriter, sign, verify
from cellauto.records.anchor import anchor
from cellauto.records.keys import (
    SigningKeyError,
    TrustStore,
    create_key,
    list_keys,
    load_signer,
)

PASS = b"correct horse battery"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    create_key(folder, "alice", "Alice Smith", PASS)
    create_key(folder, "bob", "Bob Jones", PASS)
    return folder


def _trust(keys: Path, tmp_path: Path, *users: str, revoked: str | None = None) -> Path:
    store = tmp_path / "trust"
    store.mkdir()
    for user in users:
        data = json.loads((keys / f"{user}.pub.json").read_text())
        if user == revoked:
            data["revoked_at"] = "2000-01-01T00:00:00+00:00"
        (store / f"{user}.pub.json").write_text(json.dumps(data))
    return store


def _record(path: Path, keys: Path, *, factor: float = 1.0, key_dir: Path | None = None) -> Path:
    """A record signed in the batch by alice's key (from `key_dir`, default the real one)."""
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    for i in range(40):
        writer.add_sample(sample(i, value=(36.5 + i / 8) * factor))
    alice = load_signer(key_dir or keys, "alice", PASS)
    writer.sign("Alice Smith", "alice", "approval", reason="release", signer=alice)
    writer.close()
    return path


def test_a_key_is_encrypted_private_to_its_owner_and_never_replaced(keys: Path) -> None:
    assert stat.S_IMODE((keys / "alice.key").stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (keys / "alice.key").read_bytes()
    assert [k.user_id for k in list_keys(keys)] == ["alice", "bob"]
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        load_signer(keys, "alice", b"not the passphrase")
    with pytest.raises(SigningKeyError, match="keys are never replaced"):
        create_key(keys, "alice", "Alice Smith", PASS)
    with pytest.raises(SigningKeyError, match="user id"):
        create_key(keys, "../x", "X", PASS)


def test_key_signatures_verify_against_the_trust_store(keys: Path, tmp_path: Path) -> None:
    path = _record(tmp_path / "b", keys)
    bob = load_signer(keys, "bob", PASS)
    sign(path, printed_name="Bob Jones", user_id="bob", meaning="review", signer=bob)
    trusted = _trust(keys, tmp_path, "alice", "bob")
    report = verify(path, trust=trusted)
    assert report.status == "sealed and intact", report.problems
    assert verify(path, trust=TrustStore.load(trusted)).intact


def test_unknown_and_revoked_signers_are_named(keys: Path, tmp_path: Path) -> None:
    path = _record(tmp_path / "b", keys)
    only_bob = _trust(keys, tmp_path, "bob")
    problem = verify(path, trust=only_bob).problems[0]
    assert "(approval by Alice Smith (alice))" in problem
    assert problem.endswith("(unknown signer)")
    revoked = tmp_path / "r"
    revoked.mkdir()
    store = _trust(keys, revoked, "alice", revoked="alice")
    assert verify(path, trust=store).problems[0].endswith("(revoked signer)")


def test_a_keyless_signature_fails_against_a_trust_store(keys: Path, tmp_path: Path) -> None:
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    writer.sign("Alice Smith", "alice", "approval")
    writer.close()
    assert verify(path).intact
    problems = verify(path, trust=_trust(keys, tmp_path, "alice")).problems
    assert problems[0].endswith(
        "made without a key (no cryptographic signature), so the "
        "trust store cannot establish the signer"
    )


def test_a_forgery_with_every_hash_recomputed_fails_against_the_trust_store(
    keys: Path, tmp_path: Path
) -> None:
    """The adversary rebuilds the record with every sample x1.10, same times and names, and
    signs it with a key of their own that claims to be alice's: every hash checks out."""
    original = _record(tmp_path / "original", keys)
    forger_keys = tmp_path / "forger"
    create_key(forger_keys, "alice", "Alice Smith", PASS)
    forged = _record(tmp_path / "forged", keys, factor=1.10, key_dir=forger_keys)
    assert verify(forged).status == "sealed and intact"  # alone, the hashes prove nothing
    trusted = _trust(keys, tmp_path, "alice")
    assert verify(original, trust=trusted).intact
    problem = verify(forged, trust=trusted).problems[0]
    assert problem.startswith("signature at audit seq ")
    assert problem.endswith("(unknown signer)")


def test_the_anchor_catches_a_record_rewritten_after_it(keys: Path, tmp_path: Path) -> None:
    path = _record(tmp_path / "b", keys)
    anchors = tmp_path / "anchors.jsonl"
    anchor(path, anchors)
    assert verify(path, anchor=anchors).intact
    rebuilt = _record(tmp_path / "rebuilt", keys, factor=1.10)
    problems = verify(rebuilt, anchor=anchors).problems
    assert problems[0].startswith("the audit chain does not hold the head ")
    assert problems[0].endswith("the record was rewritten after it was anchored")
    other = tmp_path / "other.jsonl"
    other.write_text("")
    assert verify(path, anchor=other).problems == [
        f"anchor file {other}: batch B-0001 was never anchored there"
    ]


def test_cli_keys_sign_verify_and_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "keys"
    monkeypatch.setenv("PASS", "a long passphrase")
    common = ["--keys", str(folder), "--passphrase-env", "PASS"]
    assert main(["keys", "create", "--user", "quinn", "--name", "Quinn Ash", *common]) == 0
    assert main(["keys", "list", "--keys", str(folder)]) == 0
    trust = tmp_path / "trust"
    trust.mkdir()
    assert main(["keys", "export", "quinn", "--keys", str(folder), "--out", str(trust)]) == 0
    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info(), clock=StepClock(), flush_interval=None)
    writer.close()
    args = ["records", "sign", str(path), "--name", "Quinn Ash", "--user", "quinn"]
    assert main([*args, "--meaning", "review", *common]) == 0
    assert main(["records", "verify", str(path), "--trust", str(trust)]) == 0
    anchors = tmp_path / "anchors.jsonl"
    assert main(["records", "anchor", str(path), "--to", str(anchors)]) == 0
    assert main(["records", "verify", str(path), "--anchor", str(anchors)]) == 0
    assert main(["records", "verify", str(path), "--trust", str(tmp_path / "keys" / "x")]) == 1
    out = capsys.readouterr()
    assert "created ed25519:" in out.out
    assert "quinn" in out.out
    assert os.path.exists(trust / "quinn.pub.json")
