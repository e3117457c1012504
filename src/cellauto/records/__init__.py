"""Batch records in Apache Arrow: the writer, the reader, the audit chain, verify and exports.

```python
from cellauto.records import RecordWriter, open_batch, sign, verify

with RecordWriter.create("records/B-0001", BatchInfo(batch_id="B-0001", product="CAR-T")) as w:
    w.add_sample(sample)
record = open_batch("records/B-0001")
record.samples                      # a pyarrow Table
verify("records/B-0001").status     # "sealed and intact"
sign("records/B-0001", printed_name="Bob Jones", user_id="bob", meaning="approval")
```
"""

from cellauto.records.addenda import sign
from cellauto.records.asm import export_asm
from cellauto.records.export import export_csv, export_jsonl, export_parquet, export_parquet_dataset
from cellauto.records.layout import Addendum, DeviceEntry, Manifest, TableFile
from cellauto.records.reader import BatchRecord, find_batches, open_batch, open_batches
from cellauto.records.reporting import compare_report, report
from cellauto.records.site_catalog import SiteCatalog, catalog
from cellauto.records.tables import RECORD_FORMAT, TABLES
from cellauto.records.verify import VerifyReport, verify
from cellauto.records.writer import RecordWriter

__all__ = [
    "RECORD_FORMAT",
    "TABLES",
    "Addendum",
    "BatchRecord",
    "DeviceEntry",
    "Manifest",
    "RecordWriter",
    "SiteCatalog",
    "TableFile",
    "VerifyReport",
    "catalog",
    "compare_report",
    "export_asm",
    "export_csv",
    "export_jsonl",
    "export_parquet",
    "export_parquet_dataset",
    "find_batches",
    "open_batch",
    "open_batches",
    "report",
    "sign",
    "verify",
]
