"""Disk full and read-only folders: a clear error, and every row accepted before stays readable."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from records_helpers import T0, batch_info, sample

from cellauto.errors import RecordWriteError
from cellauto.records import RecordWriter, open_batch, verify
from cellauto.schema import Event

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


NOBODY = 65534


def _read_only_scenario(path: Path) -> dict[str, object]:
    """Write a record, make its folder read-only, keep going; runs without root privileges."""
    writer = RecordWriter.create(path, batch_info(), flush_interval=None)
    for i in range(10):
        writer.add_sample(sample(i))
    writer.add_event(Event(device_id="cocoon-1", time=T0, seq=0, kind="note", message="before"))
    writer.flush()
    os.chmod(path, 0o555)
    os.chmod(path / "files", 0o555)
    for i in range(10, 15):  # accepted after the folder turned read-only: flushed by close()
        writer.add_sample(sample(i))
    writer.add_event(Event(device_id="cocoon-1", time=T0, seq=1, kind="note", message="after"))
    found: dict[str, object] = {"euid": os.geteuid()}
    try:
        writer.add_file(b"x", "x.txt", mime_type="text/plain")
    except RecordWriteError as exc:
        found["add_file"] = str(exc)
    try:
        writer.close()
    except RecordWriteError as exc:
        found["close"] = str(exc)
    writer.abandon()
    record = open_batch(path)
    found["readable_rows"] = record.samples.column("seq").to_pylist()
    found["readable_events"] = record.events.column("message").to_pylist()
    return found


def _run_unprivileged(
    scenario: Callable[[Path], dict[str, object]], path: Path
) -> dict[str, object]:
    """Run `scenario(path)` in a forked child that, under root, drops to uid/gid 65534 first.

    A fork (not a new interpreter) because the interpreter may live where uid 65534 cannot
    read it (e.g. under /root); everything the scenario needs is imported already.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read)
            if os.geteuid() == 0:
                try:
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
                except OSError as exc:
                    result: dict[str, object] = {"cannot_drop": str(exc)}
                else:
                    result = scenario(path)
            else:
                result = scenario(path)
        except BaseException as exc:  # reported to the parent, which fails the test
            result = {"crashed": f"{type(exc).__name__}: {exc}"}
            code = 1
        try:
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        ready, _, _ = select.select([pipe], [], [], 60)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        data = pipe.read()
    os.waitpid(pid, 0)
    assert data, "the unprivileged child hung or died without a report"
    result = json.loads(data)
    assert isinstance(result, dict)
    return result


def test_read_only_folder_gives_a_clear_error_and_keeps_rows(tmp_path: Path) -> None:
    # Root ignores folder permissions, so under root (as in CI) the writer runs in a child that
    # drops to uid 65534 ("nobody"), in a folder that user owns and then makes read-only.
    warm = tmp_path / "warm-up"  # imports every module the scenario needs before the fork
    with RecordWriter.create(warm, batch_info(), flush_interval=None) as writer:
        writer.add_sample(sample(0))
        writer.add_file(b"x", "x.txt", mime_type="text/plain")
    verify(warm)
    base = Path(tempfile.mkdtemp(prefix="cellauto-ro-"))
    path = base / "B-ro"
    try:
        if os.geteuid() == 0:
            os.chown(base, NOBODY, NOBODY)
        found = _run_unprivileged(_read_only_scenario, path)
        if "cannot_drop" in found:
            pytest.skip(f"running as root and cannot drop to uid {NOBODY}: {found['cannot_drop']}")
        assert "crashed" not in found, found["crashed"]
        assert found["euid"] != 0
        assert "storing files/x.txt failed: [Errno 13] Permission denied" in str(found["add_file"])
        closing = str(found["close"])
        assert "sealing failed: [Errno 13]" in closing
        assert "Permission denied" in closing
        assert "rows flushed before this are still readable" in closing
        # every accepted row, read back by the unprivileged user
        assert found["readable_rows"] == list(range(15))
        assert found["readable_events"] == ["before", "after"]
        os.chmod(path, 0o755)
        os.chmod(path / "files", 0o755)
        assert open_batch(path).samples.column("seq").to_pylist() == list(range(15))
        assert not (path / "files" / "x.txt").exists()
        assert verify(path).status == "unsealed but intact"
        writer = RecordWriter.resume(path)  # writable again: carry on and seal
        writer.add_sample(sample(15))
        writer.close()
        assert verify(path).status == "sealed and intact"
        assert open_batch(path).samples.num_rows == 16
    finally:
        shutil.rmtree(base, ignore_errors=True)
