"""Pure encode/decode of typed values to and from 16-bit Modbus registers.

Registers carry their bytes big-endian (the Modbus convention). A 32-bit value spans two
registers in the entry's word order: ``big`` puts the high word first, ``little`` the low word.
A string packs two ASCII characters per register, first character in the high byte, padded with
NUL bytes. Engineering value = raw value x scale + offset.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Literal, Protocol

from cellauto.errors import RegisterCodecError

__all__ = [
    "BIT_TYPES",
    "WORDS",
    "RegisterType",
    "Value",
    "ValueSpec",
    "WordOrder",
    "decode",
    "decoder",
    "encode",
    "words_of",
]

RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "string", "bool"]
WordOrder = Literal["big", "little"]
Value = int | float | str | bool

WORDS: dict[str, int] = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "bool": 1}
BIT_TYPES = frozenset({"bool"})
_STRUCT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}
_UNPACK = {kind: struct.Struct(fmt).unpack for kind, fmt in _STRUCT.items()}
_WORDS_FMT = {1: struct.Struct(">H"), 2: struct.Struct(">HH")}
_FLOAT32_MAX = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]


class ValueSpec(Protocol):
    """What the codec needs to know about one register-map entry."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> RegisterType: ...
    @property
    def word_order(self) -> WordOrder: ...
    @property
    def scale(self) -> float: ...
    @property
    def offset(self) -> float: ...
    @property
    def length(self) -> int: ...


def words_of(spec: ValueSpec) -> int:
    """Registers (or, for ``bool``, bits) the entry occupies."""
    if spec.type == "string":
        return (spec.length + 1) // 2
    return WORDS[spec.type]


def _scaled(spec: ValueSpec) -> bool:
    return spec.scale != 1 or spec.offset != 0


def _words(raw: bytes, spec: ValueSpec) -> list[int]:
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words[::-1] if spec.word_order == "little" else words


def encode(spec: ValueSpec, value: Value) -> list[int]:
    """The registers (0..65535 each; for ``bool`` one 0/1 bit) that carry `value`."""
    kind = spec.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise RegisterCodecError(spec.name, f"expected a bool, got {value!r}")
        return [int(value)]
    if kind == "string":
        return _encode_string(spec, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RegisterCodecError(spec.name, f"expected a number, got {value!r}")
    if math.isnan(value) and kind != "float32":
        raise RegisterCodecError(spec.name, f"{kind} cannot hold NaN")
    raw_value = (value - spec.offset) / spec.scale if _scaled(spec) else value
    if kind == "float32":
        if math.isfinite(raw_value) and abs(raw_value) > _FLOAT32_MAX:
            raise RegisterCodecError(spec.name, f"{value!r} is beyond float32 range")
        return _words(struct.pack(">f", raw_value), spec)
    if not math.isfinite(raw_value):
        raise RegisterCodecError(spec.name, f"{kind} cannot hold {value!r}")
    raw_int = round(raw_value)
    try:
        packed = struct.pack(_STRUCT[kind], raw_int)
    except struct.error:
        raise RegisterCodecError(
            spec.name, f"{value!r} (raw {raw_int}) does not fit {kind}"
        ) from None
    return _words(packed, spec)


def _encode_string(spec: ValueSpec, value: Value) -> list[int]:
    if not isinstance(value, str):
        raise RegisterCodecError(spec.name, f"expected a string, got {value!r}")
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise RegisterCodecError(spec.name, f"{value!r} is not ASCII") from None
    if b"\x00" in raw:
        raise RegisterCodecError(spec.name, "a string may not contain NUL")
    if len(raw) > spec.length:
        raise RegisterCodecError(
            spec.name, f"{value!r} is {len(raw)} characters, longer than {spec.length}"
        )
    raw = raw.ljust(2 * words_of(spec), b"\x00")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def decode(spec: ValueSpec, registers: list[int]) -> Value:
    """The value `registers` carry; ints stay ints unless the entry scales them."""
    return decoder(spec)(registers)


def decoder(spec: ValueSpec) -> Callable[[list[int]], Value]:
    """`decode` for one entry, prepared once for reading it many times:
    ``decoder(spec)(registers) == decode(spec, registers)``."""
    expected = words_of(spec)
    name, kind = spec.name, spec.type

    def checked(registers: list[int]) -> list[int]:
        if len(registers) != expected:
            raise RegisterCodecError(name, f"needs {expected} registers, got {len(registers)}")
        if registers and (min(registers) < 0 or max(registers) > 0xFFFF):
            raise RegisterCodecError(name, f"registers out of 0..65535: {registers}")
        return registers

    if kind == "bool":
        return lambda registers: bool(checked(registers)[0])
    if kind == "string":
        length = spec.length

        def string(registers: list[int]) -> Value:
            raw = b"".join(r.to_bytes(2, "big") for r in checked(registers))[:length]
            try:
                return raw.rstrip(b"\x00").decode("ascii")
            except UnicodeDecodeError:
                raise RegisterCodecError(name, f"bytes {raw!r} are not ASCII") from None

        return string
    unpack, pack = _UNPACK[kind], _WORDS_FMT[expected].pack
    little, scale, offset, scaled = (
        spec.word_order == "little",
        spec.scale,
        spec.offset,
        _scaled(spec),
    )

    def number(registers: list[int]) -> Value:
        # struct's pack range-checks each register: the common path pays for no other check
        try:
            raw: int | float = unpack(pack(*(registers[::-1] if little else registers)))[0]
        except struct.error:
            checked(registers)
            raise
        return raw * scale + offset if scaled else raw

    return number
