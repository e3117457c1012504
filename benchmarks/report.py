"""Time and size of the batch report of a demo-sized record (~235,000 samples).

Measures `cellauto records report` as a user runs it (a fresh process: imports included), then
the two phases in-process (gathering the data, rendering HTML and SVG), against drawing every
raw sample with the same matplotlib code (no reduction). Target: the report in under 5 s.

    .venv/bin/python benchmarks/report.py [RECORD]   # default: records/B-DEMO-001 (`make demo`),
                                                      # else a synthetic demo-sized record
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from cellauto.records import RecordWriter
from cellauto.records.reporting import report_data
from cellauto.records.reporting.batch import render
from cellauto.records.reporting.data import Trend
from cellauto.records.reporting.plots import trend_svg
from cellauto.schema import BatchInfo

DEMO = Path("records/B-DEMO-001")
# (channel, samples) of two devices, shaped like the demo record's busiest channels
CHANNELS = [
    ("chamber.temperature", 70_833),
    ("chamber.co2", 23_611),
    ("chamber.ph", 23_611),
    ("chamber.dissolved_oxygen", 11_806),
    ("chamber.volume", 11_806),
    ("chamber.glucose", 1_181),
    ("chamber.lactate", 1_084),
    ("chamber.cell_density", 749),
    ("reagents.temperature", 10_688),
    ("process.line_pressure", 7_517),
]
PRODIGY = [
    ("chamber.temperature", 51_840),
    ("chamber.co2", 3_845),
    ("chamber.rcf", 3_842),
    ("chamber.culture_volume", 3_845),
] + [(f"bags.volume_{i}", 400) for i in range(14)]


def synthetic(path: Path) -> Path:
    """A sealed record with ~235,000 samples over 32 channels of two devices."""
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    writer = RecordWriter.create(
        path,
        BatchInfo(batch_id=path.name, product="CAR-T (synthetic)", operators=["bench"]),
        devices=[
            {"device_id": "cocoon-1", "kind": "cocoon"},
            {"device_id": "prodigy-1", "kind": "prodigy"},
        ],
    )
    rng = np.random.default_rng(1)
    for device, channels, days in (("cocoon-1", CHANNELS, 8), ("prodigy-1", PRODIGY, 3)):
        seq = 0
        for channel, n in channels:
            step = timedelta(days=days) / n
            writer.add_samples(
                pa.table(
                    {
                        "device_id": [device] * n,
                        "channel": [channel] * n,
                        "unit": ["1"] * n,
                        "timestamp": pa.array(
                            [t0 + i * step for i in range(n)], pa.timestamp("us", tz="UTC")
                        ),
                        "value": rng.normal(37, 0.2, n),
                        "seq": np.arange(seq, seq + n),
                    }
                )
            )
            seq += n
    writer.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", nargs="?", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        record = args.record or (DEMO if DEMO.is_dir() else synthetic(Path(tmp) / "B-SYNTH"))
        out = Path(tmp) / "report.html"
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cellauto.cli",
                "records",
                "report",
                str(record),
                "-o",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        cold = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        size = out.stat().st_size

        started = time.perf_counter()
        data = report_data(record)
        gathered = time.perf_counter() - started
        started = time.perf_counter()
        render(data)
        rendered = time.perf_counter() - started

        samples = sum(t.points for t in data.trends)
        drawn = sum(t.drawn for t in data.trends)
        full = report_data(record)
        for trend in full.trends:  # the same plots with every raw sample
            trend.times, trend.values = _raw(record, trend)
        started = time.perf_counter()
        raw_size = sum(len(trend_svg(t, 0)) for t in full.trends)
        raw_time = time.perf_counter() - started

    print(
        f"record {record}: {samples:,} numeric samples in {len(data.trends)} plots, {drawn:,} drawn"
    )
    print(
        f"cellauto records report (fresh process): {cold:.2f} s wall, {cpu:.2f} s CPU "
        "(target < 5 s; wall time grows with other load on the machine)"
    )
    print(f"  in-process: gather {gathered:.2f} s, render {rendered:.2f} s")
    print(f"  file size: {size / 1024:.0f} KiB")
    print(
        f"plots of every raw sample (no reduction): {raw_time:.2f} s, SVG {raw_size / 1024:.0f} "
        f"KiB; ours: {rendered / raw_time:.2f}x the time, {size / raw_size:.2f}x the size"
    )


def _raw(record: Path, trend: Trend) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.compute as pc

    from cellauto.records import open_batch

    samples = open_batch(record).samples
    part = samples.filter(
        pc.and_(
            pc.equal(pc.cast(samples.column("device_id"), pa.string()), trend.device_id),
            pc.equal(pc.cast(samples.column("channel"), pa.string()), trend.channel),
        )
    ).sort_by("timestamp")
    part = part.filter(pc.is_valid(part.column("value")))
    return part.column("timestamp").cast(pa.int64()).to_numpy(), part.column("value").to_numpy()


if __name__ == "__main__":
    main()
