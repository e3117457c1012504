"""The folder of one batch record: where each file lives, the manifest, and segment reading.

```
<batch>/manifest.json              batch info, versions, devices, state (open | sealed), digests
<batch>/<table>/segment-NNNNNN.arrows  append-only Arrow IPC streams while the record is open
<batch>/<table>.arrow              the compacted table (Arrow IPC file, lz4) once sealed
<batch>/files/<name>               images, vendor reports; SHA-256 in the audit trail
<batch>/addenda/addendum-NNNNNN.arrow  signatures added after the seal (audit rows, chained on)
```
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.ipc as ipc
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from cellauto.errors import RecordError, RecordStateError, SchemaVersionError
from cellauto.records.files import FILE_MODE, SEALED_MODE, atomic_write
from cellauto.records.tables import RECORD_FORMAT
from cellauto.schema import BatchInfo, check_schema_version, sha256_hex

MANIFEST = "manifest.json"
FILES_DIR = "files"
ADDENDA_DIR = "addenda"
ADDENDUM_RE = re.compile(r"^addendum-(\d{6})\.arrow$")
SEGMENT_RE = re.compile(r"^segment-(\d{6})\.arrows$")


class DeviceEntry(BaseModel):
    """A device that took part in the batch, with its profile version (given by the caller)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    device_id: str
    kind: str | None = None
    profile_version: str | None = None
    info: dict[str, JsonValue] = Field(default_factory=dict)


class TableFile(BaseModel):
    """A sealed table file and its digest."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    file: str
    sha256: str
    rows: int


class Addendum(BaseModel):
    """Audit entries appended to a sealed record (signatures), in one file of their own."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    file: str
    sha256: str
    rows: int
    head: str = Field(description="Hash of the file's last audit entry.")


class Manifest(BaseModel):
    """``manifest.json``: what the record is, who wrote it, and whether it is sealed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    record_format: str = RECORD_FORMAT
    schema_version: str
    cellauto_version: str
    batch: BatchInfo
    devices: list[DeviceEntry] = Field(default_factory=list)
    state: Literal["open", "sealed"] = "open"
    seal_reason: str | None = None
    created: datetime
    sealed_at: datetime | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    row_counts: dict[str, int] = Field(default_factory=dict)
    chain_head: str | None = None
    tables: dict[str, TableFile] = Field(default_factory=dict)
    addenda: list[Addendum] = Field(default_factory=list)
    """Signatures added after the seal, in order; `chain_head` stays the head at the seal."""

    @property
    def sealed(self) -> bool:
        """True once the writer closed the record."""
        return self.state == "sealed"

    @property
    def head(self) -> str | None:
        """Hash of the last audit entry, addenda included (None while open)."""
        return self.addenda[-1].head if self.addenda else self.chain_head


def check_record_format(version: str, where: Path) -> None:
    """Raise SchemaVersionError if this cellauto cannot read the record format `version`."""
    ours = int(RECORD_FORMAT.split(".")[0])
    match = re.fullmatch(r"(\d+)\.(\d+)", version)
    if match is None or int(match.group(1)) != ours:
        raise SchemaVersionError(
            f"{where}: record format {version}, this cellauto reads {RECORD_FORMAT.split('.')[0]}.x"
            + ("; upgrade cellauto to read it" if match and int(match.group(1)) > ours else "")
        )


def read_manifest(path: Path) -> Manifest:
    """Load and version-check ``<path>/manifest.json``."""
    file = path / MANIFEST
    try:
        raw: Any = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path} is not a batch record (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"{file}: cannot read the manifest: {exc}") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{file}: the manifest is not a JSON object")
    check_record_format(str(raw.get("record_format", "")), file)
    try:
        check_schema_version(str(raw.get("schema_version", "")))
    except SchemaVersionError as exc:
        raise SchemaVersionError(f"{file}: {exc}") from None
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise RecordError(f"{file}: invalid manifest: {exc}") from None


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically (write, fsync, rename, fsync the folder)."""
    data = manifest.model_dump(mode="json")
    if not data["addenda"]:
        del data["addenda"]  # records without addenda keep the manifest they always had
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path / MANIFEST, text.encode(), SEALED_MODE if manifest.sealed else FILE_MODE)


def manifest_digest(path: Path) -> str:
    """SHA-256 of the canonical JSON of ``manifest.json`` without its ``addenda``: the manifest
    as sealed, which adding signatures does not change."""
    file = path / MANIFEST
    try:
        raw: Any = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordError(f"{file}: cannot read the manifest: {exc}") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{file}: the manifest is not a JSON object")
    raw.pop("addenda", None)
    return sha256_hex(raw)


def commit_addendum(path: Path, previous_head: str, addendum: Addendum) -> None:
    """Append `addendum` to the manifest's ``addenda`` by an atomic rewrite, if the record's
    head is still `previous_head` (else RecordStateError). Every other field is kept as is."""
    file = path / MANIFEST
    raw: Any = json.loads(file.read_text(encoding="utf-8"))
    listed = raw.get("addenda") or []
    head = listed[-1]["head"] if listed else raw.get("chain_head")
    if head != previous_head:
        raise RecordStateError(
            f"{file}: the record's head changed while signing (another signature was added); "
            "sign again"
        )
    raw["addenda"] = [*listed, addendum.model_dump(mode="json")]
    atomic_write(file, (json.dumps(raw, indent=2, sort_keys=True) + "\n").encode(), SEALED_MODE)


def addendum_name(number: int) -> str:
    """Path (inside the record) of addendum `number` (from 1)."""
    return f"{ADDENDA_DIR}/addendum-{number:06d}.arrow"


def segments(path: Path, table: str) -> list[Path]:
    """The segment files of `table`, in write order."""
    folder = path / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if SEGMENT_RE.match(p.name))


def segment_name(number: int) -> str:
    """File name of segment `number` (from 1)."""
    return f"segment-{number:06d}.arrows"


def read_segment(file: Path) -> tuple[list[pa.RecordBatch], bool]:
    """Every complete record batch of one segment, and whether it ends in a torn write.

    A process killed mid-write leaves a partial last message; everything before it is read.
    The batches are memory-mapped (zero-copy).
    """
    reader = SegmentReader(file)
    batches = list(reader)
    return batches, reader.torn


class SegmentReader:
    """Iterates the complete batches of a segment one at a time; `torn` is set at the end if the
    segment ends in a partial write. Memory holds one batch at a time for a file source.

    When a file is read, a segment that stops early is told apart from a torn last write:
    `lost_batches` counts the complete record batches found in the bytes after the damage (0 for
    a genuine torn last write, which loses at most one partial message)."""

    def __init__(self, source: pa.NativeFile | Path) -> None:
        self._file: Path | None = None
        if isinstance(source, Path):
            self._file = source
            try:
                source = pa.memory_map(str(source))
            except OSError as exc:
                raise RecordError(f"{source}: cannot read: {exc}") from None
        self._source = source
        self.torn = False
        self.end = 0
        """Byte offset just after the last complete message."""
        self.lost_batches = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            reader = ipc.open_stream(self._source)
            self.end = self._source.tell()
        except (pa.ArrowInvalid, OSError):
            self._torn()
            return
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                if self._file is not None and self._file.stat().st_size > self.end + 8:
                    self._torn()  # an end-of-stream marker with data after it: damage
                return
            except (pa.ArrowInvalid, OSError):
                self._torn()
                return
            self.end = self._source.tell()
            yield batch

    def _torn(self) -> None:
        self.torn = True
        if self._file is not None:
            self.lost_batches = _complete_batches_after(self._file, self.end)


_CONTINUATION = b"\xff\xff\xff\xff"


def _complete_batches_after(file: Path, end: int) -> int:
    """Complete IPC record-batch messages in `file` after the partial message at `end`."""
    try:
        data = file.read_bytes()[end:]
    except OSError:
        return 0
    start = data.find(_CONTINUATION, 1)
    count = 0
    while start != -1:
        try:
            message = ipc.read_message(pa.py_buffer(data[start:]))
        except (pa.ArrowInvalid, OSError, ValueError, EOFError):
            start = data.find(_CONTINUATION, start + 1)
            continue
        size = 8 + len(message.metadata) + message.body.size if message.body else 0
        count += message.type == "record batch"
        start = data.find(_CONTINUATION, start + max(size, 1))
    return count


def sha256_file(file: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
