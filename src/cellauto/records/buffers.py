"""The writer's buffers: pending rows of each table and the append-only segment they go to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from cellauto.records.encode import Codes, rows_to_batch
from cellauto.records.files import DIR_MODE, create_exclusive
from cellauto.records.layout import (
    segment_name,
)
from cellauto.records.tables import file_schema

Kind = Literal["number", "bool", "text"]
KIND: dict[type, Kind] = {float: "number", int: "number", bool: "bool", str: "text"}
QUALITY = ("good", "uncertain", "bad")
QUALITY_CODE: dict[str, int] = {q: i for i, q in enumerate(QUALITY)}
BAD = QUALITY_CODE["bad"]
COALESCE_ROWS = 65_536
"""Columnar batches are queued and written as one record batch of about this many rows."""
TIME = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Channel:
    key: int
    unit: str | None
    kind: Kind


Part = tuple[pa.Array, pa.Array, pa.Array, pa.Array, pa.Array, pa.Array | None, pa.Array]
"""A validated columnar batch in our codes: device, channel, timestamp, value, unit, quality
(None: all good), seq."""


class Segment:
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


class TableBuffer:
    """Pending rows of one table and the segment they go to."""

    def __init__(self, record: Path, name: str, number: int) -> None:
        self.name = name
        self.schema = file_schema(name)
        self.file = record / name / segment_name(number)
        self.codes = {f.name: Codes() for f in self.schema if pa.types.is_dictionary(f.type)}
        self.segment: Segment | None = None
        self.rows: list[dict[str, Any]] = []
        self.dirty = False

    def write(self, batch: pa.RecordBatch) -> None:
        if self.segment is None:
            self.segment = Segment(self.file, self.schema)
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


class SampleBuffer(TableBuffer):
    """The samples table, kept as column lists for the per-sample path."""

    def __init__(self, record: Path, name: str, number: int, batch_id: str) -> None:
        super().__init__(record, name, number)
        self.codes["quality"] = Codes(QUALITY)
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
        self.parts: list[Part] = []
        self.part_rows = 0
        self.unflushed = 0  # rows queued or written since the last flush

    def add_key(self, device_id: str, channel: str, unit: str | None) -> int:
        self.key_device.append(self.codes["device_id"].code(device_id))
        self.key_channel.append(self.codes["channel"].code(channel))
        self.key_unit.append(None if unit is None else self.codes["unit"].code(unit))
        return len(self.key_device) - 1

    def add_part(self, part: Part) -> None:
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
            numbers = [v if KIND[type(v)] == "number" else None for v in self.values]
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
