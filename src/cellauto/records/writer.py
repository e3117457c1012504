"""RecordWriter: appends a batch's samples, events, results, files and audit trail to its record."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from pydantic import JsonValue

from cellauto._version import __version__
from cellauto.errors import (
    RecordError,
    RecordIntegrityError,
    RecordStateError,
    RecordValidationError,
    RecordWriteError,
    UnitError,
)
from cellauto.records import audit as chain
from cellauto.records.compact import COMPRESSION, Compression, compact
from cellauto.records.digest import DIGEST_FORMAT, TableDigest
from cellauto.records.encode import Codes, rows_to_batch
from cellauto.records.files import (
    DIR_MODE,
    create_exclusive,
    fsync_dir,
    is_temp,
    make_dir,
    seal_modes,
    write_new,
)
from cellauto.records.ids import check_batch_id
from cellauto.records.keys import Signer, cryptographic_signature
from cellauto.records.layout import (
    FILES_DIR,
    DeviceEntry,
    Manifest,
    SegmentReader,
    TableFile,
    read_manifest,
    read_segment,
    segment_name,
    segments,
    sha256_file,
    write_manifest,
)
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
from cellauto.units import validate_unit

Kind = Literal["number", "bool", "text"]
_KIND: dict[type, Kind] = {float: "number", int: "number", bool: "bool", str: "text"}
_QUALITY = ("good", "uncertain", "bad")
_QUALITY_CODE: dict[str, int] = {q: i for i, q in enumerate(_QUALITY)}
_BAD = _QUALITY_CODE["bad"]
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
SYSTEM_ACTOR = "cellauto"
_COALESCE_ROWS = 65_536
"""Columnar batches are queued and written as one record batch of about this many rows."""
_TIME = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class _Channel:
    key: int
    unit: str | None
    kind: Kind


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to read one input schema of `add_samples` (checked once, reused while it repeats)."""

    schema: pa.Schema
    columns: tuple[int, ...]  # device_id, channel, unit, timestamp
    value: int
    seq: int
    quality: int | None
    cast_time: bool
    cast_value: bool
    cast_seq: bool


_Part = tuple[pa.Array, pa.Array, pa.Array, pa.Array, pa.Array, pa.Array | None, pa.Array]
"""A validated columnar batch in our codes: device, channel, timestamp, value, unit, quality
(None: all good), seq."""


def _now() -> datetime:
    return datetime.now(UTC)


def _storage_error(path: Path, action: str, exc: BaseException) -> RecordWriteError:
    return RecordWriteError(
        f"record {path}: {action} failed: {exc}; rows flushed before this are still readable "
        "(free space or fix permissions, then RecordWriter.resume() to continue)"
    )


class _Segment:
    """One append-only Arrow IPC stream file."""

    def __init__(self, file: Path, schema: pa.Schema) -> None:
        file.parent.mkdir(exist_ok=True, mode=DIR_MODE)
        os.close(create_exclusive(file))
        self.file = file
        self._sink = pa.BufferedOutputStream(pa.OSFile(str(file), "wb"), 1 << 20)
        options = ipc.IpcWriteOptions(emit_dictionary_deltas=True)
        self._writer = ipc.new_stream(self._sink, schema, options=options)
        self._sink.flush()

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def flush(self, durable: bool) -> None:
        self._sink.flush()
        if durable:
            fd = os.open(self.file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


class _Table:
    """Pending rows of one table and the segment they go to."""

    def __init__(self, record: Path, name: str, number: int) -> None:
        self.name = name
        self.schema = file_schema(name)
        self.file = record / name / segment_name(number)
        self.codes = {f.name: Codes() for f in self.schema if pa.types.is_dictionary(f.type)}
        self.segment: _Segment | None = None
        self.rows: list[dict[str, Any]] = []
        self.dirty = False

    def write(self, batch: pa.RecordBatch) -> None:
        if self.segment is None:
            self.segment = _Segment(self.file, self.schema)
        self.segment.write(batch)
        self.dirty = True

    def write_rows(self) -> None:
        if self.rows:
            batch = rows_to_batch(self.name, self.rows, self.codes)
            self.rows = []
            self.write(batch)

    def flush(self, durable: bool) -> None:
        self.write_rows()
        if self.dirty and self.segment is not None:
            self.segment.flush(durable)
            self.dirty = False


class _Samples(_Table):
    """The samples table, kept as column lists for the per-sample path."""

    def __init__(self, record: Path, name: str, number: int, batch_id: str) -> None:
        super().__init__(record, name, number)
        self.codes["quality"] = Codes(_QUALITY)
        self.batch_code = self.codes["batch_id"].code(batch_id)
        self.key_device: list[int] = []
        self.key_channel: list[int] = []
        self.key_unit: list[int | None] = []
        self.keys: list[int] = []
        self.times: list[datetime] = []
        self.values: list[float | int | bool | str] = []
        self.quality: list[int] = []
        self.seq: list[int] = []
        self.mixed = False
        self._zeros = pa.array([], pa.int32())
        self._nulls = (pa.nulls(0, pa.string()), pa.nulls(0, pa.bool_()))
        self.parts: list[_Part] = []
        self.part_rows = 0
        self.unflushed = 0  # rows queued or written since the last flush

    def add_key(self, device_id: str, channel: str, unit: str | None) -> int:
        self.key_device.append(self.codes["device_id"].code(device_id))
        self.key_channel.append(self.codes["channel"].code(channel))
        self.key_unit.append(None if unit is None else self.codes["unit"].code(unit))
        return len(self.key_device) - 1

    def add_part(self, part: _Part) -> None:
        """Queue one validated columnar batch; written with the next ones as one batch."""
        self.parts.append(part)
        self.part_rows += len(part[0])
        self.unflushed += len(part[0])

    def write_parts(self) -> None:
        """Write the queued columnar batches as one record batch (fewer, larger IPC messages)."""
        parts, n = self.parts, self.part_rows
        if not parts:
            return
        self.parts, self.part_rows = [], 0
        codes = self.codes
        zeros = self.zeros(n)

        def cat(i: int) -> pa.Array:
            arrays = [part[i] for part in parts]
            return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)

        if all(part[5] is None for part in parts):
            quality = zeros
        else:
            quality = pa.concat_arrays(
                [zeros.slice(0, len(p[0])) if p[5] is None else p[5] for p in parts]
            )
        columns = [
            codes["batch_id"].encode(zeros),
            codes["device_id"].encode(cat(0)),
            codes["channel"].encode(cat(1)),
            cat(2),
            cat(3),
            self.nulls(n, 0),
            self.nulls(n, 1),
            codes["unit"].encode(cat(4)),
            codes["quality"].encode(quality),
            cat(6),
        ]
        self.write(pa.RecordBatch.from_arrays(columns, schema=self.schema))

    def zeros(self, n: int) -> pa.Array:
        if len(self._zeros) < n:
            self._zeros = pc.fill_null(pa.nulls(max(n, 65_536), pa.int32()), 0)
        return self._zeros.slice(0, n)

    def nulls(self, n: int, which: int) -> pa.Array:
        if len(self._nulls[0]) < n:
            size = max(n, 65_536)
            self._nulls = (pa.nulls(size, pa.string()), pa.nulls(size, pa.bool_()))
        return self._nulls[which].slice(0, n)

    def flush(self, durable: bool) -> None:
        super().flush(durable)
        self.unflushed = 0

    def write_rows(self) -> None:
        self.write_parts()  # first: rows are written in the order they were accepted
        n = len(self.keys)
        if not n:
            return
        keys = pa.array(self.keys, pa.int32())
        codes = self.codes
        if self.mixed:
            numbers = [v if _KIND[type(v)] == "number" else None for v in self.values]
            texts = [v if type(v) is str else None for v in self.values]
            bools = [v if type(v) is bool else None for v in self.values]
            value = pa.array(numbers, pa.float64())
            value_text = pa.array(texts, pa.string())
            value_bool = pa.array(bools, pa.bool_())
        else:
            value = pa.array(self.values, pa.float64())
            value_text = pa.nulls(n, pa.string())
            value_bool = pa.nulls(n, pa.bool_())
        columns = [
            codes["batch_id"].encode(self.zeros(n)),
            codes["device_id"].encode(pc.take(pa.array(self.key_device, pa.int32()), keys)),
            codes["channel"].encode(pc.take(pa.array(self.key_channel, pa.int32()), keys)),
            pa.array(self.times, pa.timestamp("us", tz="UTC")),
            value,
            value_text,
            value_bool,
            codes["unit"].encode(pc.take(pa.array(self.key_unit, pa.int32()), keys)),
            codes["quality"].encode(pa.array(self.quality, pa.int32())),
            pa.array(self.seq, pa.int64()),
        ]
        self.keys, self.times, self.values, self.quality, self.seq = [], [], [], [], []
        self.mixed = False
        self.unflushed += n
        self.write(pa.RecordBatch.from_arrays(columns, schema=self.schema))


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
        self._samples = _Samples(path, "samples", segment, self.batch_id)
        self._tables: dict[str, _Table] = {
            "samples": self._samples,
            "events": _Table(path, "events", segment),
            "audit": _Table(path, "audit", segment),
            "results": _Table(path, "results", segment),
        }
        self._declared: dict[tuple[str, str], str | None] = dict(channel_units)
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._valid_keys: dict[tuple[int, int, int | None, int | None], set[int]] = {}
        self._units_checked: tuple[pa.Array, pa.Array, pa.Array] | None = None
        self._last_plan: _Plan | None = None
        for (device_id, channel), (unit, kind) in channels.items():
            key = self._samples.add_key(device_id, channel, unit)
            self._channels[device_id, channel] = _Channel(key, unit, kind)
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
        entries = _read_audit(folder)
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
        chained = _chained_digests(entries)
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
            channels=_read_channels(folder),
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
        channel = self._channels.get((sample.device_id, sample.channel))
        if channel is None or channel.unit != sample.unit or channel.kind != _KIND.get(type(value)):
            admitted = self._admit(sample.device_id, sample.channel, sample.unit, type(value))
            assert admitted is not None
            channel = admitted
        timestamp = sample.timestamp
        if timestamp.tzinfo is None:
            raise self._invalid(sample.device_id, sample.channel, "timestamp has no time zone")
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
                s.quality.append(_BAD)  # NaN and infinities are never good data
            else:
                s.quality.append(_QUALITY_CODE[sample.quality])
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
        prepared = [self._prepare(batch) for batch in batches]
        with self._lock:
            self._check_open()
            samples = self._samples
            try:
                if samples.keys:
                    samples.write_rows()
                for part in prepared:
                    if len(part[0]):
                        samples.add_part(part)
                if samples.part_rows >= _COALESCE_ROWS:
                    samples.write_parts()
            except (OSError, pa.ArrowException) as exc:
                raise self._fail("writing samples", exc) from None
            if samples.unflushed + len(samples.keys) >= self._flush_rows:
                self._flush_locked()

    def _plan(self, batch: pa.RecordBatch) -> _Plan:
        """Where the columns are and which need casts; checked once per input schema."""
        schema = batch.schema
        plan = self._last_plan
        if plan is not None and plan.schema.equals(schema):
            return plan
        names = schema.names
        missing = {"device_id", "channel", "unit", "timestamp", "value", "seq"} - set(names)
        if missing:
            raise RecordError(f"batch {self.batch_id}: add_samples needs columns {sorted(missing)}")

        def bad(message: str) -> RecordValidationError:
            return self._invalid(_first(batch, "device_id"), _first(batch, "channel"), message)

        time = schema.field("timestamp").type
        if not pa.types.is_timestamp(time) or time.tz is None:
            raise bad(f"timestamp column is {time}, needs a timezone-aware timestamp")
        value = schema.field("value").type
        if not (pa.types.is_floating(value) or pa.types.is_integer(value)):
            raise bad(
                f"value of the wrong type ({value}); add_samples takes numbers, "
                "use add_sample for text and boolean samples",
            )
        seq = schema.field("seq").type
        if not pa.types.is_integer(seq):
            raise bad("seq must be integers without nulls")
        index = schema.get_field_index
        plan = _Plan(
            schema=schema,
            columns=tuple(index(n) for n in ("device_id", "channel", "unit", "timestamp")),
            value=index("value"),
            seq=index("seq"),
            quality=index("quality") if "quality" in names else None,
            cast_time=time != _TIME,
            cast_value=value != pa.float64(),
            cast_seq=seq != pa.int64(),
        )
        self._last_plan = plan
        return plan

    def _prepare(self, batch: pa.RecordBatch) -> _Part:
        plan = self._plan(batch)
        codes = self._samples.codes
        given = batch.columns
        device_col, channel_col, unit_col, time = (given[i] for i in plan.columns)
        device = codes["device_id"].remap(device_col)
        channel = codes["channel"].remap(channel_col)
        unit = codes["unit"].remap(unit_col)

        def bad(message: str) -> RecordValidationError:
            return self._invalid(_first(batch, "device_id"), _first(batch, "channel"), message)

        value = given[plan.value]
        seq = given[plan.seq]
        if seq.null_count:
            raise bad("seq must be integers without nulls")
        if unit_col.null_count or device.null_count or channel.null_count or time.null_count:
            raise bad("device_id, channel, unit and timestamp need values")
        quality: pa.Array | None = None
        if plan.quality is not None:
            quality_codes = codes["quality"]
            given_quality = quality_codes.remap(given[plan.quality])
            if len(quality_codes.values) > len(_QUALITY):
                wrong = quality_codes.values[len(_QUALITY)]
                quality_codes.forget(len(_QUALITY))
                raise bad(f"quality {wrong!r} is not one of {_QUALITY}")
            if given_quality.null_count:
                raise bad("quality needs values")
            quality = given_quality
        self._check_units(batch, device, channel, unit)
        if pa.types.is_floating(value.type):
            finite = pc.is_finite(value)
            if not pc.all(finite).as_py():  # NaN and infinities are never good data
                base = quality if quality is not None else self._samples.zeros(len(value))
                quality = pc.if_else(pc.fill_null(finite, True), base, _int32(_BAD))
        return (
            device,
            channel,
            time.cast(_TIME, safe=False) if plan.cast_time else time,
            value.cast(pa.float64()) if plan.cast_value else value,
            unit,
            quality,
            seq.cast(pa.int64()) if plan.cast_seq else seq,
        )

    def _check_units(
        self, batch: pa.RecordBatch, device: pa.Array, channel: pa.Array, unit: pa.Array
    ) -> None:
        """Reject the batch if any (device, channel) has a unit other than its channel's."""
        last = self._units_checked
        if (
            last is not None
            and last[1].equals(channel)
            and last[0].equals(device)
            and last[2].equals(unit)
        ):
            return  # the same (device, channel, unit) codes, row for row, as a batch accepted
        codes = self._samples.codes
        one_device = codes["device_id"].single(batch.column("device_id"))
        one_unit = codes["unit"].single(batch.column("unit"))
        n_channel = len(codes["channel"].values)
        n_unit = len(codes["unit"].values)
        key = channel
        if len(codes["device_id"].values) * n_channel * n_unit >= 2**31:
            key = channel.cast(pa.int64())
        if one_device is None:
            key = pc.add(pc.multiply(device, _int32(n_channel)), key)
        if one_unit is None:
            key = pc.add(pc.multiply(key, _int32(n_unit)), unit)
        found = pc.unique(key).to_pylist()
        shape = (n_channel, n_unit, one_device, one_unit)
        valid = self._valid_keys.setdefault(shape, set())
        if valid.issuperset(found):
            self._units_checked = (device, channel, unit)
            return
        new: dict[tuple[str, str], str] = {}
        for combo in found:
            if one_unit is None:
                combo, u = divmod(combo, n_unit)
            else:
                u = one_unit
            if one_device is None:
                d, c = divmod(combo, n_channel)
            else:
                d, c = one_device, combo
            device_id = codes["device_id"].values[d]
            channel_name = codes["channel"].values[c]
            unit_code = codes["unit"].values[u]
            known = self._channels.get((device_id, channel_name))
            if known is None or known.unit != unit_code or known.kind != "number":
                self._admit(device_id, channel_name, unit_code, float, register=False)
                other = new.setdefault((device_id, channel_name), unit_code)
                if other != unit_code:
                    raise self._invalid(
                        device_id, channel_name, f"units {other!r} and {unit_code!r} in one batch"
                    )
        for (device_id, channel_name), unit_code in new.items():
            self._admit(device_id, channel_name, unit_code, float)
        valid.update(found)
        self._units_checked = (device, channel, unit)

    def _admit(
        self,
        device_id: str,
        channel: str,
        unit: str | None,
        value_type: type,
        *,
        register: bool = True,
    ) -> _Channel | None:
        """Check a (device, channel) that is new or differs from what it recorded so far;
        remember it as the channel's unit and kind if `register`."""
        kind = _KIND.get(value_type)
        if kind is None:
            raise self._invalid(
                device_id, channel, f"value of the wrong type ({value_type.__name__})"
            )
        if (kind == "number") != (unit is not None):
            raise self._invalid(
                device_id,
                channel,
                "a numeric sample needs a unit" if unit is None else f"a {kind} sample has no unit",
            )
        known = self._channels.get((device_id, channel))
        if known is not None:
            if known.kind != kind:
                raise self._invalid(
                    device_id,
                    channel,
                    f"value of the wrong type: a {kind} value, but the channel records "
                    f"{known.kind} values",
                )
            if known.unit != unit:
                raise self._invalid(
                    device_id,
                    channel,
                    f"unit {unit!r} differs from {known.unit!r}, the unit this channel was first "
                    "recorded with; convert at the adapter edge",
                )
            return known
        declared = self._declared.get((device_id, channel), unit)
        if declared != unit:
            raise self._invalid(
                device_id, channel, f"unit {unit!r} differs from the declared unit {declared!r}"
            )
        if unit is not None:
            try:
                validate_unit(unit)
            except UnitError as exc:
                raise self._invalid(device_id, channel, str(exc)) from None
        if not register:
            return None
        with self._lock:
            key = self._samples.add_key(device_id, channel, unit)
            admitted = _Channel(key, unit, kind)
            self._channels[device_id, channel] = admitted
        return admitted

    def _invalid(self, device_id: str, channel: str, message: str) -> RecordValidationError:
        return RecordValidationError(self.batch_id, device_id, channel, message)

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
                self._declared[device_id, channel] = unit
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


@functools.lru_cache(maxsize=256)
def _int32(value: int) -> pa.Scalar:
    return pa.scalar(value, pa.int32())


def _first(batch: pa.RecordBatch, column: str) -> str:
    if batch.num_rows == 0:
        return "?"
    value = batch.column(column)[0].as_py()
    return "?" if value is None else str(value)


def _read_audit(path: Path) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for seg in segments(path, "audit"):
        batches, _ = read_segment(seg)
        for batch in batches:
            entries.extend(chain.row_entry(row) for row in batch.to_pylist())
    return entries


def _chained_digests(entries: Sequence[AuditEntry]) -> set[str]:
    """Every SHA-256 an audit entry's value names (files added, tables sealed)."""
    found: set[str] = set()

    def walk(value: JsonValue) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "sha256" and isinstance(item, str):
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for entry in entries:
        walk(entry.value)
    return found


def _read_channels(path: Path) -> dict[tuple[str, str], tuple[str | None, Kind]]:
    """(device, channel) -> (unit, kind) of every channel recorded in the open segments."""
    found: dict[tuple[str, str], tuple[str | None, Kind]] = {}
    columns = ["device_id", "channel", "unit", "value_bool"]
    for seg in segments(path, "samples"):
        for batch in SegmentReader(seg):  # one batch in memory at a time
            groups = (
                pa.Table.from_batches([batch.select(columns)])
                .group_by(columns[:3], use_threads=False)
                .aggregate([("value_bool", "count")])
            )
            for row in groups.to_pylist():
                if row["unit"] is not None:
                    kind: Kind = "number"
                else:
                    kind = "bool" if row["value_bool_count"] else "text"
                found.setdefault((str(row["device_id"]), str(row["channel"])), (row["unit"], kind))
    return found
