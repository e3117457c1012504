"""Running digests of a table's rows: what a checkpoint before a signature records.

The digest of the first n rows of a table does not depend on how the rows were split into
record batches or dictionary-encoded, so the writer computes it from its segments and `verify`
recomputes it from the sealed file. Each column feeds up to three SHA-256 streams: a null
mask (one byte per row), fixed-width values (little-endian, nulls as zero), and for strings the
lengths (int64) and the UTF-8 bytes. The table digest is SHA-256 over the column names and the
streams' digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

DIGEST_FORMAT = "cellauto-rows-v1"


class TableDigest:
    """A running digest of rows fed in order."""

    def __init__(self, schema: pa.Schema) -> None:
        self.rows = 0
        self._names = schema.names
        self._streams = [[hashlib.sha256() for _ in range(3)] for _ in schema]

    def update(self, batch: pa.RecordBatch) -> None:
        """Feed the next rows."""
        if batch.num_rows == 0:
            return
        for name, streams in zip(self._names, self._streams, strict=True):
            _feed(batch.column(name), streams)
        self.rows += batch.num_rows

    def hexdigest(self) -> str:
        """The digest of every row fed so far."""
        outer = hashlib.sha256(DIGEST_FORMAT.encode())
        for name, streams in zip(self._names, self._streams, strict=True):
            outer.update(name.encode() + b"\0")
            for stream in streams:
                outer.update(stream.digest())
        return outer.hexdigest()


def _fixed(array: pa.Array, width: int) -> memoryview:
    buffer = array.buffers()[1]
    start = array.offset * width
    return memoryview(buffer)[start : start + len(array) * width]


def _feed(array: pa.Array, streams: list[hashlib._Hash]) -> None:
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    n = len(array)
    nulls, values, data = streams
    nulls.update(_fixed(pc.is_null(array).cast(pa.uint8()), 1))
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        filled = pc.fill_null(array, "")
        values.update(_fixed(pc.binary_length(filled).cast(pa.int64()), 8))
        bounds = pa.Array.from_buffers(
            pa.int32(), n + 1, [None, filled.buffers()[1]], offset=filled.offset
        )
        start, end = bounds[0].as_py(), bounds[n].as_py()
        body = filled.buffers()[2]
        if body is not None and end > start:
            data.update(memoryview(body)[start:end])
        return
    if pa.types.is_boolean(kind):
        values.update(_fixed(pc.fill_null(array, False).cast(pa.uint8()), 1))
        return
    if pa.types.is_timestamp(kind) or pa.types.is_duration(kind):
        array = array.cast(pa.int64())
    filled = pc.fill_null(array, 0)
    values.update(_fixed(filled, filled.type.bit_width // 8))


def digests_at(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, rows: Sequence[int]
) -> dict[int, str]:
    """The digest of the first n rows for each n in `rows` (one pass); counts beyond the
    table's length are left out of the answer."""
    digest = TableDigest(schema)
    targets = sorted(set(rows))
    found: dict[int, str] = {}
    index = 0
    while index < len(targets) and targets[index] == 0:
        found[0] = digest.hexdigest()
        index += 1
    for batch in batches:
        position = 0
        while index < len(targets) and digest.rows + batch.num_rows - position >= targets[index]:
            take = targets[index] - digest.rows
            digest.update(batch.slice(position, take))
            position += take
            found[targets[index]] = digest.hexdigest()
            index += 1
        if position < batch.num_rows:
            digest.update(batch.slice(position))
    return found
