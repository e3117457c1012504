"""One batch's report: `render` turns `ReportData` into the HTML document."""

from __future__ import annotations

from datetime import UTC, datetime

from cellauto.records.reporting import html
from cellauto.records.reporting.data import ReportData
from cellauto.records.reporting.plots import TrendPlotter

SECTIONS = ("header", "integrity", "timeline", "trends", "results", "audit", "provenance")
"""Section ids, in order: every report has each of them."""


def render(data: ReportData) -> str:
    """The report of one batch as one self-contained HTML page."""
    batch = dict(data.header).get("Batch", "?")
    return html.page(
        f"Batch report {batch}",
        data.status_line,
        data.sealed and data.integrity_intact,
        [
            _header(data, batch),
            _integrity(data),
            _timeline(data),
            _trends(data),
            _results(data),
            _audit(data),
            _provenance(data),
        ],
    )


def _header(data: ReportData, batch: str) -> str:
    devices = html.table(("device", "kind", "profile version"), data.devices)
    return (
        f'<section id="header"><h1>Batch report {html.escape(batch)}</h1>'
        + html.key_values(data.header)
        + "<h3>Devices</h3>"
        + devices
        + "</section>"
    )


def _integrity(data: ReportData) -> str:
    parts = [
        html.para(
            f"verify: {data.integrity_status}",
            "status " + ("ok" if data.integrity_intact else "bad"),
        ),
        "<h3>What was checked</h3>",
        html.bullets(data.checked),
    ]
    if data.problems:
        parts += ["<h3>Problems</h3>", html.bullets(data.problems)]
    if data.notes:
        parts += ["<h3>Notes</h3>", html.bullets(data.notes)]
    parts.append(f"<h3>Electronic signatures ({len(data.signatures)})</h3>")
    if data.signatures:
        parts.append(
            html.table(
                (
                    "printed name",
                    "user",
                    "meaning",
                    "signed (UTC)",
                    "audit entry",
                    "covers",
                    "reason",
                ),
                [
                    (
                        s.printed_name,
                        s.user_id,
                        s.meaning,
                        s.signed_at,
                        str(s.audit_seq),
                        s.covers,
                        s.reason,
                    )
                    for s in data.signatures
                ],
                cls="signatures",
            )
        )
    else:
        parts.append(html.para("The record carries no electronic signature.", "muted"))
    return html.section("integrity", "Integrity and signatures", *parts)


def _timeline(data: ReportData) -> str:
    parts = [
        html.para(
            "Programs, steps, prompts, alarms, material transfers (with their identity checks), "
            "connection gaps, holds and operator decisions, per device; times in UTC.",
            "muted",
        )
    ]
    for device, rows in data.timelines.items():
        parts.append(f"<h3>{html.escape(device)} ({len(rows)} entries)</h3>")
        parts.append(
            html.table(
                ("time (UTC)", "what", "detail", "by"),
                [(r.time, r.category, r.what, r.who) for r in rows],
                cls="timeline",
            )
        )
    if not data.timelines:
        parts.append(html.para("No events were recorded.", "muted"))
    return html.section("timeline", "Timeline", *parts)


def _trends(data: ReportData) -> str:
    points = sum(t.points for t in data.trends)
    drawn = sum(t.drawn for t in data.trends)
    parts = [
        html.para(
            f"{len(data.trends)} numeric channels, {points:,} samples. Long series are drawn "
            "reduced to the minimum and maximum of each of up to 400 equal-count buckets (the "
            "envelope of the full series: no spike is lost); each caption says how many points "
            f"the plot draws of how many ({drawn:,} of {points:,} in all). Shaded: beyond the "
            "profile's alarm limits (dashed); dotted: alarms raised.",
            "muted",
        )
    ]
    start = _start_us(data)
    plotter = TrendPlotter() if data.trends else None
    device = None
    for trend in data.trends:
        if trend.device_id != device:
            device = trend.device_id
            parts.append(f"<h3>{html.escape(device)}</h3>")
        limits = trend.limits
        limit_text = ""
        if limits is not None and (limits.alarm_low is not None or limits.alarm_high is not None):
            limit_text = (
                f"; alarm limits {_bound(limits.alarm_low)} to {_bound(limits.alarm_high)} "
                f"{trend.unit} ({limits.source})"
            )
        caption = (
            f"{trend.channel}: draws {trend.drawn:,} of {trend.points:,} points; range "
            f"{trend.minimum:.4g} to {trend.maximum:.4g} {trend.unit}{limit_text}"
            + (f"; alarms: {', '.join(code for _, code in trend.alarms)}" if trend.alarms else "")
        )
        assert plotter is not None
        parts.append(html.figure(plotter.svg(trend, start), caption))
    if data.discrete:
        parts.append("<h3>Text, on/off and rarely sampled channels</h3>")
        parts.append(
            html.table(
                ("device", "channel", "samples", "values seen"),
                [
                    (d.device_id, d.channel, f"{d.points:,}", ", ".join(d.values))
                    for d in data.discrete
                ],
            )
        )
    if not data.trends and not data.discrete:
        parts.append(html.para("No samples were recorded.", "muted"))
    return html.section("trends", "Trends", *parts)


def _bound(value: float | None) -> str:
    return "open" if value is None else f"{value:g}"


def _start_us(data: ReportData) -> int:
    start = dict(data.header).get("Start", "-")
    if start != "-":
        return int(
            datetime.strptime(start, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
            * 1_000_000
        )
    firsts = [int(t.times[0]) for t in data.trends if len(t.times)]
    return min(firsts) if firsts else 0


def _results(data: ReportData) -> str:
    parts = []
    for r in data.results:
        parts.append(
            f"<h3>{html.escape(f'{r.device_id}: {r.program} {r.program_version}')}"
            f" — {html.escape(r.outcome)}</h3>"
        )
        parts.append(
            html.para(f"run {r.run_id}, {r.started} to {r.stopped} UTC ({r.runtime})", "muted")
        )
        parts.append(html.table(("property", "value", "unit"), r.properties, numeric=1))
    if not data.results:
        parts.append(html.para("No program run finished with a result.", "muted"))
    return html.section("results", "Results", *parts)


def _audit(data: ReportData) -> str:
    return html.section(
        "audit",
        f"Audit trail ({len(data.audit)} entries)",
        html.table(
            ("#", "time (UTC)", "who", "action", "object", "value", "previous", "reason", "hash"),
            data.audit,
        ),
    )


def _provenance(data: ReportData) -> str:
    return html.section(
        "provenance",
        "Provenance",
        html.key_values(data.provenance),
        html.para(
            "Generated by `cellauto records report` from the record's files; the record, not "
            "this page, is the original.",
            "muted",
        ),
    )
