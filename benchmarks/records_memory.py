"""Resident memory while samples stream into a record, against a raw pyarrow stream writer.

Target: RSS stays flat (within 50 MB) while 100 million samples stream through. Default 10 M
(about 30 s); ``--full`` for 100 M (needs ~4 GB of free disk for the open segments).

    .venv/bin/python benchmarks/records_memory.py [--full]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from cellauto.records import RecordWriter
from cellauto.schema import BatchInfo, Sample

BATCH = 65_536
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 1e6


def batches(total: int) -> Iterator[pa.RecordBatch]:
    """Yield `total` rows in BATCH-row batches with fresh timestamps and values."""
    t0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    base = pa.array(range(BATCH), pa.int64())
    channels = pa.array([f"chamber.var{i}" for i in range(16)])
    idx = pa.array([i % 16 for i in range(BATCH)], pa.int32())
    for start in range(0, total, BATCH):
        offset = pa.scalar(start, pa.int64())
        ticks = pc.add(base, offset)
        yield pa.RecordBatch.from_pydict(
            {
                "device_id": pa.DictionaryArray.from_arrays(
                    pa.array([0] * BATCH, pa.int32()), pa.array(["cocoon-1"])
                ),
                "channel": pa.DictionaryArray.from_arrays(idx, channels),
                "unit": pa.DictionaryArray.from_arrays(
                    pa.array([0] * BATCH, pa.int32()), pa.array(["Cel"])
                ),
                "timestamp": pc.add(ticks, pa.scalar(t0, pa.int64())).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "value": ticks.cast(pa.float64()),
                "seq": ticks,
            }
        )


def run(label: str, total: int, write: Callable[[pa.RecordBatch], object]) -> None:
    samples: list[float] = []
    start = time.perf_counter()
    for i, batch in enumerate(batches(total)):
        write(batch)
        if i % 64 == 0:
            samples.append(rss_mb())
    elapsed = time.perf_counter() - start
    warm = samples[min(4, len(samples) - 1)]
    print(
        f"{label}: {total / 1e6:.0f} M rows in {elapsed:.1f} s, RSS after warm-up {warm:.0f} MB, "
        f"max {max(samples):.0f} MB, growth {max(samples) - warm:+.1f} MB (target within 50 MB)"
    )


def per_sample(writer: RecordWriter, total: int) -> None:
    """The per-sample path: one Sample model at a time."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rss: list[float] = []
    start = time.perf_counter()
    for i in range(total):
        writer.add_sample(
            Sample(
                device_id="prodigy-1",
                channel="centrifuge.speed",
                value=float(i),
                unit="Cel",
                timestamp=t0 + timedelta(microseconds=i),
                seq=i,
            )
        )
        if i % 100_000 == 0:
            rss.append(rss_mb())
    warm = rss[min(4, len(rss) - 1)]
    print(
        f"RecordWriter.add_sample: {total / 1e6:.0f} M samples in "
        f"{time.perf_counter() - start:.1f} s (incl. building each Sample), RSS after warm-up "
        f"{warm:.0f} MB, growth {max(rss) - warm:+.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="100 million samples")
    parser.add_argument("--rows", type=int, default=0, help="override the row count")
    parser.add_argument("--per-sample", type=int, default=2_000_000, help="per-sample rows")
    args = parser.parse_args()
    total = args.rows or (100_000_000 if args.full else 10_000_000)
    folder = Path(tempfile.mkdtemp(prefix="cellauto-bench-mem-"))
    try:
        sink = pa.BufferedOutputStream(pa.OSFile(str(folder / "raw.arrows"), "wb"), 1 << 20)
        first = next(batches(BATCH))
        raw = ipc.new_stream(sink, first.schema)
        run("raw pyarrow stream", total, raw.write_batch)
        raw.close()
        sink.close()
        (folder / "raw.arrows").unlink()

        writer = RecordWriter.create(folder / "rec", BatchInfo(batch_id="B", product="p"))
        run("RecordWriter.add_samples", total, writer.add_samples)
        per_sample(writer, args.per_sample)
        before = rss_mb()
        start = time.perf_counter()
        peak = [before]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.05):
                peak.append(rss_mb())

        watcher = threading.Thread(target=watch)
        watcher.start()
        writer.close()
        done.set()
        watcher.join()
        print(
            f"close (compaction to the sealed IPC file): {time.perf_counter() - start:.1f} s, RSS "
            f"before {before:.0f} MB, peak {max(peak):.0f} MB ({max(peak) - before:+.1f} MB)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
