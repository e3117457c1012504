"""Ingest into a batch record, against raw pyarrow doing the same work in the same run.

Prints:
- columnar: RecordWriter.add_samples vs a raw ``pyarrow.ipc`` stream writer (1 MiB buffered
  file) fed the same columns in the same batch sizes (target: ratio >= 0.5);
- per-sample: RecordWriter.add_sample on ready-made Sample models (target: >= 500 k/s), and
  the same loop appending the fields to python lists + ``pa.array`` + raw stream write.

    .venv/bin/python benchmarks/records_ingest.py [--rows N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from cellauto.records import RecordWriter
from cellauto.schema import BatchInfo, Sample

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHANNELS = [f"chamber.var{i}" for i in range(16)]


def columnar_batches(rows: int, size: int) -> list[pa.RecordBatch]:
    devices = pa.array(["cocoon-1", "prodigy-1"])
    channels = pa.array(CHANNELS)
    units = pa.array(["Cel"])
    t0 = int(T0.timestamp() * 1e6)
    out = []
    for start in range(0, rows, size):
        n = min(size, rows - start)
        idx = pa.array([i % 2 for i in range(n)], pa.int32())
        ch = pa.array([i % len(CHANNELS) for i in range(n)], pa.int32())
        zero = pa.array([0] * n, pa.int32())
        out.append(
            pa.RecordBatch.from_pydict(
                {
                    "device_id": pa.DictionaryArray.from_arrays(idx, devices),
                    "channel": pa.DictionaryArray.from_arrays(ch, channels),
                    "unit": pa.DictionaryArray.from_arrays(zero, units),
                    "timestamp": pa.array(
                        range(t0 + start, t0 + start + n), pa.timestamp("us", tz="UTC")
                    ),
                    "value": pa.array([float(i) for i in range(n)], pa.float64()),
                    "seq": pa.array(range(start, start + n), pa.int64()),
                }
            )
        )
    return out


def raw_write(folder: Path, batches: list[pa.RecordBatch]) -> float:
    start = time.perf_counter()
    sink = pa.BufferedOutputStream(pa.OSFile(str(folder / "raw.arrows"), "wb"), 1 << 20)
    with ipc.new_stream(sink, batches[0].schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    sink.close()
    return time.perf_counter() - start


def ours_columnar(folder: Path, batches: list[pa.RecordBatch]) -> float:
    writer = RecordWriter.create(folder / "rec", BatchInfo(batch_id="B", product="p"))
    start = time.perf_counter()
    for batch in batches:
        writer.add_samples(batch)
    writer.flush()
    elapsed = time.perf_counter() - start
    writer.abandon()
    return elapsed


def make_samples(n: int) -> list[Sample]:
    return [
        Sample(
            device_id="cocoon-1",
            channel=CHANNELS[i % len(CHANNELS)],
            timestamp=T0 + timedelta(microseconds=i),
            value=37.0 + (i % 100) / 100,
            unit="Cel",
            seq=i,
        )
        for i in range(n)
    ]


def ours_per_sample(folder: Path, samples: list[Sample]) -> float:
    writer = RecordWriter.create(folder / "rec1", BatchInfo(batch_id="B", product="p"))
    add = writer.add_sample
    start = time.perf_counter()
    for sample in samples:
        add(sample)
    writer.flush()
    elapsed = time.perf_counter() - start
    writer.abandon()
    return elapsed


def raw_per_sample(folder: Path, samples: list[Sample], size: int) -> float:
    """Python lists per column + pa.array + raw stream write, flushing every `size` rows."""
    schema = pa.schema(
        [
            ("device_id", pa.string()),
            ("channel", pa.string()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("value", pa.float64()),
            ("unit", pa.string()),
            ("seq", pa.int64()),
        ]
    )
    sink = pa.BufferedOutputStream(pa.OSFile(str(folder / "raw1.arrows"), "wb"), 1 << 20)
    writer = ipc.new_stream(sink, schema)
    cols: list[list[object]] = [[] for _ in range(6)]
    start = time.perf_counter()
    for s in samples:
        cols[0].append(s.device_id)
        cols[1].append(s.channel)
        cols[2].append(s.timestamp)
        cols[3].append(s.value)
        cols[4].append(s.unit)
        cols[5].append(s.seq)
        if len(cols[0]) >= size:
            writer.write_batch(pa.RecordBatch.from_arrays(cols, schema=schema))
            cols = [[] for _ in range(6)]
    writer.write_batch(pa.RecordBatch.from_arrays(cols, schema=schema))
    writer.close()
    sink.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=4_000_000, help="columnar rows per run")
    parser.add_argument("--samples", type=int, default=1_000_000, help="per-sample rows")
    parser.add_argument("--repeat", type=int, default=3, help="best of N")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cellauto-bench-"))
    try:
        for size in (1024, 8192, 65_536):
            batches = columnar_batches(args.rows, size)
            raw = ours = float("inf")
            for i in range(args.repeat):
                raw = min(raw, raw_write(folder, batches))
                run = folder / f"c{size}-{i}"
                run.mkdir()
                ours = min(ours, ours_columnar(run, batches))
                shutil.rmtree(run)
            print(
                f"columnar bs {size}: ours {args.rows / ours / 1e6:.2f} M rows/s, raw "
                f"{args.rows / raw / 1e6:.2f} M rows/s, ratio {raw / ours:.2f} (target >= 0.5)"
            )
        samples = make_samples(args.samples)
        ours = raw = float("inf")
        for i in range(args.repeat):
            run = folder / f"s{i}"
            run.mkdir()
            ours = min(ours, ours_per_sample(run, samples))
            raw = min(raw, raw_per_sample(run, samples, 65_536))
            shutil.rmtree(run)
        print(
            f"per-sample: ours {args.samples / ours / 1e3:.0f} k samples/s (target >= 500 k/s), "
            f"raw lists+pa.array {args.samples / raw / 1e3:.0f} k/s, ratio {raw / ours:.2f}"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
