"""Child process of the crash test: writes a record until it is killed.

Usage: crash_child.py <record folder> <flush interval s>. Creates the record, or resumes it if
it exists. Prints ``ready``, then after each explicit flush ``flushed <rows>`` and after each
accepted block ``accepted <rows> <monotonic time>``; rows are numbered by seq from 0.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cellauto.records import RecordWriter, open_batch
from cellauto.schema import BatchInfo, Event, EventKind, Sample

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    path = Path(sys.argv[1])
    interval = float(sys.argv[2])
    if (path / "manifest.json").exists():
        seq = open_batch(path).samples.num_rows
        writer = RecordWriter.resume(path, flush_interval=interval, flush_rows=50_000)
    else:
        seq = 0
        writer = RecordWriter.create(
            path,
            BatchInfo(batch_id="B-crash", product="p"),
            flush_interval=interval,
            flush_rows=50_000,
        )
    print("ready", flush=True)
    block = 0
    while True:
        for _ in range(200):
            writer.add_sample(
                Sample(
                    device_id="d",
                    channel="chamber.temperature",
                    value=37.0 + seq % 7,
                    unit="Cel",
                    timestamp=T0 + timedelta(milliseconds=seq),
                    seq=seq,
                )
            )
            seq += 1
        writer.add_event(
            Event(
                device_id="d",
                time=T0 + timedelta(milliseconds=seq),
                seq=block,
                kind=EventKind.NOTE,
                message=f"block {block}",
            )
        )
        if block % 10 == 0:
            writer.audit("operator", "note", "batch:B-crash", value=block)
        if block % 25 == 0:
            writer.flush()
            print("flushed", seq, flush=True)
        print("accepted", seq, time.monotonic(), flush=True)
        block += 1
        time.sleep(0.003)


if __name__ == "__main__":
    main()
