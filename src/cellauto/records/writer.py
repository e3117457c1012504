"""RecordWriter: appends a batch's samples, events, results, files and audit trail to its record."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
from pydantic import JsonValue

from cellauto._version import __version__
from cellauto.errors import (
    RecordError,
    RecordIntegrityError,
    RecordStateError,
    RecordWriteError,
)
from cellauto.records import audit as chain
from cellauto.records.buffers import (
    BAD,
    COALESCE_ROWS,
    KIND,
    QUALITY_CODE,
    Kind,
    SampleBuffer,
    TableBuffer,
)
from cellauto.records.compact import COMPRESSION, Compression, compact
from cellauto.records.digest import DIGEST_FORMAT, TableDigest
from cellauto.records.files import (
    DIR_MODE,
    fsync_dir,
    is_temp,
    make_dir,
    seal_modes,
    write_new,
)
from cellauto.records.ids import check_batch_id
from cellauto.records.intake import SampleIntake
from cellauto.records.keys import Signer, cryptographic_signature
from cellauto.records.layout import (
    FILES_DIR,
    DeviceEntry,
    Manifest,
    SegmentReader,
    TableFile,
    read_manifest,
    segments,
    sha256_file,
    write_manifest,
)
from cellauto.records.recovery import chained_digests, read_audit, read_channels
from cellauto.records.seal import (
    CHECKPOINT_ACTION,
    DATA_TABLES,
    SEAL_ACTION,
    seal_value,
    sealed_evidence,
)
from cellauto.records.tables import TABLES, file_schema
from cellauto.schema import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    Alarm,
    AuditEntry,
    BatchInfo,
    ElectronicSignature,
    Event,
    EventKind,
    Result,
    ResultFile,
    Sample,
    SignatureMeaning,
    canonical_json,
)

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
SYSTEM_ACTOR = "cellauto"


def _now() -> datetime:
    return datetime.now(UTC)


def _storage_error(path: Path, action: str, exc: BaseException) -> RecordWriteError:
    return RecordWriteError(
        f"record {path}: {action} failed: {exc}; rows flushed before this are still readable "
        "(free space or fix permissions, then RecordWriter.resume() to continue)"
    )


class RecordWriter:
    """Appends to one batch record; use `create` or `resume`, and close it (or use ``with``).

    Samples and events are buffered and flushed every `flush_rows` rows and at least every
    `flush_interval` seconds (by a background thread), so a killed process loses at most that
    much. Audit entries are flushed as they are appended. `durable=True` also fsyncs each flush
    (survives power loss, costs ~0.2 ms per flush). Thread-safe.
    """

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        *,
        segment: int,
        entries_seq: int,
        head: str,
        channels: Mapping[tuple[str, str], tuple[str | None, Kind]],
        channel_units: Mapping[tuple[str, str], str | None],
        flush_rows: int,
        flush_interval: float | None,
        durable: bool,
        clock: Callable[[], datetime],
    ) -> None:
        """Internal: call `RecordWriter.create` or `RecordWriter.resume`."""
        if flush_rows < 1:
            raise ValueError("flush_rows must be at least 1")
        self.path = path
        self._manifest = manifest
        self.batch_id = manifest.batch.batch_id
        self._durable = durable
        self._clock = clock
        self._flush_rows = flush_rows
        self._lock = threading.RLock()
        self._seq = entries_seq
        self._head = head
        self._closed = False
        self._failed: str | None = None
        self._samples = SampleBuffer(path, "samples", segment, self.batch_id)
        self._tables: dict[str, TableBuffer] = {
            "samples": self._samples,
            "events": TableBuffer(path, "events", segment),
            "audit": TableBuffer(path, "audit", segment),
            "results": TableBuffer(path, "results", segment),
        }
        self._intake = SampleIntake(
            self.batch_id, self._samples, self._lock, channels, channel_units
        )
        self._digests: dict[str, tuple[TableDigest, dict[str, int]]] = {
            name: (TableDigest(file_schema(name)), {}) for name in DATA_TABLES
        }
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval is not None:
            self._flusher = threading.Thread(
                target=self._flush_periodically,
                args=(flush_interval,),
                name=f"cellauto-record-{self.batch_id}",
                daemon=True,
            )
            self._flusher.start()

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        batch: BatchInfo,
        *,
        devices: Sequence[DeviceEntry | Mapping[str, Any]] = (),
        channel_units: Mapping[tuple[str, str], str | None] | None = None,
        flush_rows: int = 65_536,
        flush_interval: float | None = 1.0,
        durable: bool = False,
        clock: Callable[[], datetime] = _now,
        actor: str = SYSTEM_ACTOR,
    ) -> RecordWriter:
        """Start a new record in folder `path` (which must not exist or be empty).

        `channel_units` maps (device_id, channel) to the channel's unit (None for text/bool
        channels); samples in another unit are rejected. Channels not declared take the unit of
        their first sample.
        """
        check_batch_id(batch.batch_id)
        folder = Path(path)
        try:
            if folder.exists() and any(folder.iterdir()):
                raise RecordStateError(
                    f"{folder} already exists and is not empty; use RecordWriter.resume() to "
                    "append to a record, or choose a new folder"
                )
            make_dir(folder)
            (folder / FILES_DIR).mkdir(mode=DIR_MODE)
            manifest = Manifest(
                schema_version=SCHEMA_VERSION,
                cellauto_version=__version__,
                batch=batch,
                devices=[DeviceEntry.model_validate(d) for d in devices],
                created=clock(),
            )
            write_manifest(folder, manifest)
        except OSError as exc:
            raise _storage_error(folder, "creating the record", exc) from None
        writer = cls(
            folder,
            manifest,
            segment=1,
            entries_seq=0,
            head=GENESIS_HASH,
            channels={},
            channel_units=channel_units or {},
            flush_rows=flush_rows,
            flush_interval=flush_interval,
            durable=durable,
            clock=clock,
        )
        writer.audit(
            actor, "record_created", f"batch:{batch.batch_id}", value=batch.model_dump(mode="json")
        )
        return writer

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        channel_units: Mapping[tuple[str, str], str | None] | None = None,
        flush_rows: int = 65_536,
        flush_interval: float | None = 1.0,
        durable: bool = False,
        clock: Callable[[], datetime] = _now,
        actor: str = SYSTEM_ACTOR,
    ) -> RecordWriter:
        """Append to an open (unsealed, e.g. crashed) record: same batch, new segment."""
        folder = Path(path)
        manifest = read_manifest(folder)
        if manifest.sealed:
            raise RecordStateError(
                f"record {manifest.batch.batch_id} at {folder} is sealed; a sealed record is final"
            )
        number = 1 + max(
            (int(seg.name[8:14]) for t in TABLES for seg in segments(folder, t)), default=0
        )
        entries = read_audit(folder)
        evidence = sealed_evidence(folder, manifest, entries)
        if evidence is not None:
            raise RecordStateError(
                f"record {manifest.batch.batch_id} at {folder}: will not resume: manifest.json "
                f"says open, but the record was sealed: {evidence}; a sealed record is final "
                "(check it with `cellauto records verify`)"
            )
        broken = chain.first_break(entries)
        if broken is not None:
            raise RecordIntegrityError(
                f"record {manifest.batch.batch_id}: will not append to a broken audit chain: "
                f"{broken[1]}"
            )
        chained = chained_digests(entries)
        try:
            for table in DATA_TABLES:  # files of a seal that was interrupted before its entry
                for leftover in (folder / f"{table}.arrow", folder / f"{table}.arrow.tmp"):
                    if leftover.is_symlink():
                        leftover.unlink()
                    elif leftover.is_file() and sha256_file(leftover) in chained:
                        raise RecordStateError(
                            f"record {manifest.batch.batch_id} at {folder}: will not resume: "
                            f"{leftover.name} is recorded in the audit chain"
                        )
                    leftover.unlink(missing_ok=True)
            for leftover in folder.iterdir():
                if is_temp(leftover):
                    leftover.unlink()
        except OSError as exc:
            raise _storage_error(folder, "resuming", exc) from None
        writer = cls(
            folder,
            manifest,
            segment=number,
            entries_seq=len(entries),
            head=chain.chain_head(entries),
            channels=read_channels(folder),
            channel_units=channel_units or {},
            flush_rows=flush_rows,
            flush_interval=flush_interval,
            durable=durable,
            clock=clock,
        )
        last = entries[-1] if entries else None
        writer.audit(
            actor,
            "record_resumed",
            f"batch:{writer.batch_id}",
            value={
                "segment": number,
                "interrupted_after_seq": last.seq if last else None,
                "interrupted_after": last.time.isoformat() if last else None,
            },
            reason="the previous writer ended without sealing the record (crash or kill)",
        )
        return writer

    # -- samples ------------------------------------------------------------------------------

    def add_sample(self, sample: Sample) -> None:
        """Append one sample (the per-sample path)."""
        value = sample.value
        channel = self._intake.channels.get((sample.device_id, sample.channel))
        if channel is None or channel.unit != sample.unit or channel.kind != KIND.get(type(value)):
            admitted = self._intake.admit(
                sample.device_id, sample.channel, sample.unit, type(value)
            )
            assert admitted is not None
            channel = admitted
        timestamp = sample.timestamp
        if timestamp.tzinfo is None:
            raise self._intake.invalid(
                sample.device_id, sample.channel, "timestamp has no time zone"
            )
        with self._lock:
            self._check_open()
            s = self._samples
            if s.parts:
                try:
                    s.write_parts()
                except (OSError, pa.ArrowException) as exc:
                    raise self._fail("writing samples", exc) from None
            s.keys.append(channel.key)
            s.times.append(timestamp)
            s.values.append(value)
            if type(value) is float and not math.isfinite(value):
                s.quality.append(BAD)  # NaN and infinities are never good data
            else:
                s.quality.append(QUALITY_CODE[sample.quality])
            s.seq.append(sample.seq)
            if channel.kind != "number":
                s.mixed = True
            if len(s.keys) + s.unflushed >= self._flush_rows:
                self._flush_locked()

    def add_samples(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append many numeric samples at once (the columnar fast path).

        Columns: device_id, channel, unit (strings or dictionary), timestamp (timezone-aware
        timestamp), value (numbers), seq (integers); optional quality. Text and boolean samples
        go through `add_sample`. The whole batch is rejected if any row is invalid. Small
        batches are queued and written together (like per-sample rows, they reach the file by
        the next flush: `flush_rows` rows or `flush_interval`).
        """
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        prepared = [self._intake.prepare(batch) for batch in batches]
        with self._lock:
            self._check_open()
            samples = self._samples
            try:
                if samples.keys:
                    samples.write_rows()
                for part in prepared:
                    if len(part[0]):
                        samples.add_part(part)
                if samples.part_rows >= COALESCE_ROWS:
                    samples.write_parts()
            except (OSError, pa.ArrowException) as exc:
                raise self._fail("writing samples", exc) from None
            if samples.unflushed + len(samples.keys) >= self._flush_rows:
                self._flush_locked()

    # -- events, results, files, devices ------------------------------------------------------

    def add_event(self, event: Event) -> None:
        """Append one event."""
        self._add_row(
            "events",
            {
                "batch_id": self.batch_id,
                "device_id": event.device_id,
                "time": event.time,
                "seq": event.seq,
                "kind": event.kind.value,
                "source": event.source,
                "message": event.message,
                "from_state": event.from_state,
                "to_state": event.to_state,
                "cause": event.cause,
                "alarm_id": None,
                "alarm_code": None,
                "severity": None,
                "data": canonical_json(event.data).decode(),
                "vendor_data": canonical_json(event.vendor_data).decode(),
            },
        )

    def add_alarm(self, alarm: Alarm) -> None:
        """Append an alarm's current state as an alarm_raised/acknowledged/cleared event."""
        if not alarm.active:
            kind, time = EventKind.ALARM_CLEARED, alarm.cleared_at
        elif alarm.acknowledged:
            kind, time = EventKind.ALARM_ACKNOWLEDGED, alarm.acknowledged_at
        else:
            kind, time = EventKind.ALARM_RAISED, alarm.raised_at
        self._add_row(
            "events",
            {
                "batch_id": self.batch_id,
                "device_id": alarm.device_id,
                "time": time,
                "seq": None,
                "kind": kind.value,
                "source": alarm.source,
                "message": alarm.message,
                "from_state": None,
                "to_state": alarm.state.value,
                "cause": alarm.acknowledged_by if kind == EventKind.ALARM_ACKNOWLEDGED else None,
                "alarm_id": alarm.alarm_id,
                "alarm_code": alarm.code,
                "severity": alarm.severity.value,
                "data": canonical_json(alarm.model_dump(mode="json")).decode(),
                "vendor_data": canonical_json(alarm.vendor_data).decode(),
            },
        )

    def add_result(self, result: Result) -> None:
        """Append a program run's Result."""
        self._add_row(
            "results",
            {
                "batch_id": self.batch_id,
                "device_id": result.device_id,
                "device_program_run_id": result.device_program_run_id,
                "program": result.program,
                "program_version": result.program_version,
                "outcome": result.outcome,
                "started": result.started,
                "stopped": result.stopped,
                "total_runtime": result.total_runtime,
                "result": canonical_json(result.model_dump(mode="json")).decode(),
            },
        )

    def _add_row(self, table: str, row: dict[str, Any]) -> None:
        with self._lock:
            self._check_open()
            rows = self._tables[table].rows
            rows.append(row)
            if len(rows) >= self._flush_rows:
                self._flush_locked()

    def add_file(
        self,
        source: str | os.PathLike[str] | bytes,
        name: str,
        *,
        mime_type: str,
        actor: str = SYSTEM_ACTOR,
        reason: str = "",
    ) -> ResultFile:
        """Store a file (image, vendor report) under ``files/`` and its SHA-256 in the audit."""
        if not _FILE_NAME.match(name):
            raise RecordError(f"batch {self.batch_id}: {name!r} is not a plain file name")
        target = self.path / FILES_DIR / name
        with self._lock:
            self._check_open()
            if target.exists() or target.is_symlink():
                raise RecordStateError(
                    f"batch {self.batch_id}: files/{name} exists; files are never replaced"
                )
            try:
                target.parent.mkdir(exist_ok=True, mode=DIR_MODE)
                data = source if isinstance(source, bytes) else Path(source).read_bytes()
                write_new(target, data)
                fsync_dir(target.parent)
            except OSError as exc:
                target.unlink(missing_ok=True)
                raise _storage_error(self.path, f"storing files/{name}", exc) from None
            digest = sha256_file(target)
            size = target.stat().st_size
            self.audit(
                actor,
                "file_added",
                f"{FILES_DIR}/{name}",
                value={"sha256": digest, "size": size, "mime_type": mime_type},
                reason=reason,
            )
        return ResultFile(name=name, mime_type=mime_type, path=f"{FILES_DIR}/{name}", sha256=digest)

    def add_device(
        self,
        device_id: str,
        *,
        kind: str | None = None,
        profile_version: str | None = None,
        channel_units: Mapping[str, str | None] | None = None,
        info: Mapping[str, JsonValue] | None = None,
    ) -> None:
        """Name a device in the manifest; `channel_units` declares its channels' units."""
        entry = DeviceEntry(
            device_id=device_id, kind=kind, profile_version=profile_version, info=dict(info or {})
        )
        with self._lock:
            self._check_open()
            for channel, unit in (channel_units or {}).items():
                self._intake.declared[device_id, channel] = unit
            devices = [d for d in self._manifest.devices if d.device_id != device_id] + [entry]
            manifest = self._manifest.model_copy(update={"devices": devices})
            try:
                write_manifest(self.path, manifest)
            except OSError as exc:
                raise self._fail("updating the manifest", exc) from None
            self._manifest = manifest

    # -- audit --------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        object: str,
        *,
        value: JsonValue = None,
        previous_value: JsonValue = None,
        reason: str = "",
        signature: ElectronicSignature | None = None,
    ) -> AuditEntry:
        """Append an audit entry (who, what, on what, new and previous value, why); flushed now."""
        return self._append(
            actor,
            action,
            object,
            value=value,
            previous_value=previous_value,
            reason=reason,
            signature=signature,
            time=None,
        )

    def _append(
        self,
        actor: str,
        action: str,
        object: str,
        *,
        value: JsonValue,
        previous_value: JsonValue,
        reason: str,
        signature: ElectronicSignature | None,
        time: datetime | None,
    ) -> AuditEntry:
        with self._lock:
            self._check_open()
            entry = chain.make_entry(
                seq=self._seq,
                prev_hash=self._head,
                time=self._clock() if time is None else time,
                actor=actor,
                action=action,
                object=object,
                value=value,
                previous_value=previous_value,
                reason=reason,
                signature=signature,
            )
            table = self._tables["audit"]
            table.rows.append(chain.entry_row(entry))
            try:
                table.flush(self._durable)
            except (OSError, pa.ArrowException) as exc:
                raise self._fail("writing the audit trail", exc) from None
            self._seq += 1
            self._head = entry.hash
            return entry

    def sign(
        self,
        printed_name: str,
        user_id: str,
        meaning: SignatureMeaning | str,
        *,
        reason: str = "",
        signed_hash: str | None = None,
        object: str | None = None,
        signer: Signer | None = None,
    ) -> AuditEntry:
        """Sign the record as it stands, or `signed_hash` if given.

        Signing the record first appends a ``checkpoint`` entry: each data table's row count
        and running digest of the rows written so far, so the signature covers the data up to
        this moment. The signature (printed name, meaning, time, the chain head after the
        checkpoint) is appended as an audit entry; with a `signer` it also carries the
        signer's Ed25519 signature of those fields, checked by `verify` against a trust store.
        """
        if signer is not None and signer.user_id != user_id:
            raise RecordStateError(
                f"record {self.batch_id}: the key of {signer.user_id} cannot sign for {user_id}"
            )
        with self._lock:
            if signed_hash is None:
                self.audit(
                    user_id, CHECKPOINT_ACTION, f"batch:{self.batch_id}", value=self._checkpoint()
                )
            time = self._clock()
            target = self._head if signed_hash is None else signed_hash
            signature = ElectronicSignature(
                printed_name=printed_name,
                user_id=user_id,
                meaning=SignatureMeaning(meaning),
                signed_at=time,
                signed_hash=target,
            )
            value: dict[str, JsonValue] = {}
            if signed_hash is None:
                value["signed"] = chain.SIGNED_CHAIN
            if signer is not None:
                value.update(cryptographic_signature(signature, signer))
            return self._append(
                user_id,
                chain.SIGN_ACTION,
                object or f"batch:{self.batch_id}",
                value=value or None,
                previous_value=None,
                reason=reason,
                signature=signature,
                time=time,
            )

    def _checkpoint(self) -> JsonValue:
        """Row counts and running digests of the data tables as written so far."""
        self._check_open()
        self._flush_locked()
        tables: dict[str, JsonValue] = {}
        for name in DATA_TABLES:
            digest, done = self._digests[name]
            for segment in segments(self.path, name):
                skip = done.get(segment.name, 0)
                count = 0
                for batch in SegmentReader(segment):
                    count += 1
                    if count > skip:
                        digest.update(batch)
                done[segment.name] = count
            tables[name] = {"rows": digest.rows, "sha256": digest.hexdigest()}
        return {"digest": DIGEST_FORMAT, "tables": tables}

    @property
    def chain_head(self) -> str:
        """Hash of the latest audit entry."""
        return self._head

    # -- flushing and closing -----------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row to the operating system now (and fsync if durable)."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    def _flush_locked(self) -> None:
        try:
            for table in self._tables.values():
                table.flush(self._durable)
        except (OSError, pa.ArrowException) as exc:
            raise self._fail("flushing", exc) from None

    def _flush_periodically(self, interval: float) -> None:
        while not self._stop.wait(interval / 2):
            with self._lock:
                if self._closed or self._failed:
                    return
                try:
                    self._flush_locked()
                except RecordWriteError:
                    return  # remembered in _failed; the next call raises it

    def _fail(self, action: str, exc: BaseException) -> RecordWriteError:
        error = _storage_error(self.path, action, exc)
        self._failed = str(error)
        return error

    def _check_open(self) -> None:
        if self._failed is not None:
            raise RecordWriteError(f"the writer failed earlier: {self._failed}")
        if self._closed:
            raise RecordStateError(f"record {self.batch_id} is closed")

    def close(
        self,
        reason: str = "closed",
        *,
        actor: str = SYSTEM_ACTOR,
        compression: Compression = COMPRESSION,
        batch: BatchInfo | None = None,
    ) -> Manifest:
        """Flush, compact each table into ``<table>.arrow`` (lz4 by default; "zstd" for
        ~3.5x smaller files that read slower), seal the manifest; returns it.

        `batch` is the batch header as it ends (final status, end time); it replaces the one
        given at creation and is sealed with the record."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            if self._closed:
                return self._manifest
            self._check_open()
            if batch is not None and batch.batch_id != self.batch_id:
                raise RecordStateError(
                    f"record {self.batch_id}: cannot seal it with the header of batch "
                    f"{batch.batch_id}"
                )
            try:
                self._flush_locked()
                for name in ("samples", "events", "results"):
                    self._close_segment(name)
                sealed: dict[str, TableFile] = {}
                spans: list[datetime] = []
                for name, column in (("samples", "timestamp"), ("events", "time"), ("results", "")):
                    sealed[name], span = compact(self.path, name, column, compression)
                    spans.extend(span)
                time = self._clock()
                info = batch or self._manifest.batch
                manifest = self._manifest.model_copy(
                    update={
                        "batch": info,
                        "state": "sealed",
                        "seal_reason": reason,
                        "sealed_at": time,
                        "time_start": min(spans, default=None),
                        "time_end": max(spans, default=None),
                        "row_counts": {
                            **{n: t.rows for n, t in sealed.items()},
                            "audit": self._seq + 1,
                        },
                    }
                )
                self._append(
                    actor,
                    SEAL_ACTION,
                    f"batch:{self.batch_id}",
                    value=seal_value(manifest, sealed),
                    previous_value=None,
                    reason=reason,
                    signature=None,
                    time=time,
                )
                self._close_segment("audit")
                sealed["audit"], _ = compact(self.path, "audit", "", compression)
                manifest = manifest.model_copy(update={"chain_head": self._head, "tables": sealed})
                write_manifest(self.path, manifest)
            except (OSError, pa.ArrowException) as exc:
                raise self._fail("sealing", exc) from None
            self._closed = True
            self._manifest = manifest
            for name in TABLES:
                shutil.rmtree(self.path / name, ignore_errors=True)
            with contextlib.suppress(OSError):
                seal_modes(self.path)
            return manifest

    def _close_segment(self, name: str) -> None:
        table = self._tables[name]
        if table.segment is not None:
            table.segment.close()
            table.segment = None

    def abandon(self) -> None:
        """Stop writing without sealing (the record stays open and can be resumed)."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            if self._closed:
                return
            if self._failed is None:
                self._flush_locked()
            self._closed = True
            for name in TABLES:
                table = self._tables[name]
                if table.segment is not None:
                    with contextlib.suppress(OSError, pa.ArrowException):
                        table.segment.close()
                    table.segment = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._failed is not None:
            self.abandon()
            return
        self.close(
            "closed" if exc is None else f"error: {exc_type.__name__ if exc_type else ''}: {exc}"
        )

    @property
    def manifest(self) -> Manifest:
        """The manifest as last written."""
        return self._manifest
