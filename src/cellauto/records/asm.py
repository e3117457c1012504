"""Allotrope Simple Model (ASM) exports of a record: cell counts, metabolites, bioreactor trends.

Three documents, each written only if the record has data for it:

- ``cell-counting.json`` (ASM cell-counting REC/2024/09): one measurement per device and
  timestamp of the cell-count channels (viability, cell density, total cells).
- ``solution-analyzer.json`` (ASM solution-analyzer REC/2024/09): one measurement per device and
  timestamp of the metabolite channels (glucose, lactate, ..., pH); dissolved oxygen, which ASM
  has no field for, goes in the measurement's custom information document.
- ``automated-reactors.json`` (ASM automated-reactors REC/2025/03): one data cube per numeric
  channel, dimension ``elapsed time`` [s] since the record's first sample, one measure.

Units are mapped from UCUM by `UCUM_TO_ASM`; a numeric channel whose unit is not in it is listed
in `AsmExport.not_exported`, as are text and boolean channels, events, alarms, the audit trail,
results and files (see docs/records.md).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cellauto._version import __version__
from cellauto.records.reader import BatchRecord, open_batch

CELL_COUNTING_MANIFEST = (
    "http://purl.allotrope.org/manifests/cell-counting/REC/2024/09/cell-counting.manifest"
)
SOLUTION_ANALYZER_MANIFEST = (
    "http://purl.allotrope.org/manifests/solution-analyzer/REC/2024/09/solution-analyzer.manifest"
)
AUTOMATED_REACTORS_MANIFEST = (
    "http://purl.allotrope.org/manifests/automated-reactors/REC/2025/03/automated-reactors.manifest"
)

UCUM_TO_ASM: dict[str, tuple[str, float]] = {
    "Cel": ("degC", 1.0),
    "%": ("%", 1.0),
    "%{air_saturation}": ("%", 1.0),
    "[pH]": ("pH", 1.0),
    "mmol/L": ("mmol/L", 1.0),
    "g/L": ("g/L", 1.0),
    "mg/L": ("mg/L", 1.0),
    "{cells}/mL": ("10^6 cells/mL", 1e-6),
    "{cells}": ("cell", 1.0),
    "mL": ("mL", 1.0),
    "L": ("L", 1.0),
    "mL/min": ("mL/min", 1.0),
    "kPa": ("kPa", 1.0),
    "Pa": ("Pa", 1.0),
    "mm[Hg]": ("mmHg", 1.0),
    "{rev}/min": ("rev/min", 1.0),
    "s": ("s", 1.0),
    "min": ("min", 1.0),
    "h": ("h", 1.0),
    "1": ("(unitless)", 1.0),
}
"""UCUM unit -> (ASM/QUDT unit symbol, factor that converts a UCUM value to the ASM unit)."""

CELL_COUNTING_FIELDS: dict[str, str] = {
    "viability": "viability (cell counter)",
    "viable_cell_density": "viable cell density (cell counter)",
    "cell_density": "total cell density (cell counter)",
    "cell_concentration": "total cell density (cell counter)",
    "total_cell_density": "total cell density (cell counter)",
    "dead_cell_density": "dead cell density (cell counter)",
    "total_cells": "total cell count",
    "cell_count": "total cell count",
    "viable_cells": "viable cell count",
}
"""Channel variable (the part after the functional unit) -> ASM cell-counting field."""

ANALYTES: dict[str, str] = {
    "glucose": "glucose",
    "lactate": "lactate",
    "glutamine": "glutamine",
    "glutamate": "glutamate",
    "ammonium": "ammonium",
}
"""Channel variable -> ASM analyte name (an analyte document with a molar concentration)."""

SOLUTION_FIELDS: dict[str, str] = {"ph": "pH"}
"""Channel variable -> ASM solution-analyzer measurement field."""

SOLUTION_CUSTOM: dict[str, str] = {"dissolved_oxygen": "dissolved oxygen (air saturation)"}
"""Channel variable -> custom information key (what the solution-analyzer schema lacks)."""

ALWAYS_NOT_EXPORTED = (
    "events (state transitions, commands, steps, prompts, transfers): no ASM technique holds them",
    "alarms: no ASM technique holds them",
    "audit trail and signatures: ASM has no audit trail; the chain head is in custom information",
    "results (program runs): only their batch and device identify the ASM measurements",
    "files under files/: not referenced by the ASM documents",
    "sample quality and seq: quality other than good is in custom information; seq is dropped",
)


@dataclass
class AsmExport:
    """ASM documents of one record (technique -> JSON document), and what they leave out."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_exported: list[str] = field(default_factory=list)


def _variable(channel: str) -> str:
    return channel.rsplit(".", 1)[-1]


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _quantity(value: float, ucum: str) -> dict[str, Any]:
    unit, factor = UCUM_TO_ASM[ucum]
    return {"value": value * factor, "unit": unit}


def _systems(record: BatchRecord) -> dict[str, Any]:
    manifest = record.manifest
    data_system: dict[str, Any] = {
        "ASM file identifier": f"{record.batch_id}",
        "database primary key": record.batch_id,
        "data system instance identifier": f"cellauto record {record.batch_id}",
        "software name": "cellauto",
        "software version": manifest.cellauto_version,
        "ASM converter name": "cellauto",
        "ASM converter version": __version__,
        "custom information document": {
            "record format": manifest.record_format,
            "schema version": manifest.schema_version,
            "record state": manifest.state,
            "audit chain head": manifest.head or "",
            "product": manifest.batch.product,
        },
    }
    devices = [
        {
            "device identifier": d.device_id,
            "device type": "cell processing system",
            "model number": d.kind or "unknown",
        }
        for d in manifest.devices
    ]
    system: dict[str, Any] = {"data system document": data_system}
    if devices:
        system["device system document"] = {
            "device identifier": manifest.devices[0].device_id,
            "device document": devices,
        }
    return system


def _numeric(record: BatchRecord) -> pa.Table:
    samples = record.samples.select(
        ["device_id", "channel", "timestamp", "value", "unit", "quality"]
    )
    samples = samples.filter(pc.is_valid(samples.column("value")))
    return samples.filter(pc.invert(pc.is_nan(samples.column("value"))))


def _groups(
    rows: Iterable[dict[str, Any]],
) -> dict[tuple[str, datetime], list[dict[str, Any]]]:
    groups: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["device_id"], row["timestamp"]), []).append(row)
    return dict(sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])))


def _select(numeric: pa.Table, variables: Iterable[str]) -> list[dict[str, Any]]:
    wanted = set(variables)
    channels = numeric.column("channel").unique().to_pylist()
    chosen = [c for c in channels if _variable(c) in wanted]
    if not chosen:
        return []
    part = numeric.filter(pc.is_in(numeric.column("channel").cast(pa.string()), pa.array(chosen)))
    rows: list[dict[str, Any]] = part.to_pylist()
    return rows


def _quality_note(rows: list[dict[str, Any]]) -> dict[str, Any]:
    bad = {r["channel"]: r["quality"] for r in rows if r["quality"] != "good"}
    return {f"quality of {channel}": quality for channel, quality in sorted(bad.items())}


def _measurement_base(batch_id: str, device: str, when: datetime, kind: str) -> dict[str, Any]:
    return {
        "measurement identifier": f"{batch_id}/{device}/{kind}/{_time(when)}",
        "measurement time": _time(when),
        "sample document": {"sample identifier": batch_id, "batch identifier": batch_id},
        "device control aggregate document": {
            "device control document": [
                {"device type": "cell processing system", "device identifier": device}
            ]
        },
    }


_VIABLE = "viable cell density (cell counter)"
_TOTAL = "total cell density (cell counter)"
_VIABILITY = "viability (cell counter)"


def _viable_density(processed: dict[str, Any], note: dict[str, Any]) -> bool:
    """Ensure the viable cell density ASM requires: derive it from total density x viability
    (noted in custom information) when the record has only those."""
    if _VIABLE in processed:
        return True
    if _TOTAL not in processed or _VIABILITY not in processed:
        return False
    total, viability = processed[_TOTAL], processed[_VIABILITY]
    processed[_VIABLE] = {"value": total["value"] * viability["value"] / 100, "unit": total["unit"]}
    note["viable cell density source"] = "derived: total cell density x viability / 100"
    return True


def _cell_counting(record: BatchRecord, numeric: pa.Table, skipped: list[str]) -> dict[str, Any]:
    rows = _select(numeric, CELL_COUNTING_FIELDS)
    documents = []
    for (device, when), group in _groups(rows).items():
        processed: dict[str, Any] = {}
        for row in group:
            if row["unit"] not in UCUM_TO_ASM:
                skipped.append(f"{device} {row['channel']}: unit {row['unit']} has no ASM unit")
                continue
            processed[CELL_COUNTING_FIELDS[_variable(row["channel"])]] = _quantity(
                row["value"], row["unit"]
            )
        note = _quality_note(group)
        if not _viable_density(processed, note):
            skipped.append(
                f"{device} cell counts at {_time(when)}: no viable cell density, and no total "
                "cell density with viability to derive it (ASM cell-counting requires it)"
            )
            continue
        if note:
            processed["custom information document"] = note
        measurement = _measurement_base(record.batch_id, device, when, "cell-counting")
        measurement["processed data aggregate document"] = {"processed data document": [processed]}
        documents.append(
            {"measurement aggregate document": {"measurement document": [measurement]}}
        )
    return _technique_document(CELL_COUNTING_MANIFEST, "cell counting", record, documents)


def _technique_document(
    manifest: str, technique: str, record: BatchRecord, documents: list[dict[str, Any]]
) -> dict[str, Any]:
    """One technique's ASM document around its measurement documents ({} when there are none)."""
    if not documents:
        return {}
    return {
        "$asm.manifest": manifest,
        f"{technique} aggregate document": {
            **_systems(record),
            f"{technique} document": documents,
        },
    }


def _solution_analyzer(
    record: BatchRecord, numeric: pa.Table, skipped: list[str]
) -> dict[str, Any]:
    rows = _select(numeric, [*ANALYTES, *SOLUTION_FIELDS, *SOLUTION_CUSTOM])
    documents = []
    for (device, when), group in _groups(rows).items():
        measurement = _measurement_base(record.batch_id, device, when, "solution-analyzer")
        analytes: list[dict[str, Any]] = []
        custom: dict[str, Any] = _quality_note(group)
        for row in group:
            variable, unit = _variable(row["channel"]), row["unit"]
            if unit not in UCUM_TO_ASM:
                skipped.append(f"{device} {row['channel']}: unit {unit} has no ASM unit")
            elif variable in ANALYTES and UCUM_TO_ASM[unit][0] == "mmol/L":
                analytes.append(
                    {
                        "analyte name": ANALYTES[variable],
                        "molar concentration": _quantity(row["value"], unit),
                    }
                )
            elif variable in ANALYTES and UCUM_TO_ASM[unit][0] == "g/L":
                analytes.append(
                    {
                        "analyte name": ANALYTES[variable],
                        "mass concentration": _quantity(row["value"], unit),
                    }
                )
            elif variable in SOLUTION_FIELDS and UCUM_TO_ASM[unit][0] == "pH":
                measurement[SOLUTION_FIELDS[variable]] = _quantity(row["value"], unit)
            elif variable in SOLUTION_CUSTOM:
                custom[SOLUTION_CUSTOM[variable]] = _quantity(row["value"], unit)
            else:
                skipped.append(f"{device} {row['channel']}: unit {unit} does not fit ASM")
        if analytes:
            measurement["analyte aggregate document"] = {"analyte document": analytes}
        if custom:
            measurement["custom information document"] = custom
        documents.append(
            {"measurement aggregate document": {"measurement document": [measurement]}}
        )
    return _technique_document(SOLUTION_ANALYZER_MANIFEST, "solution analyzer", record, documents)


def _automated_reactors(
    record: BatchRecord, numeric: pa.Table, skipped: list[str]
) -> dict[str, Any]:
    if numeric.num_rows == 0:
        return {}
    start = pc.min(numeric.column("timestamp"))
    elapsed_all = pc.divide(
        pc.cast(pc.subtract(numeric.column("timestamp"), start), pa.int64()), 1e6
    )
    numeric = numeric.append_column("elapsed", elapsed_all)
    keys = numeric.group_by(["device_id", "channel", "unit"]).aggregate([]).to_pylist()
    documents: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(keys, key=lambda k: (k["device_id"], k["channel"], str(k["unit"]))):
        device, channel, ucum = key["device_id"], key["channel"], key["unit"]
        if ucum not in UCUM_TO_ASM:
            skipped.append(f"{device} {channel}: unit {ucum} has no ASM unit (trend not exported)")
            continue
        mask = pc.and_(
            pc.equal(numeric.column("device_id").cast(pa.string()), device),
            pc.equal(numeric.column("channel").cast(pa.string()), channel),
        )
        part = numeric.filter(
            pc.and_(mask, pc.equal(numeric.column("unit").cast(pa.string()), ucum))
        )
        part = part.sort_by("elapsed")
        unit, factor = UCUM_TO_ASM[ucum]
        values = part.column("value")
        if factor != 1.0:
            values = pc.multiply(values, factor)
        cube = {
            "label": channel,
            "cube-structure": {
                "dimensions": [
                    {"@componentDatatype": "double", "concept": "elapsed time", "unit": "s"}
                ],
                "measures": [{"@componentDatatype": "double", "concept": channel, "unit": unit}],
            },
            "data": {
                "dimensions": [part.column("elapsed").to_pylist()],
                "measures": [values.to_pylist()],
            },
        }
        documents.setdefault(device, []).append(
            {
                "measurement identifier": f"{record.batch_id}/{device}/trend/{channel}",
                "measurement time": _time(start.as_py()),
                "detection type": "online sensor",
                "analyte name": channel,
                "probe identifier": f"{device}/{channel}",
                "sample document": {
                    "sample identifier": record.batch_id,
                    "batch identifier": record.batch_id,
                },
                "data cube": cube,
            }
        )
    if not documents:
        return {}
    return {
        "$asm.manifest": AUTOMATED_REACTORS_MANIFEST,
        "automated reactor aggregate document": {
            **_systems(record),
            "automated reactor document": [
                {
                    "measurement aggregate document": {
                        "experiment identifier": record.batch_id,
                        "measurement document": measurements,
                    }
                }
                for measurements in documents.values()
            ],
        },
    }


def asm_documents(record: BatchRecord | str | os.PathLike[str]) -> AsmExport:
    """The ASM documents of one record (see the module docstring), and what they leave out."""
    rec = record if isinstance(record, BatchRecord) else open_batch(record)
    numeric = _numeric(rec)
    skipped: list[str] = []
    export = AsmExport()
    for technique, build in (
        ("cell-counting", _cell_counting),
        ("solution-analyzer", _solution_analyzer),
        ("automated-reactors", _automated_reactors),
    ):
        document = build(rec, numeric, skipped)
        if document:
            export.documents[technique] = document
    text = rec.samples.filter(pc.is_null(rec.samples.column("value")))
    for channel in sorted(set(text.column("channel").to_pylist())):
        skipped.append(f"{channel}: text or boolean channel (ASM data cubes are numeric)")
    export.not_exported = sorted(set(skipped)) + list(ALWAYS_NOT_EXPORTED)
    return export


def _finite(document: Any) -> Any:
    """ASM is JSON: NaN and infinities have no representation, so they become null."""
    if isinstance(document, float) and not math.isfinite(document):
        return None
    if isinstance(document, dict):
        return {k: _finite(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_finite(v) for v in document]
    return document


def export_asm(
    record: BatchRecord | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    force: bool = False,
) -> list[Path]:
    """Write ``<technique>.json`` for each ASM technique the record has data for, and
    ``not-exported.json`` listing what the documents leave out, into the new folder `out`
    (written aside and moved into place; an existing folder is replaced only with `force`)."""
    from cellauto.records.export import into_new_folder

    rec = record if isinstance(record, BatchRecord) else open_batch(record)
    export = asm_documents(rec)

    def write(folder: Path) -> None:
        for technique, document in export.documents.items():
            (folder / f"{technique}.json").write_text(
                json.dumps(_finite(document), indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                encoding="utf-8",
            )
        (folder / "not-exported.json").write_text(
            json.dumps({"batch_id": rec.batch_id, "not exported": export.not_exported}, indent=1)
            + "\n",
            encoding="utf-8",
        )

    return into_new_folder(out, force, f"batch {rec.batch_id}", write)
