"""Disk full and read-only folders: a clear error, and every row accepted before stays readable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import batch_info, sample

from cellauto.errors import RecordWriteError
from cellauto.records import RecordWriter, open_batch, verify

DISK_FULL_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from datetime import UTC, datetime, timedelta
    from cellauto.errors import RecordWriteError
    from cellauto.records import RecordWriter
    from cellauto.schema import BatchInfo, Sample

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of a signal
    writer = RecordWriter.create(
        sys.argv[1], BatchInfo(batch_id="B-full", product="p"), flush_rows=1000,
        flush_interval=None,
    )
    limit = 256 * 1024  # no file of this process may grow beyond 256 KiB: the disk is "full"
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    flushed = 0
    try:
        for i in range(10**6):
            writer.add_sample(Sample(device_id="d", channel="a.b", value=float(i), unit="Cel",
                                     timestamp=t0 + timedelta(seconds=i), seq=i))
            if (i + 1) % 1000 == 0:
                flushed = i + 1
    except RecordWriteError as exc:
        print("FLUSHED", flushed)
        print("ERROR", exc)
    try:
        writer.add_sample(Sample(device_id="d", channel="a.b", value=0.0, unit="Cel",
                                 timestamp=t0, seq=0))
    except RecordWriteError as exc:
        print("AFTER", exc)
    """
)


def test_disk_full_gives_a_clear_error_and_keeps_flushed_rows(tmp_path: Path) -> None:
    path = tmp_path / "B-full"
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    flushed = int(lines["FLUSHED"])
    assert flushed > 1000
    assert "File too large" in lines["ERROR"]
    assert "rows flushed before this are still readable" in lines["ERROR"]
    assert "failed earlier" in lines["AFTER"]
    seqs = open_batch(path).samples.column("seq").to_pylist()
    assert len(seqs) >= flushed
    assert seqs == list(range(len(seqs)))
    assert verify(path).status == "unsealed but intact"
    writer = RecordWriter.resume(path)  # space is back: carry on in a new segment
    writer.add_sample(sample(0, device="d", channel="a.b"))
    writer.close()
    assert verify(path).status == "sealed and intact"
    assert open_batch(path).samples.num_rows == len(seqs) + 1


def test_record_under_a_file_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder")
    with pytest.raises(RecordWriteError, match="creating the record failed"):
        RecordWriter.create(tmp_path / "plain-file" / "B-0001", batch_info())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_gives_a_clear_error_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "B-ro"
    writer = RecordWriter.create(path, batch_info(), flush_interval=None)
    for i in range(10):
        writer.add_sample(sample(i))
    writer.flush()
    os.chmod(path, 0o555)
    os.chmod(path / "files", 0o555)
    try:
        with pytest.raises(RecordWriteError, match=r"storing files/x\.txt failed"):
            writer.add_file(b"x", "x.txt", mime_type="text/plain")
        with pytest.raises(RecordWriteError, match="sealing failed"):
            writer.close()
        assert open_batch(path).samples.num_rows == 10
    finally:
        os.chmod(path, 0o755)
        os.chmod(path / "files", 0o755)
    writer.abandon()
    assert verify(path).status == "unsealed but intact"
