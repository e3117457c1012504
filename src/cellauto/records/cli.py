"""``cellauto records list | show | verify | sign | report | export``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.compute as pc

from cellauto.records.reader import BatchRecord, find_batches, open_batch
from cellauto.schema import SignatureMeaning


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``records`` command group."""
    records = commands.add_parser("records", help="list, show, verify and export batch records")
    sub = records.add_subparsers(title="records commands")

    listing = sub.add_parser("list", help="the batch records under a folder")
    listing.add_argument("root", type=Path)
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="summary of one record: devices, span, counts, alarms")
    show.add_argument("batch", type=Path, help="the batch record folder")
    show.set_defaults(handler=_show)

    check = sub.add_parser(
        "verify", help="check the audit chain and file hashes (exit 1 if broken)"
    )
    check.add_argument("batch", type=Path)
    check.set_defaults(handler=_verify)

    signing = sub.add_parser(
        "sign", help="sign a sealed record (review, approval...) in an append-only addendum"
    )
    signing.add_argument("batch", type=Path, help="the sealed batch record folder")
    signing.add_argument("--name", required=True, help="the signer's printed name")
    signing.add_argument("--user", required=True, help="the signer's user id")
    signing.add_argument("--meaning", required=True, choices=[m.value for m in SignatureMeaning])
    signing.add_argument("--reason", default="", help="why (e.g. the review's reference)")
    signing.set_defaults(handler=_sign)

    reporting = sub.add_parser(
        "report", help="the batch report (HTML with plots) of a record, or --compare a folder"
    )
    reporting.add_argument("batch", type=Path, help="the batch record (with --compare: a folder)")
    reporting.add_argument("-o", "--out", type=Path, help="output file (default: beside it)")
    reporting.add_argument(
        "--unmask", action="store_true", help="show patient, donor and lot identifiers in full"
    )
    reporting.add_argument(
        "--compare", action="store_true", help="compare the batches under a folder"
    )
    reporting.add_argument("--product", help="with --compare: only this product's batches")
    reporting.set_defaults(handler=_report)

    export = sub.add_parser(
        "export", help="export a record as Parquet, CSV, JSON Lines or Allotrope ASM JSON"
    )
    export.add_argument("batch", type=Path)
    export.add_argument("--format", choices=("parquet", "csv", "jsonl", "asm"), required=True)
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.set_defaults(handler=_export)

    from cellauto.records import catalog_cli

    catalog_cli.register(sub)


def _list(args: argparse.Namespace) -> int:
    print(f"{'batch':<20} {'state':<7} {'product':<16} {'start':<20} {'end':<20} folder")
    for path in find_batches(args.root):
        m = open_batch(path).manifest
        start = m.time_start.isoformat()[:19] if m.time_start else "-"
        end = m.time_end.isoformat()[:19] if m.time_end else "-"
        print(
            f"{m.batch.batch_id:<20} {m.state:<7} {m.batch.product:<16} {start:<20} {end:<20} "
            f"{path.name}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    record = open_batch(args.batch)
    m = record.manifest
    print(
        f"batch {m.batch.batch_id} ({m.batch.product}): {m.state}"
        + (f" ({m.seal_reason})" if m.seal_reason else "")
    )
    print(
        f"written by cellauto {m.cellauto_version}, schema {m.schema_version}, "
        f"record format {m.record_format}"
    )
    for device in m.devices:
        print(
            f"  device {device.device_id}: {device.kind or '?'} "
            f"profile {device.profile_version or '?'}"
        )
    samples, events = record.samples, record.events
    if samples.num_rows:
        low, high = pc.min_max(samples.column("timestamp")).values()
        print(
            f"samples: {samples.num_rows} "
            f"from {low.as_py().isoformat()} to {high.as_py().isoformat()}"
        )
    else:
        print("samples: 0")
    print(
        f"events: {events.num_rows}  audit entries: {record.audit.num_rows}  "
        f"results: {record.results.num_rows}"
    )
    _timeline(record)
    return 0


def _timeline(record: BatchRecord) -> None:
    rows = record.events.to_pylist()
    alarms = [r for r in rows if str(r["kind"]).startswith("alarm_")]
    states = [r for r in rows if r["kind"] == "state_changed"]
    print(f"alarms: {len(alarms)}")
    for r in alarms:
        print(
            f"  {r['time'].isoformat()} {r['device_id']} {r['kind']} {r['alarm_code']} "
            f"[{r['severity']}] {r['message']}"
        )
    print("state timeline:")
    for r in states:
        print(
            f"  {r['time'].isoformat()} {r['device_id']} {r['from_state']} -> {r['to_state']}"
            + (f" ({r['cause']})" if r["cause"] else "")
        )


def _verify(args: argparse.Namespace) -> int:
    from cellauto.records.verify import verify

    report = verify(args.batch)
    print(f"{report.batch_id}: {report.status}")
    for problem in report.problems[1:]:
        print(f"  also: {problem}")
    for note in report.notes:
        print(f"  note: {note}")
    for signature in report.signatures:
        print(f"  signature: {signature}")
    print("  rows: " + ", ".join(f"{k} {v}" for k, v in report.rows.items()))
    return 0 if report.intact else 1


def _sign(args: argparse.Namespace) -> int:
    from cellauto.records.addenda import sign

    entry = sign(
        args.batch,
        printed_name=args.name,
        user_id=args.user,
        meaning=args.meaning,
        reason=args.reason,
    )
    signature = entry.signature
    assert signature is not None
    print(
        f"signed {args.batch}: {signature.meaning.value} by {signature.printed_name} "
        f"({signature.user_id}) at {signature.signed_at.isoformat()}, record hash "
        f"{signature.signed_hash}"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from cellauto.records.reporting import compare_report, report

    if args.compare:
        written = compare_report(args.batch, args.out, product=args.product)
    else:
        written = report(args.batch, args.out, unmask=args.unmask)
    print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KiB)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from cellauto.records.asm import export_asm
    from cellauto.records.export import export_csv, export_jsonl, export_parquet

    exporter = {
        "parquet": export_parquet,
        "csv": export_csv,
        "jsonl": export_jsonl,
        "asm": export_asm,
    }[args.format]
    written = exporter(args.batch, args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
