"""The site catalog (Apache Iceberg through pyiceberg) against raw pyarrow and per-batch files.

1. Publishing one sealed record of 10 M samples (verify + all tables + batches row): rows per
   second, against pyarrow writing the same samples table to one Parquet file (zstd) directly.
   Target: ratio >= 0.5.
2. A query over 100 published batches (each batch's final cell density) through the catalog
   (DuckDB over the snapshot's Parquet files; Polars ``scan_iceberg``), against the same query
   with DuckDB over the per-batch Arrow files (``open_batches``).

    .venv/bin/python benchmarks/catalog.py [--samples 10000000] [--batches 100]  (0: skip)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cellauto.records import RecordWriter, catalog, open_batch, open_batches
from cellauto.schema import BatchInfo

CHANNELS = [f"chamber.var{i}" for i in range(15)] + ["chamber.cell_density"]
BATCH = 65_536
T0 = datetime(2026, 1, 1, tzinfo=UTC)

FINAL_DENSITY = (
    "select batch_id, arg_max(value, timestamp) as final_density from samples "
    "where channel = 'chamber.cell_density' group by batch_id order by batch_id"
)


def make_record(folder: Path, batch_id: str, samples: int, start: datetime = T0) -> Path:
    """A sealed record of one Cocoon with `samples` numeric samples over 16 channels."""
    path = folder / batch_id
    t0 = int(start.timestamp() * 1e6)
    channels = pa.array(CHANNELS)
    with RecordWriter.create(
        path,
        BatchInfo(batch_id=batch_id, product="CAR-T"),
        devices=[{"device_id": "cocoon-1", "kind": "cocoon"}],
        flush_interval=None,
    ) as writer:
        for first in range(0, samples, BATCH):
            n = min(BATCH, samples - first)
            ticks = pa.array(range(first, first + n), pa.int64())
            writer.add_samples(
                pa.record_batch(
                    {
                        "device_id": pa.array(["cocoon-1"] * n),
                        "channel": channels.take(pc.bit_wise_and(ticks, 15)),
                        "unit": pa.array(["1"] * n),
                        "timestamp": pc.add(ticks, pa.scalar(t0, pa.int64())).cast(
                            pa.timestamp("us", tz="UTC")
                        ),
                        "value": pc.multiply(ticks.cast(pa.float64()), 0.001),
                        "seq": ticks,
                    }
                )
            )
    return path


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def publish_benchmark(work: Path, samples: int) -> None:
    print(f"making a sealed record of {samples:,} samples ...")
    record = make_record(work / "big", "B-BIG", samples)
    table = open_batch(record).samples
    raw, _ = timed(lambda: pq.write_table(table, work / "raw.parquet", compression="zstd"))
    site = catalog(f"sqlite:///{work}/site1/catalog.db")
    for name in ("batches", "samples", "events", "audit", "results"):
        site.table(name)  # table creation is once per site, not per publish
    ours, done = timed(lambda: site.publish(record))
    assert done.rows["samples"] == samples
    files = list(site.table("samples").refresh().scan().plan_files())
    assert sum(task.file.record_count for task in files) == samples
    again, done = timed(lambda: site.publish(record))
    assert done.action == "unchanged"
    print(f"pyarrow -> one Parquet file:    {raw:7.2f} s  {samples / raw:>12,.0f} rows/s")
    print(f"publish (verify + 5 tables):    {ours:7.2f} s  {samples / ours:>12,.0f} rows/s")
    print(f"re-publish (unchanged):         {again:7.2f} s")
    print(f"samples data files written:     {len(files):7d}")
    print(f"ratio (ours/pyarrow rows/s):    {raw / ours:7.2f}  (target >= 0.5)")


def query_benchmark(work: Path, batches: int) -> None:
    per_batch = 16 * 1000
    folder = work / "many"
    print(f"making and publishing {batches} records of {per_batch:,} samples ...")
    paths = [
        make_record(folder, f"B-{i:04d}", per_batch, T0 + timedelta(days=i)) for i in range(batches)
    ]
    site = catalog(f"sqlite:///{work}/site2/catalog.db")
    published, _ = timed(lambda: site.publish_many(paths))
    print(f"published {batches} batches in {published:.1f} s ({published / batches:.2f} s each)")

    def on_files() -> list[tuple[str, float]]:
        con = duckdb.connect()
        con.register("samples", open_batches(folder))
        rows: list[tuple[str, float]] = con.sql(FINAL_DENSITY).fetchall()
        return rows

    def on_catalog() -> list[tuple[str, float]]:
        con = site.duckdb(tables=["samples"])
        rows: list[tuple[str, float]] = con.sql(FINAL_DENSITY).fetchall()
        return rows

    def on_polars() -> list[tuple[str, float]]:
        frame = (
            site.polars("samples")
            .filter(pl.col("channel") == "chamber.cell_density")
            .group_by("batch_id")
            .agg(pl.col("value").sort_by("timestamp").last().alias("final_density"))
            .sort("batch_id")
            .collect()
        )
        return [(row[0], row[1]) for row in frame.iter_rows()]

    results = {}
    for name, query in (
        ("DuckDB on per-batch Arrow files", on_files),
        ("DuckDB through the catalog", on_catalog),
        ("Polars scan_iceberg", on_polars),
    ):
        query()  # warm the page cache and the catalog
        best = min(timed(query)[0] for _ in range(3))
        results[name] = (best, query())
        print(f"{name + ':':<34} {best * 1000:8.1f} ms")
    reference = results["DuckDB on per-batch Arrow files"]
    for name, (seconds, rows) in results.items():
        assert len(rows) == batches, name
        assert rows == reference[1], name
        print(f"ratio {name} / per-batch files: {seconds / reference[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cellauto-catalog-"))
    try:
        if args.samples:
            publish_benchmark(work, args.samples)
        if args.batches:
            query_benchmark(work, args.batches)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
