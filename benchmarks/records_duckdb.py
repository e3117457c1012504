"""Reading a sealed record into DuckDB and grouping by channel, against DuckDB on the same data
written by hand with raw pyarrow (an uncompressed Arrow IPC file, memory-mapped; and Parquet).

Target: ours within 1.5x of the hand-written IPC file. Default 2 M samples; ``--full`` for 10 M.

    .venv/bin/python benchmarks/records_duckdb.py [--full]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cellauto.records import RecordWriter, open_batch
from cellauto.records.tables import file_schema
from cellauto.schema import BatchInfo

QUERY = "select channel, avg(value), count(*) from samples group by channel order by channel"
BATCH = 65_536


def make_batches(total: int) -> list[pa.RecordBatch]:
    t0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    channels = pa.array([f"chamber.var{i}" for i in range(16)])
    out = []
    for start in range(0, total, BATCH):
        n = min(BATCH, total - start)
        ticks = pa.array(range(start, start + n), pa.int64())
        out.append(
            pa.RecordBatch.from_pydict(
                {
                    "device_id": pa.DictionaryArray.from_arrays(
                        pa.array([i % 2 for i in range(n)], pa.int32()),
                        pa.array(["cocoon-1", "prodigy-1"]),
                    ),
                    "channel": pa.DictionaryArray.from_arrays(
                        pa.array([i % 16 for i in range(n)], pa.int32()), channels
                    ),
                    "unit": pa.DictionaryArray.from_arrays(
                        pa.array([0] * n, pa.int32()), pa.array(["Cel"])
                    ),
                    "timestamp": pc.add(ticks, pa.scalar(t0, pa.int64())).cast(
                        pa.timestamp("us", tz="UTC")
                    ),
                    "value": pc.multiply(ticks.cast(pa.float64()), 0.001),
                    "seq": ticks,
                }
            )
        )
    return out


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def _same(left: object, right: object) -> bool:
    a, b = list(left), list(right)  # type: ignore[call-overload]
    if len(a) != len(b):
        return False
    return all(
        x[0] == y[0] and x[2] == y[2] and abs(x[1] - y[1]) <= 1e-9 * abs(y[1])
        for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="10 million samples")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--compression",
        default="lz4",
        type=lambda s: None if s == "none" else s,
        help="codec of the sealed record: lz4 (default), zstd or none",
    )
    args = parser.parse_args()
    total = args.rows or (10_000_000 if args.full else 2_000_000)
    folder = Path(tempfile.mkdtemp(prefix="cellauto-bench-duckdb-"))
    try:
        batches = make_batches(total)
        writer = RecordWriter.create(folder / "rec", BatchInfo(batch_id="B", product="p"))
        for batch in batches:
            writer.add_samples(batch)
        writer.close(compression=args.compression)
        # by hand: the same rows and columns as the record holds, one uncompressed IPC file
        record_table = open_batch(folder / "rec").samples
        hand_table = record_table.cast(file_schema("samples"))
        with ipc.new_file(str(folder / "hand.arrow"), hand_table.schema) as out:
            out.write_table(hand_table, max_chunksize=BATCH)
        pq.write_table(hand_table, folder / "hand.parquet")
        del record_table, hand_table

        def ours() -> object:
            return open_batch(folder / "rec").duckdb().sql(QUERY).fetchall()

        def hand_ipc() -> object:
            samples = ipc.open_file(pa.memory_map(str(folder / "hand.arrow"))).read_all()
            con = duckdb.connect()
            con.register("samples", samples)
            return con.sql(QUERY).fetchall()

        def hand_parquet() -> object:
            relation = duckdb.sql(
                QUERY.replace("samples", f"read_parquet('{folder / 'hand.parquet'}')")
            )
            assert relation is not None
            return relation.fetchall()

        t_ours, r_ours = best(ours, args.repeat)
        t_ipc, r_ipc = best(hand_ipc, args.repeat)
        t_pq, r_pq = best(hand_parquet, args.repeat)
        assert _same(r_ours, r_ipc), "different answers"
        size = (folder / "rec" / "samples.arrow").stat().st_size / 1e6
        codec = args.compression or "uncompressed"
        print(
            f"{total / 1e6:.0f} M samples, group by channel: "
            f"ours (sealed {codec} IPC, {size:.0f} MB) "
            f"{t_ours * 1e3:.0f} ms; by hand: IPC file {t_ipc * 1e3:.0f} ms, Parquet "
            f"{t_pq * 1e3:.0f} ms; ours/hand IPC = {t_ours / t_ipc:.2f}x (target <= 1.5x), "
            f"ours/hand Parquet = {t_ours / t_pq:.2f}x"
        )
        del r_pq
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
