"""What a batch report shows, gathered from a record: plain data, independent of HTML and plots.

`gather` reads the record once (vectorised with pyarrow and numpy) and returns a `ReportData`;
`ReportData.summary()` is its JSON-able form without the drawn points (the golden tests compare
it), and the renderers turn it into HTML and SVG.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from cellauto.records.audit import SIGNED_CHAIN, SIGNED_SEALED
from cellauto.records.reader import BatchRecord
from cellauto.records.verify import VerifyReport, verify
from cellauto.schema import AuditEntry, Quantity, Result

BUCKETS = 400
"""Min/max buckets per trend: at most ~800 drawn points, enough for a page-wide plot."""

FEW = 3
"""Numeric channels with fewer samples are listed with their values instead of drawn."""

IDENTIFIER_KEYS = ("patient_id", "donor_id", "lot", "lot_id")
"""Fields that identify a person or a material lot: masked unless the report is unmasked."""

_TIMELINE_KINDS = {
    "program_started": "program",
    "program_finished": "program",
    "step_started": "step",
    "step_finished": "step",
    "prompt": "prompt",
    "prompt_answered": "prompt",
    "alarm_raised": "alarm",
    "alarm_acknowledged": "alarm",
    "alarm_cleared": "alarm",
    "material_transfer": "transfer",
    "connection_changed": "connection",
    "note": "note",
}
_SAFETY_STATES = {"Held", "Holding", "Suspended", "Stopped", "Aborting", "Aborted"}


def mask(value: str | None, unmask: bool) -> str:
    """An identifier as shown: whole if `unmask`, else all but its last two characters hidden."""
    if value is None or value == "":
        return "-"
    if unmask:
        return value
    return "•" * max(len(value) - 2, 1) + value[-2:] if len(value) > 2 else "••"


def iso(time: datetime | None) -> str:
    """A UTC time as shown in the report (seconds resolution)."""
    if time is None:
        return "-"
    return time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Signature:
    """One electronic signature, as the report lists it."""

    printed_name: str
    user_id: str
    meaning: str
    signed_at: str
    audit_seq: int
    covers: str
    reason: str


@dataclass
class TimelineRow:
    """One line of a device's timeline."""

    time: str
    category: str
    what: str
    who: str = ""


@dataclass
class Limits:
    """A channel's profile limits (alarm limits shaded, engineering range noted)."""

    alarm_low: float | None = None
    alarm_high: float | None = None
    eu_low: float | None = None
    eu_high: float | None = None
    source: str = ""


@dataclass
class Trend:
    """One numeric channel of one device: the drawn (reduced) points and how many there were."""

    device_id: str
    channel: str
    unit: str
    points: int
    drawn: int
    minimum: float
    maximum: float
    limits: Limits | None
    alarms: list[tuple[str, str]] = field(default_factory=list)
    """(time, alarm code) of the alarms raised within the trend's span by the channel's
    functional unit or by the device as a whole."""
    times: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, Any]:
        """The trend without its points."""
        limits = self.limits.__dict__ if self.limits is not None else None
        return {
            "device_id": self.device_id,
            "channel": self.channel,
            "unit": self.unit,
            "points": self.points,
            "drawn": self.drawn,
            "minimum": round(self.minimum, 6),
            "maximum": round(self.maximum, 6),
            "limits": limits,
            "alarms": [list(a) for a in self.alarms],
        }


@dataclass
class DiscreteChannel:
    """A text or boolean channel, or a numeric one with too few samples to draw: how many
    samples and which values."""

    device_id: str
    channel: str
    points: int
    values: list[str]


@dataclass
class ResultRow:
    """One program run's result."""

    device_id: str
    program: str
    program_version: str
    run_id: str
    outcome: str
    started: str
    stopped: str
    runtime: str
    properties: list[tuple[str, str, str]]
    """(name, value, unit)."""


@dataclass
class ReportData:
    """Everything a batch report shows."""

    status_line: str
    sealed: bool
    header: list[tuple[str, str]]
    devices: list[tuple[str, str, str]]
    """(device id, kind, profile version)."""
    integrity_status: str
    integrity_intact: bool
    checked: list[str]
    problems: list[str]
    notes: list[str]
    signatures: list[Signature]
    timelines: dict[str, list[TimelineRow]]
    trends: list[Trend]
    discrete: list[DiscreteChannel]
    results: list[ResultRow]
    audit: list[tuple[str, ...]]
    provenance: list[tuple[str, str]]
    path: Path = Path()

    def summary(self) -> dict[str, Any]:
        """JSON-able form of the report's data (trends without their drawn points)."""
        return {
            "status_line": self.status_line,
            "sealed": self.sealed,
            "header": [list(row) for row in self.header],
            "devices": [list(row) for row in self.devices],
            "integrity": {
                "status": self.integrity_status,
                "intact": self.integrity_intact,
                "checked": self.checked,
                "problems": self.problems,
                "notes": self.notes,
            },
            "signatures": [s.__dict__ for s in self.signatures],
            "timelines": {
                device: [row.__dict__ for row in rows] for device, rows in self.timelines.items()
            },
            "trends": [t.summary() for t in self.trends],
            "discrete": [d.__dict__ for d in self.discrete],
            "results": [
                {**r.__dict__, "properties": [list(p) for p in r.properties]} for r in self.results
            ],
            "audit": [list(row) for row in self.audit],
            "provenance": [list(row) for row in self.provenance],
        }


def gather(record: BatchRecord, *, unmask: bool = False, buckets: int = BUCKETS) -> ReportData:
    """Read `record` into the data of its report (`unmask` shows patient/donor/lot ids whole)."""
    manifest = record.manifest
    checked = verify(record.path)
    entries = record.audit_entries()
    events = record.events.to_pylist()
    identities = _identities(entries, events)
    status_line = _status_line(record, checked)
    batch = manifest.batch
    header = [
        ("Batch", batch.batch_id),
        ("Product", batch.product),
        ("Recipe", " ".join(x for x in (batch.recipe, batch.recipe_version) if x) or "-"),
        ("Operator", ", ".join(batch.operators) or "-"),
        ("Lot", mask(batch.lot_id, unmask)),
        *[(key.replace("_", " ").capitalize(), mask(v, unmask)) for key, v in identities.items()],
        ("Start", iso(manifest.time_start or batch.actual_start)),
        ("End", iso(manifest.time_end or batch.actual_end)),
        ("Record", "sealed" if manifest.sealed else "OPEN (not sealed)"),
        ("Final status", manifest.seal_reason or "- (the record was never sealed)"),
        ("Identifiers", "shown in full (--unmask)" if unmask else "masked"),
        (
            "Written by",
            f"cellauto {manifest.cellauto_version}, schema {manifest.schema_version}, record "
            f"format {manifest.record_format}; device profiles: "
            + (", ".join(f"{d.kind} {d.profile_version}" for d in manifest.devices) or "-"),
        ),
    ]
    devices = [(d.device_id, d.kind or "?", d.profile_version or "?") for d in manifest.devices]
    trends, discrete = _trends(record, events, buckets)
    return ReportData(
        status_line=status_line,
        sealed=manifest.sealed,
        header=header,
        devices=devices,
        integrity_status=checked.status,
        integrity_intact=checked.intact,
        checked=_what_verify_checked(record, checked),
        problems=list(checked.problems),
        notes=list(checked.notes),
        signatures=_signatures(entries),
        timelines=_timelines(record, events, entries, unmask),
        trends=trends,
        discrete=discrete,
        results=_results(record.result_models()),
        audit=[_audit_row(e, unmask) for e in entries],
        provenance=[
            ("Record folder", record.path.name),
            ("Record format", manifest.record_format),
            ("Common schema", manifest.schema_version),
            ("Written by", f"cellauto {manifest.cellauto_version}"),
            ("Created", iso(manifest.created)),
            ("Sealed", iso(manifest.sealed_at)),
            ("Audit chain head", manifest.head or "- (open record)"),
            *[
                (f"{name}.arrow", f"{t.rows} rows, SHA-256 {t.sha256}")
                for name, t in sorted(manifest.tables.items())
            ],
            *[(a.file, f"{a.rows} rows, SHA-256 {a.sha256}") for a in manifest.addenda],
            *[(f"Torn segment {seg}", "read up to the torn write") for seg in record.torn],
        ],
        path=record.path,
    )


def _status_line(record: BatchRecord, checked: VerifyReport) -> str:
    manifest = record.manifest
    batch = manifest.batch.batch_id
    if not manifest.sealed:
        crashed = " (its writer crashed: a torn last write)" if record.torn else ""
        return (
            f"RECORD NOT SEALED: batch {batch} is still running or its writer stopped without "
            f"sealing it{crashed}; this report shows the record up to its last flush."
        )
    if not checked.intact:
        return f"RECORD BROKEN: batch {batch}: {checked.status}"
    return f"Batch {batch}: {manifest.seal_reason or 'sealed'}; record sealed and intact."


def _what_verify_checked(record: BatchRecord, checked: VerifyReport) -> list[str]:
    rows = checked.rows
    done = [
        f"the audit trail's hash chain: {rows.get('audit', 0)} entries, each a SHA-256 over its "
        "own canonical JSON and the previous entry's hash",
        "every signature's binding to the chain head (or sealed record) it signs",
        "files under files/ against the SHA-256 recorded in the audit trail when each was added",
    ]
    if record.sealed:
        done += [
            "samples.arrow, events.arrow and results.arrow against the SHA-256 digests and row "
            "counts in the record_sealed audit entry",
            "the manifest's batch and device information against the sealed copy in the audit",
            f"the chain head against the manifest; {len(record.manifest.addenda)} addenda "
            "(signatures after the seal) against their listed digests",
        ]
    else:
        done.append("the start of the trail (record_created); an open record has no table digests")
    return done


def _signatures(entries: list[AuditEntry]) -> list[Signature]:
    found = []
    for entry in entries:
        sig = entry.signature
        if sig is None:
            continue
        value = entry.value if isinstance(entry.value, dict) else {}
        signed = value.get("signed")
        if signed == SIGNED_CHAIN:
            covers = (
                f"the audit trail up to entry {entry.seq - 1} (chain head {sig.signed_hash[:16]}…)"
            )
        elif signed == SIGNED_SEALED:
            covers = (
                f"the sealed record: chain head {str(value.get('chain_head'))[:16]}… and the "
                f"sealed manifest (record hash {sig.signed_hash[:16]}…)"
            )
        else:
            covers = f"hash {sig.signed_hash[:16]}… ({entry.object})"
        found.append(
            Signature(
                printed_name=sig.printed_name,
                user_id=sig.user_id,
                meaning=sig.meaning.value,
                signed_at=iso(sig.signed_at),
                audit_seq=entry.seq,
                covers=covers,
                reason=entry.reason,
            )
        )
    return found


def _identities(entries: list[AuditEntry], events: list[dict[str, Any]]) -> dict[str, str]:
    """Patient and donor ids the batch was started for (its start entry), else its material."""
    found: dict[str, str] = {}
    for entry in entries:
        if entry.action == "batch.start" and isinstance(entry.value, dict):
            for key in ("patient_id", "donor_id"):
                value = entry.value.get(key)
                if isinstance(value, str) and value:
                    found[key] = value
    for event in events:
        if event["kind"] == "material_transfer":
            material = json.loads(event["data"]).get("material") or {}
            for key in ("patient_id", "donor_id"):
                if isinstance(material.get(key), str) and key not in found:
                    found[key] = material[key]
    return found


def _timelines(
    record: BatchRecord, events: list[dict[str, Any]], entries: list[AuditEntry], unmask: bool
) -> dict[str, list[TimelineRow]]:
    lines: dict[str, list[tuple[datetime, TimelineRow]]] = {
        d.device_id: [] for d in record.manifest.devices
    }
    lost: dict[str, datetime] = {}
    for event in events:
        kind, device = str(event["kind"]), str(event["device_id"])
        time: datetime = event["time"]
        data = json.loads(event["data"])
        row = _event_row(kind, event, data, unmask)
        if row is None and kind == "state_changed" and event["to_state"] in _SAFETY_STATES:
            row = TimelineRow(
                iso(time), "state", f"{event['from_state']} → {event['to_state']}", ""
            )
        if kind == "connection_changed":
            row = _connection_row(event, data, lost, time)
        if row is not None:
            lines.setdefault(device, []).append((time, row))
    for entry in entries:
        category, what = "", ""
        if entry.action == "prompt.answer" and entry.object.startswith("batch:"):
            category, what = "prompt", f"asked “{entry.reason}”; answered “{entry.value}”"
        elif entry.action.startswith("material.") and entry.action.endswith(".refused"):
            category = "identity"
            what = f"{entry.action} {entry.object} REFUSED: {entry.reason}"
        elif entry.action in ("device.hold", "device.abort", "alarm.decision"):
            category = "decision"
            what = f"{entry.action} {entry.object}: {entry.value or ''} {entry.reason}".strip()
        if category:
            device = entry.object.split("/")[0]
            device = device if device in lines else "batch"
            lines.setdefault(device, []).append(
                (entry.time, TimelineRow(iso(entry.time), category, what, entry.actor))
            )
    return {
        device: [row for _, row in sorted(rows, key=lambda item: item[0])]
        for device, rows in lines.items()
        if rows
    }


def _event_row(
    kind: str, event: dict[str, Any], data: dict[str, Any], unmask: bool
) -> TimelineRow | None:
    category = _TIMELINE_KINDS.get(kind)
    if category is None or kind == "connection_changed":
        return None
    message = str(event["message"])
    time = iso(event["time"])
    if kind == "prompt":
        choices = ", ".join(str(c) for c in data.get("choices") or [])
        return TimelineRow(
            time, category, f"asked “{message}”" + (f" ({choices})" if choices else "")
        )
    if kind == "prompt_answered":
        return TimelineRow(
            time, category, f"answered “{data.get('answer', message)}”", str(data.get("user", ""))
        )
    if kind.startswith("alarm_"):
        what = kind.removeprefix("alarm_")
        who = str(data.get("acknowledged_by") or "") if what == "acknowledged" else ""
        return TimelineRow(
            time,
            category,
            f"{what}: {event['alarm_code']} [{event['severity']}] {message}",
            who,
        )
    if kind == "material_transfer":
        material = data.get("material") or {}
        ids = ", ".join(
            f"{key} {mask(str(material[key]), unmask)}"
            for key in IDENTIFIER_KEYS
            if material.get(key)
        )
        volume = material.get("volume")
        amount = f", {volume.get('value')} {volume.get('unit')}" if isinstance(volume, dict) else ""
        return TimelineRow(
            time,
            category,
            f"{message} ({material.get('material', '?')}{amount}); identity checked against "
            f"the batch: {ids or 'no identifiers on the label'}",
        )
    if kind == "step_started":
        step = data.get("step") or data.get("step_number")
        return TimelineRow(time, category, f"step {step}: {message}" if step else message)
    return TimelineRow(time, category, f"{kind.replace('_', ' ')}: {message}".strip(": "))


def _connection_row(
    event: dict[str, Any], data: dict[str, Any], lost: dict[str, datetime], time: datetime
) -> TimelineRow:
    device = str(event["device_id"])
    gap = data.get("gap")
    if isinstance(gap, dict):
        start = datetime.fromisoformat(str(gap.get("from")))
        end = datetime.fromisoformat(str(gap.get("to")))
        return TimelineRow(
            iso(time),
            "gap",
            f"connection gap {iso(start)} → {iso(end)} ({_span(end - start)}): {event['message']}",
        )
    message = str(event["message"])
    lowered = message.lower()
    if "disconnect" in lowered or "lost" in lowered:
        lost.setdefault(device, time)
    elif device in lost and lowered.startswith(("connected", "reconnected")):
        start = lost.pop(device)
        return TimelineRow(iso(time), "gap", f"{message} (connection gap of {_span(time - start)})")
    return TimelineRow(iso(time), "connection", message)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"


def _profile_limits(kind: str | None, version: str | None, channel: str) -> Limits | None:
    """The alarm limits and range the shipped profile of `kind` declares for `channel`.

    Read from the profile file directly (no unit registry: building it costs more than the
    whole report); the source says when the record was written with another profile version.
    """
    raw = _shipped_profile(kind) if kind else None
    if raw is None:
        return None
    unit, _, name = channel.partition(".")
    for functional_unit in raw.get("functional_units", []):
        if functional_unit.get("name") != unit:
            continue
        for descriptor in functional_unit.get("channels", []):
            if descriptor.get("name") != name:
                continue
            alarm, eu = descriptor.get("alarm_limits") or {}, descriptor.get("eu_range") or {}
            if not alarm and not eu:
                return None
            shipped = str(raw.get("profile_version", "?"))
            source = f"{kind} profile {shipped}, {alarm.get('source') or eu.get('source')}"
            if version and version != shipped:
                source += f"; the record was written with profile {version}"
            return Limits(
                alarm_low=alarm.get("low"),
                alarm_high=alarm.get("high"),
                eu_low=eu.get("low"),
                eu_high=eu.get("high"),
                source=source,
            )
    return None


@cache
def _shipped_profile(kind: str) -> dict[str, Any] | None:
    from cellauto.profiles import profiles_dir

    try:
        with open(profiles_dir() / f"{kind}.toml", "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return None


def _trends(
    record: BatchRecord, events: list[dict[str, Any]], buckets: int
) -> tuple[list[Trend], list[DiscreteChannel]]:
    from cellauto.records.reporting.downsample import reduce_series

    kinds = {d.device_id: (d.kind, d.profile_version) for d in record.manifest.devices}
    alarms: dict[str, list[tuple[datetime, str, str]]] = {}
    for event in events:
        if event["kind"] == "alarm_raised":
            alarms.setdefault(str(event["device_id"]), []).append(
                (event["time"], str(event["alarm_code"]), str(event["source"]))
            )
    samples = record.samples.select(
        ["device_id", "channel", "timestamp", "value", "value_text", "value_bool", "unit"]
    )
    device_col = pc.cast(samples.column("device_id"), pa.string())
    channel_col = pc.cast(samples.column("channel"), pa.string())
    keys = pa.table({"d": device_col, "c": channel_col}).group_by(["d", "c"]).aggregate([])
    trends: list[Trend] = []
    discrete: list[DiscreteChannel] = []
    for device, channel in sorted(
        zip(keys.column("d").to_pylist(), keys.column("c").to_pylist(), strict=True)
    ):
        mask_ = pc.and_(pc.equal(device_col, device), pc.equal(channel_col, channel))
        part = samples.filter(mask_)
        numeric = part.filter(pc.is_valid(part.column("value")))
        if numeric.num_rows == 0:
            texts = pc.coalesce(
                part.column("value_text"), pc.cast(part.column("value_bool"), pa.string())
            )
            values = [str(v) for v in pc.unique(texts).to_pylist() if v is not None]
            discrete.append(DiscreteChannel(device, channel, part.num_rows, values[:12]))
            continue
        numeric = numeric.sort_by("timestamp")
        times = numeric.column("timestamp").cast(pa.int64()).to_numpy()
        values_ = numeric.column("value").to_numpy()
        finite = np.isfinite(values_)
        times, values_ = times[finite], values_[finite]
        if len(values_) == 0:
            continue
        if len(values_) < FEW:
            shown = ", ".join(f"{v:.6g}" for v in values_)
            discrete.append(DiscreteChannel(device, channel, len(values_), [shown]))
            continue
        drawn_t, drawn_v = reduce_series(times, values_, buckets)
        start, end = (
            datetime.fromtimestamp(times[0] / 1e6, UTC),
            datetime.fromtimestamp(times[-1] / 1e6, UTC),
        )
        units = [u for u in pc.unique(numeric.column("unit")).to_pylist() if u]
        trends.append(
            Trend(
                device_id=device,
                channel=channel,
                unit=", ".join(str(u) for u in units) or "1",
                points=len(values_),
                drawn=len(drawn_v),
                minimum=float(values_.min()),
                maximum=float(values_.max()),
                limits=_profile_limits(*kinds.get(device, (None, None)), channel),
                alarms=[
                    (iso(time), code)
                    for time, code, source in alarms.get(device, [])
                    if start <= time <= end and _concerns(source, channel)
                ],
                times=drawn_t,
                values=drawn_v,
            )
        )
    return trends, discrete


def _concerns(source: str, channel: str) -> bool:
    """Whether an alarm raised by `source` (a functional unit, or the device) is marked on the
    plot of `channel`."""
    return source in ("", "device") or channel.startswith(f"{source}.")


def _results(results: list[Result]) -> list[ResultRow]:
    rows = []
    for result in results:
        properties = []
        for name, value in result.properties.items():
            if isinstance(value, Quantity):
                properties.append((name, f"{value.value:.6g}", value.unit))
            elif isinstance(value, float):
                properties.append((name, f"{value:.6g}", "1"))
            else:
                properties.append((name, str(value), ""))
        rows.append(
            ResultRow(
                device_id=result.device_id,
                program=result.program,
                program_version=result.program_version,
                run_id=result.device_program_run_id,
                outcome=str(result.outcome),
                started=iso(result.started),
                stopped=iso(result.stopped),
                runtime=_span(result.total_runtime),
                properties=properties,
            )
        )
    return rows


def _audit_row(entry: AuditEntry, unmask: bool) -> tuple[str, ...]:
    return (
        str(entry.seq),
        iso(entry.time),
        entry.actor,
        entry.action,
        entry.object,
        _short(_masked_json(entry.value, unmask)),
        _short(_masked_json(entry.previous_value, unmask)),
        entry.reason,
        entry.hash[:12],
    )


def _masked_json(value: Any, unmask: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(_mask_tree(value, unmask), sort_keys=True, ensure_ascii=False)


def _mask_tree(value: Any, unmask: bool) -> Any:
    if isinstance(value, dict):
        return {
            k: mask(str(v), unmask)
            if k in IDENTIFIER_KEYS and v is not None
            else _mask_tree(v, unmask)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_tree(v, unmask) for v in value]
    return value


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
