"""``cellauto records list | show | verify | sign | report | export``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

import pyarrow.compute as pc

from cellauto.errors import RecordError
from cellauto.records.reader import BatchRecord, find_batches, open_batch
from cellauto.schema import SignatureMeaning


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``records`` command group (and ``keys``)."""
    register_keys(commands)
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
    check.add_argument(
        "--trust", type=Path, help="trust store (folder or file of public keys) to check signers"
    )
    check.add_argument("--anchor", type=Path, help="anchor file to check the chain head against")
    check.set_defaults(handler=_verify)

    anchoring = sub.add_parser(
        "anchor", help="append a sealed record's chain head to an append-only file outside it"
    )
    anchoring.add_argument("batch", type=Path)
    anchoring.add_argument("--to", type=Path, required=True, help="the anchor file (appended)")
    anchoring.set_defaults(handler=_anchor)

    signing = sub.add_parser(
        "sign", help="sign a sealed record (review, approval...) in an append-only addendum"
    )
    signing.add_argument("batch", type=Path, help="the sealed batch record folder")
    signing.add_argument("--name", required=True, help="the signer's printed name")
    signing.add_argument("--user", required=True, help="the signer's user id")
    signing.add_argument("--meaning", required=True, choices=[m.value for m in SignatureMeaning])
    signing.add_argument("--reason", default="", help="why (e.g. the review's reference)")
    _key_arguments(signing, "sign with the key of --user from this folder")
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
    export.add_argument("--out", type=Path, required=True, help="output folder (a new one)")
    export.add_argument(
        "--force", action="store_true", help="replace --out if it exists (the whole folder)"
    )
    export.set_defaults(handler=_export)

    from cellauto.records import catalog_cli

    catalog_cli.register(sub)


def _key_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--keys", type=Path, help=f"{what} (default: $CELLAUTO_KEYS)")
    parser.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="read the passphrase from this environment variable (default: ask)",
    )


def _passphrase(args: argparse.Namespace, prompt: str) -> bytes:
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if value is None:
            raise RecordError(f"environment variable {args.passphrase_env} is not set")
        return value.encode()
    return getpass.getpass(prompt).encode()


def register_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keys`` command group."""
    keys = commands.add_parser("keys", help="per-person signing keys (Ed25519)")
    sub = keys.add_subparsers(title="keys commands")
    create = sub.add_parser("create", help="create a key, encrypted with a passphrase")
    create.add_argument("--user", required=True, help="the person's user id")
    create.add_argument("--name", required=True, help="the person's printed name")
    _key_arguments(create, "key folder")
    create.set_defaults(handler=_keys_create)
    listing = sub.add_parser("list", help="the keys in a key folder or trust store")
    listing.add_argument("--keys", type=Path, help="key folder (default: $CELLAUTO_KEYS)")
    listing.set_defaults(handler=_keys_list)
    export = sub.add_parser("export", help="write a person's public key for the trust store")
    export.add_argument("user")
    export.add_argument("--keys", type=Path, help="key folder (default: $CELLAUTO_KEYS)")
    export.add_argument("--out", type=Path, required=True, help="file or trust-store folder")
    export.set_defaults(handler=_keys_export)


def _keys_create(args: argparse.Namespace) -> int:
    from cellauto.records.keys import create_key, default_key_dir

    folder = args.keys or default_key_dir()
    passphrase = _passphrase(args, f"passphrase for {args.user}'s new key: ")
    if not args.passphrase_env and getpass.getpass("again: ").encode() != passphrase:
        raise RecordError("the passphrases differ; no key created")
    key = create_key(folder, args.user, args.name, passphrase)
    print(f"created {key.key_id} for {key.printed_name} ({key.user_id}) in {folder}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from cellauto.records.keys import default_key_dir, list_keys

    for key in list_keys(args.keys or default_key_dir()):
        revoked = f" revoked {key.revoked_at.isoformat()}" if key.revoked_at else ""
        print(f"{key.user_id:<16} {key.key_id} {key.printed_name}{revoked}")
    return 0


def _keys_export(args: argparse.Namespace) -> int:
    from cellauto.records.keys import default_key_dir, read_public_key

    key = read_public_key((args.keys or default_key_dir()) / f"{args.user}.pub.json")
    out: Path = args.out / f"{args.user}.pub.json" if args.out.is_dir() else args.out
    out.write_text(json.dumps(key.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {key.key_id} of {key.user_id} to {out}")
    return 0


def _anchor(args: argparse.Namespace) -> int:
    from cellauto.records.anchor import anchor

    line = anchor(args.batch, args.to)
    print(f"anchored {line['batch_id']} head {line['head']} in {args.to}")
    return 0


def _list(args: argparse.Namespace) -> int:
    print(f"{'batch':<20} {'state':<7} {'product':<16} {'start':<20} {'end':<20} folder")
    unreadable = 0
    for path in find_batches(args.root):
        where = path.relative_to(args.root).as_posix()
        try:
            m = open_batch(path).manifest
        except (RecordError, ValueError) as exc:
            unreadable += 1
            print(f"{'?':<20} {'?':<7} unreadable: {exc} ({where})")
            continue
        start = m.time_start.isoformat()[:19] if m.time_start else "-"
        end = m.time_end.isoformat()[:19] if m.time_end else "-"
        print(
            f"{m.batch.batch_id:<20} {m.state:<7} {m.batch.product:<16} {start:<20} {end:<20} "
            f"{where}"
        )
    if unreadable:
        print(f"{unreadable} record(s) unreadable", file=sys.stderr)
    return 1 if unreadable else 0


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
    end = m.batch.actual_end.isoformat() if m.batch.actual_end else "-"
    print(f"batch status: {m.batch.status}, ended {end}")
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

    report = verify(args.batch, trust=args.trust, anchor=args.anchor)
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
    from cellauto.records.keys import default_key_dir, load_signer

    signer = None
    if args.keys or args.passphrase_env or os.environ.get("CELLAUTO_KEYS"):
        passphrase = _passphrase(args, f"passphrase of {args.user}'s key: ")
        signer = load_signer(args.keys or default_key_dir(), args.user, passphrase)
    entry = sign(
        args.batch,
        printed_name=args.name,
        user_id=args.user,
        meaning=args.meaning,
        reason=args.reason,
        signer=signer,
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
    written = exporter(args.batch, args.out, force=args.force)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
