"""``cellauto records publish``: sealed records into the site catalog (Apache Iceberg)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CATALOG = "sqlite:///catalog/catalog.db"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``records publish`` to the ``records`` command group."""
    publish = sub.add_parser(
        "publish", help="publish sealed records to the site catalog (Apache Iceberg tables)"
    )
    publish.add_argument("batches", type=Path, nargs="+", help="sealed batch record folders")
    publish.add_argument(
        "--catalog",
        default=DEFAULT_CATALOG,
        help="sqlite:///<path>/catalog.db (warehouse beside it), http(s)://<REST catalog>, or "
        f"pyiceberg:<name from ~/.pyiceberg.yaml> (default {DEFAULT_CATALOG})",
    )
    publish.set_defaults(handler=_publish)


def _publish(args: argparse.Namespace) -> int:
    from cellauto.records.site_catalog import catalog

    site = catalog(args.catalog)
    for path in args.batches:
        done = site.publish(path)
        rows = ", ".join(f"{name} {count}" for name, count in done.rows.items())
        print(f"{done.batch_id}: {done.action}" + (f" ({rows})" if rows else ""))
    return 0
