"""kill -9 at random moments: the record stays readable, intact and resumable."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cellauto.records import RecordWriter, open_batch, verify

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 10  # random kill points; each costs a child interpreter start (about 1 s of CPU)
INTERVAL = 0.2  # the writer's flush interval in the child
SLACK = 0.5  # scheduling slack on a loaded CI machine


def _run_and_kill(path: Path, rng: random.Random) -> tuple[int, int, float]:
    """Start the child, SIGKILL it at a random moment; (last flushed, safe accepted, kill time)."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(INTERVAL)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.0, 1.2))
    killed_at = time.monotonic()
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    flushed = safe = 0
    lines = out.splitlines(keepends=True)
    for line in lines:
        if not line.endswith("\n"):
            break  # the kill cut this line short
        words = line.split()
        if words[0] == "flushed":
            flushed = int(words[1])
        elif words[0] == "accepted" and float(words[2]) < killed_at - INTERVAL - SLACK:
            safe = int(words[1])
    return flushed, safe, killed_at


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_at_random_points_leaves_a_readable_intact_resumable_record(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261128)
    path = tmp_path / "B-crash"
    total_before = 0
    torn_seen = 0
    for kill in range(KILLS):
        flushed, safe, _ = _run_and_kill(path, rng)
        record = open_batch(path)
        seqs = record.samples.column("seq").to_pylist()
        # everything up to the last flush, in order, nothing twice, nothing invented
        assert seqs == list(range(len(seqs))), f"kill {kill}: samples are not a clean prefix"
        assert len(seqs) >= max(flushed, total_before), f"kill {kill}: flushed rows lost"
        # the time bound: rows accepted more than one flush interval before the kill are on disk
        assert len(seqs) >= safe, f"kill {kill}: rows older than the flush interval lost"
        report = verify(path)
        assert report.status == "unsealed but intact", f"kill {kill}: {report.problems}"
        torn_seen += bool(record.torn)
        total_before = len(seqs)
    # each run (the first created, the others resumed) wrote its own audit segment
    segments = sorted(p.name for p in (path / "audit").iterdir())
    assert segments == [f"segment-{n:06d}.arrows" for n in range(1, KILLS + 1)]
    writer = RecordWriter.resume(path)
    writer.close()
    report = verify(path)
    assert report.status == "sealed and intact"
    final = open_batch(path)
    assert final.samples.column("seq").to_pylist() == list(range(final.samples.num_rows))
    assert final.samples.num_rows >= total_before
    print(f"{KILLS} kills, {torn_seen} left a torn last write, {final.samples.num_rows} rows")


def test_a_torn_last_write_at_any_byte_loses_only_that_write(tmp_path: Path) -> None:
    from records_helpers import batch_info, sample

    original = tmp_path / "orig"
    segment = Path("samples") / "segment-000001.arrows"
    audit = Path("audit") / "segment-000001.arrows"
    writer = RecordWriter.create(original, batch_info(), flush_interval=None)
    for i in range(30):
        writer.add_sample(sample(i))
    writer.flush()
    writer.audit("alice", "note", "batch", value="before")
    first_flush = (original / segment).stat().st_size
    audit_before = (original / audit).stat().st_size
    for i in range(30, 45):
        writer.add_sample(sample(i))
    writer.audit("alice", "note", "batch", value="last")
    writer.flush()
    full = (original / segment).read_bytes()  # what a killed process leaves: no end marker
    audit_bytes = (original / audit).read_bytes()
    writer.abandon()
    cuts = sorted({*range(first_flush + 1, len(full), 97), len(full) - 1})
    assert len(cuts) > 5
    for n, cut in enumerate(cuts):
        copy = tmp_path / f"cut-{cut}"
        shutil.copytree(original, copy)
        (copy / segment).write_bytes(full[:cut])
        audit_cut = audit_before + 1 + n * 37 % (len(audit_bytes) - audit_before - 1)
        (copy / audit).write_bytes(audit_bytes[:audit_cut])
        record = open_batch(copy)
        assert record.samples.column("seq").to_pylist() == list(range(30))
        assert [e.value for e in record.audit_entries()][-1] == "before"
        assert record.torn == [str(segment), str(audit)]
        assert verify(copy).status == "unsealed but intact"
        resumed = RecordWriter.resume(copy)
        resumed.add_sample(sample(30))
        resumed.close()
        assert verify(copy).status == "sealed and intact"
        assert open_batch(copy).samples.num_rows == 31


def test_a_seal_interrupted_after_compaction_is_ignored_and_redone(tmp_path: Path) -> None:
    from records_helpers import batch_info, sample

    from cellauto.records.compact import compact

    path = tmp_path / "b"
    writer = RecordWriter.create(path, batch_info())
    for i in range(10):
        writer.add_sample(sample(i))
    writer.abandon()
    compact(path, "samples", "timestamp")  # what close() does first; then the process died
    (path / "events.arrow.tmp").write_bytes(b"half a file")
    assert (path / "samples.arrow").exists()
    assert open_batch(path).samples.num_rows == 10
    assert verify(path).status == "unsealed but intact"
    resumed = RecordWriter.resume(path)
    assert not (path / "samples.arrow").exists()
    assert not (path / "events.arrow.tmp").exists()
    resumed.close()
    assert verify(path).status == "sealed and intact"
