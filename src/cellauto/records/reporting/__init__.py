"""Batch reports: the document a QA reviewer reads, as one self-contained HTML file.

```python
from cellauto.records import report, compare_report

report("records/B-0001")                       # -> records/B-0001.report.html
compare_report("records")                      # -> records/compare.report.html
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cellauto.errors import RecordError

if TYPE_CHECKING:
    from cellauto.records.reporting.data import ReportData

REPORT_SUFFIX = ".report.html"


def default_report_path(record: str | os.PathLike[str]) -> Path:
    """Where a record's report goes unless told otherwise: beside it, ``<batch>.report.html``."""
    path = Path(record)
    return path.parent / f"{path.name}{REPORT_SUFFIX}"


def report_data(path: str | os.PathLike[str], *, unmask: bool = False) -> ReportData:
    """The data a batch report shows (what `report` renders), for tests and other renderers."""
    from cellauto.records.reader import open_batch
    from cellauto.records.reporting.data import gather

    return gather(open_batch(path), unmask=unmask)


def report(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    unmask: bool = False,
) -> Path:
    """Write the batch report of the record at `path` (open records too: the report says so on
    its first line) to `out` (default: beside the record); returns the file written.

    Patient, donor and lot identifiers are masked unless `unmask`.
    """
    from cellauto.records.reporting.batch import render

    target = Path(out) if out is not None else default_report_path(path)
    text = render(report_data(path, unmask=unmask))
    _write(target, text)
    return target


def compare_report(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    product: str | None = None,
) -> Path:
    """Write a report comparing the batches under `root` (of `product`, else of every product):
    their growth curves overlaid and their final results side by side."""
    from cellauto.records.reporting.compare import render_comparison

    target = Path(out) if out is not None else Path(root) / f"compare{REPORT_SUFFIX}"
    _write(target, render_comparison(Path(root), product=product))
    return target


def _write(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"cannot write the report {target}: {exc}") from None


__all__ = [
    "REPORT_SUFFIX",
    "compare_report",
    "default_report_path",
    "report",
    "report_data",
]
