"""A report across batches: growth and metabolite curves overlaid, final results side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from cellauto.errors import RecordError
from cellauto.records.reader import BatchRecord, find_batches, open_batch
from cellauto.records.reporting import html
from cellauto.records.reporting.data import _results, iso
from cellauto.records.reporting.downsample import reduce_series
from cellauto.records.reporting.plots import overlay_svg
from cellauto.records.verify import verify

OVERLAID = ("cell", "glucose", "lactate", "viability")
"""Channels whose name contains one of these are overlaid across batches."""

_Series = tuple[str, npt.NDArray[np.float64], npt.NDArray[np.float64]]


def render_comparison(root: Path, *, product: str | None = None) -> str:
    """The comparison page of the batches under `root` (only `product`'s, if given)."""
    records = [open_batch(path) for path in find_batches(root)]
    if product is not None:
        records = [r for r in records if r.manifest.batch.product == product]
    if not records:
        raise RecordError(
            f"no batch records under {root}" + (f" of product {product!r}" if product else "")
        )
    products: dict[str, list[BatchRecord]] = {}
    for record in records:
        products.setdefault(record.manifest.batch.product, []).append(record)
    open_count = sum(1 for r in records if not r.sealed)
    status = f"Comparison of {len(records)} batches under {root.name}" + (
        f"; {open_count} of them NOT SEALED (shown up to their last flush)" if open_count else ""
    )
    sections = [
        f'<section id="header"><h1>Batch comparison: {html.escape(root.name)}</h1>'
        + html.table(
            ("batch", "product", "record", "final status", "start", "end", "verify"),
            [
                (
                    r.batch_id,
                    r.manifest.batch.product,
                    r.manifest.state,
                    r.manifest.seal_reason or "-",
                    iso(r.manifest.time_start or r.manifest.batch.actual_start),
                    iso(r.manifest.time_end),
                    verify(r.path).status,
                )
                for r in records
            ],
        )
        + "</section>"
    ]
    for name, group in products.items():
        sections.append(_product(name, group))
    return html.page(f"Batch comparison {root.name}", status, open_count == 0, sections)


def _product(name: str, records: list[BatchRecord]) -> str:
    curves: dict[tuple[str, str], list[_Series]] = {}
    units: dict[tuple[str, str], str] = {}
    for record in records:
        kinds = {d.device_id: d.kind or d.device_id for d in record.manifest.devices}
        start = record.manifest.time_start or record.manifest.batch.actual_start
        for (device, channel), unit, times, values in _channels(record):
            start_us = int(start.timestamp() * 1e6) if start else int(times[0])
            key = (kinds.get(device, device), channel)
            units[key] = unit
            curves.setdefault(key, []).append((record.batch_id, (times - start_us) / 3.6e9, values))
    parts = [f"<h2>{html.escape(name)}: {len(records)} batches</h2>"]
    parts.append(
        html.para(
            "Curves against hours since each batch's start; each drawn as the min/max envelope "
            "of up to 300 buckets.",
            "muted",
        )
    )
    for (kind, channel), series in sorted(curves.items()):
        parts.append(
            html.figure(
                overlay_svg(f"{kind} · {channel}", units[(kind, channel)], series),
                f"{channel} on {kind}: {len(series)} batches overlaid",
            )
        )
    parts.append("<h3>Final results side by side</h3>")
    parts.append(_results_table(records))
    return f'<section class="product">{"".join(parts)}</section>'


def _channels(
    record: BatchRecord,
) -> list[tuple[tuple[str, str], str, npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    samples = record.samples.select(["device_id", "channel", "timestamp", "value", "unit"])
    samples = samples.filter(pc.is_valid(samples.column("value")))
    device_col = pc.cast(samples.column("device_id"), pa.string())
    channel_col = pc.cast(samples.column("channel"), pa.string())
    keys = pa.table({"d": device_col, "c": channel_col}).group_by(["d", "c"]).aggregate([])
    found = []
    for device, channel in zip(
        keys.column("d").to_pylist(), keys.column("c").to_pylist(), strict=True
    ):
        if not any(word in str(channel) for word in OVERLAID):
            continue
        part = samples.filter(
            pc.and_(pc.equal(device_col, device), pc.equal(channel_col, channel))
        ).sort_by("timestamp")
        times = part.column("timestamp").cast(pa.int64()).to_numpy()
        values = part.column("value").to_numpy()
        finite = np.isfinite(values)
        if not finite.any():
            continue
        units = [u for u in pc.unique(part.column("unit")).to_pylist() if u]
        drawn_t, drawn_v = reduce_series(times[finite], values[finite], 300)
        found.append(((str(device), str(channel)), ", ".join(units) or "1", drawn_t, drawn_v))
    return found


def _results_table(records: list[BatchRecord]) -> str:
    columns = [r.batch_id for r in records]
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for record in records:
        for result in _results(record.result_models()):
            rows.setdefault((result.program, "outcome"), {})[record.batch_id] = result.outcome
            for prop, value, unit in result.properties:
                label = f"{value} {unit}".strip() if unit not in ("", "1") else value
                rows.setdefault((result.program, prop), {})[record.batch_id] = label
    body = [
        (program, prop, *(values.get(batch, "-") for batch in columns))
        for (program, prop), values in rows.items()
    ]
    if not body:
        return html.para("No batch has a result.", "muted")
    return html.table(("program", "property", *columns), body, numeric=2)
