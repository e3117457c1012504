"""Stable dictionary codes and the conversion of rows to Arrow record batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cellauto.records.tables import DICTIONARY_COLUMNS, file_schema


class Codes:
    """A growing string dictionary: codes never change, so batches only add dictionary deltas."""

    __slots__ = ("_array", "_last", "codes", "values")

    def __init__(self, preset: Sequence[str] = ()) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []
        self._array: pa.Array | None = None
        self._last: tuple[pa.Array, pa.Array | None] | None = None
        for value in preset:
            self.code(value)

    def code(self, value: str) -> int:
        """The code of `value`, assigning the next one if it is new."""
        code = self.codes.get(value)
        if code is None:
            code = len(self.values)
            self.codes[value] = code
            self.values.append(value)
            self._array = None
        return code

    def array(self) -> pa.Array:
        """Every value so far, as a string array (the dictionary of the next batch)."""
        if self._array is None:
            self._array = pa.array(self.values, pa.string())
        return self._array

    def encode(self, indices: pa.Array) -> pa.DictionaryArray:
        """Dictionary array of our codes `indices` (int32, nulls allowed)."""
        return pa.DictionaryArray.from_arrays(indices, self.array(), safe=False)

    def remap(self, array: pa.Array) -> pa.Array:
        """Our int32 codes for a dictionary array with any dictionary, or for plain strings."""
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        dictionary = array.dictionary
        indices = array.indices
        if indices.type != pa.int32():
            indices = indices.cast(pa.int32())
        if self._last is not None and self._last[0].equals(dictionary):
            mapping = self._last[1]
        else:
            codes = [self.code(v) for v in dictionary.to_pylist()]
            identity = codes == list(range(len(codes)))
            mapping = None if identity else pa.array(codes, pa.int32())
            self._last = (dictionary, mapping)
        return indices if mapping is None else pc.take(mapping, indices)

    def single(self, array: pa.Array) -> int | None:
        """Our code of the only value of a dictionary array with a one-entry dictionary."""
        if not pa.types.is_dictionary(array.type) or len(array.dictionary) != 1:
            return None
        value = array.dictionary[0].as_py()
        return None if value is None or array.null_count else self.code(value)

    def forget(self, count: int) -> None:
        """Drop every value from code `count` on (values assigned by a rejected batch)."""
        for value in self.values[count:]:
            del self.codes[value]
        del self.values[count:]
        self._array = None
        self._last = None


def rows_to_batch(
    table: str, rows: Sequence[dict[str, Any]], codes: dict[str, Codes]
) -> pa.RecordBatch:
    """A record batch of `table` from row dicts; dictionary columns coded with `codes`."""
    schema = file_schema(table)
    dict_columns = DICTIONARY_COLUMNS[table]
    arrays: list[pa.Array] = []
    for field in schema:
        column = [row[field.name] for row in rows]
        if field.name in dict_columns:
            book = codes[field.name]
            indices = pa.array([None if v is None else book.code(v) for v in column], pa.int32())
            arrays.append(book.encode(indices))
        else:
            arrays.append(pa.array(column, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
