"""Analyse batch records: DuckDB across batches, Polars for one, and a growth-curve PNG.

    python examples/analysis.py [RECORDS_FOLDER]

With no records in the folder it first runs a short simulated Prodigy batch, so the example
always has data (needs the `analysis` extra: duckdb, polars, matplotlib). It also publishes the
sealed records to a site catalog, Apache Iceberg tables in ./catalog/ (the `catalog` extra), and
queries across every published batch there.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import duckdb
import matplotlib
import polars as pl

import cellauto
from cellauto.records import catalog, find_batches, open_batch, open_batches

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # after choosing the backend


async def simulate_one_batch(records: Path) -> None:
    """A 13-day Prodigy TCT run, simulated at maximum speed with a daily in-process sample,
    recorded into `records`."""
    async with cellauto.Batch(
        "B-ANALYSIS", product="CAR-T", operator="analyst", records=records, sim=True
    ) as batch:
        prodigy = await batch.connect("prodigy+sim://")
        run = await prodigy.start_program("TCT")
        while not run.done():
            await batch.sleep(24 * 3600)
            if (run.status.step_name or "").startswith("Expansion"):
                await prodigy.command("take_sample", volume=cellauto.Q(2, "mL"))
        await run


def main(records: Path) -> None:
    if not records.is_dir() or next(find_batches(records), None) is None:
        print(f"no batch records in {records}: simulating one first")
        asyncio.run(simulate_one_batch(records))

    # Every batch at once, without loading them into memory: a DuckDB query over a dataset.
    con = duckdb.connect()
    con.register("samples", open_batches(records))
    print("samples per batch and channel (first 8):")
    rows = con.execute(
        "SELECT batch_id, channel, count(*) AS n, min(value) AS lo, max(value) AS hi "
        "FROM samples WHERE value IS NOT NULL GROUP BY ALL ORDER BY batch_id, channel LIMIT 8"
    ).fetchall()
    for batch_id, channel, n, lo, hi in rows:
        print(f"  {batch_id:<12} {channel:<36} {n:>6}  {lo:>12.4g} .. {hi:<12.4g}")

    # Every published batch of a site: publish the sealed records to the catalog (idempotent),
    # then one query across batches, joined with each batch's verify result.
    site = catalog("sqlite:///catalog/catalog.db")
    for path in find_batches(records):
        if open_batch(path).sealed:
            done = site.publish(path)
            print(f"catalog: {done.batch_id} {done.action}")
    final = (
        site.duckdb()
        .sql(
            "SELECT b.batch_id, b.product, b.verify_status, arg_max(s.value, s.timestamp) AS cells "
            "FROM samples s JOIN batches b USING (batch_id) "
            "WHERE s.channel LIKE '%total_cells' GROUP BY ALL ORDER BY b.batch_id"
        )
        .fetchall()
    )
    print("final total cells per published batch:")
    for batch_id, product, status, cells in final:
        print(f"  {batch_id:<12} {product:<8} {cells:>12.4g}  ({status})")

    # One batch with Polars: the cell-count curve.
    batch_path = next(find_batches(records))
    record = open_batch(batch_path)
    cells = (
        record.polars("samples")
        .filter(pl.col("channel").cast(pl.Utf8).str.ends_with("total_cells"))
        .select("timestamp", "value")
        .unique(subset="timestamp", keep="last")
        .sort("timestamp")
        .collect()
    )
    if cells.is_empty():
        print(f"{record.batch_id}: no cell counts recorded")
        return
    start = cells["timestamp"][0]
    days = [(t - start).total_seconds() / 86_400 for t in cells["timestamp"]]
    fold = cells["value"][-1] / max(cells["value"][0], 1.0)
    print(f"{record.batch_id}: {cells.height} cell counts, {days[-1]:.1f} days, {fold:.1f}-fold")

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.semilogy(days, cells["value"].to_list(), marker=".", linewidth=1)
    axis.set_xlabel("day")
    axis.set_ylabel("total cells")
    axis.set_title(f"{record.batch_id}: growth curve")
    axis.grid(True, which="both", alpha=0.3)
    out = Path(f"{record.batch_id}-growth.png")
    figure.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("records"))
