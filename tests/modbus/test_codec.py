"""The register codec: hypothesis round trips for every type, word order and scale; golden
register images (regenerate on purpose with CELLAUTO_REGEN_GOLDEN=1); typed errors."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto.errors import RegisterCodecError
from cellauto.transport.modbus import Register, decode, encode, recipe_crc, words_of

GOLDEN = Path(__file__).parents[1] / "golden" / "modbus" / "codec.json"
INT_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1)}
INT_RANGES |= {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}
SCALES = [(1.0, 0.0), (0.1, 0.0), (0.01, -40.0), (10.0, 5.0), (0.5, 273.15)]


def spec(kind: str, order: str = "big", scale: float = 1.0, offset: float = 0.0, length: int = 0):
    return Register(
        name="x", address=0, type=kind, word_order=order, scale=scale, offset=offset, length=length
    )  # type: ignore[arg-type]


@given(
    kind=st.sampled_from(sorted(INT_RANGES)),
    order=st.sampled_from(["big", "little"]),
    scaling=st.sampled_from(SCALES),
    data=st.data(),
)
def test_integers_round_trip_for_every_word_order_and_scale(
    kind: str, order: str, scaling: tuple[float, float], data: st.DataObject
) -> None:
    if order == "little" and kind in ("int16", "uint16"):
        order = "big"
    s = spec(kind, order, *scaling)
    raw = data.draw(st.integers(*INT_RANGES[kind]))
    registers = _raw_words(kind, raw, order)
    value = decode(s, registers)
    assert encode(s, value) == registers
    if scaling == (1.0, 0.0):
        assert value == raw
        assert isinstance(value, int)


def _raw_words(kind: str, raw: int, order: str) -> list[int]:
    fmt = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I"}[kind]
    packed = struct.pack(fmt, raw)
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words[::-1] if order == "little" else words


@given(
    order=st.sampled_from(["big", "little"]),
    words=st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2),
)
def test_float32_registers_round_trip_bit_exact(order: str, words: list[int]) -> None:
    s = spec("float32", order)
    value = decode(s, words)
    assert isinstance(value, float)
    if math.isnan(value):
        assert math.isnan(decode(s, encode(s, value)))
    else:
        assert encode(s, value) == words


@given(
    order=st.sampled_from(["big", "little"]),
    scaling=st.sampled_from(SCALES),
    value=st.floats(-1e6, 1e6, allow_nan=False),
)
def test_float32_values_round_trip_within_float32_precision(
    order: str, scaling: tuple[float, float], value: float
) -> None:
    s = spec("float32", order, *scaling)
    back = decode(s, encode(s, value))
    assert isinstance(back, float)
    assert math.isclose(back, value, rel_tol=1e-6, abs_tol=1e-6 * max(1.0, abs(scaling[1])))


@given(length=st.integers(1, 40), data=st.data())
def test_strings_round_trip(length: int, data: st.DataObject) -> None:
    alphabet = st.characters(min_codepoint=1, max_codepoint=127)
    text = data.draw(st.text(alphabet, max_size=length))
    s = spec("string", length=length)
    words = encode(s, text)
    assert len(words) == words_of(s) == (length + 1) // 2
    assert decode(s, words) == text


@given(value=st.booleans())
def test_bits_round_trip(value: bool) -> None:
    assert decode(spec("bool"), encode(spec("bool"), value)) is value


@pytest.mark.parametrize(
    ("s", "value", "reason"),
    [
        (spec("int16"), 40000, "does not fit int16"),
        (spec("uint16"), -1, "does not fit uint16"),
        (spec("int16", scale=0.1), 3276.8, "does not fit int16"),
        (spec("uint32"), math.nan, "cannot hold NaN"),
        (spec("int32"), math.inf, "cannot hold inf"),
        (spec("float32"), 1e39, "beyond float32 range"),
        (spec("uint16"), "7", "expected a number"),
        (spec("uint16"), True, "expected a number"),
        (spec("string", length=3), "abcd", "longer than 3"),
        (spec("string", length=3), "é", "not ASCII"),
        (spec("bool"), 1, "expected a bool"),
    ],
)
def test_values_that_do_not_fit_are_typed_errors_naming_the_register(
    s: Register, value: Any, reason: str
) -> None:
    with pytest.raises(RegisterCodecError, match=reason) as info:
        encode(s, value)
    assert info.value.register == "x"


def test_wrong_register_count_is_a_typed_error() -> None:
    with pytest.raises(RegisterCodecError, match="needs 2 registers, got 1"):
        decode(spec("float32"), [0])
    with pytest.raises(RegisterCodecError, match=r"out of 0..65535"):
        decode(spec("uint16"), [70000])


def test_recipe_crc_is_crc32_iso_hdlc() -> None:
    # the catalogue check value of CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and
    # xorout 0xFFFFFFFF)
    assert recipe_crc(b"123456789") == 0xCBF43926
    assert recipe_crc(b"") == 0


GOLDEN_CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("int16 -2", {"type": "int16"}, -2),
    ("uint16 0xBEEF", {"type": "uint16"}, 0xBEEF),
    ("int32 big -123456", {"type": "int32"}, -123456),
    ("int32 little -123456", {"type": "int32", "word_order": "little"}, -123456),
    ("uint32 big", {"type": "uint32"}, 0x12345678),
    ("uint32 little", {"type": "uint32", "word_order": "little"}, 0x12345678),
    ("float32 big 37.0", {"type": "float32"}, 37.0),
    ("float32 little 37.0", {"type": "float32", "word_order": "little"}, 37.0),
    ("float32 big -0.5", {"type": "float32"}, -0.5),
    ("int16 x0.1 37.2 Cel", {"type": "int16", "scale": 0.1}, 37.2),
    ("uint16 x0.01 -40 offset", {"type": "uint16", "scale": 0.01, "offset": -40}, 25.5),
    ("string 8 ACC-200", {"type": "string", "length": 8}, "ACC-200"),
    ("bool", {"type": "bool"}, True),
]


def test_golden_register_images() -> None:
    produced = {
        label: {"spec": fields, "value": value, "registers": encode(_spec(fields), value)}
        for label, fields, value in GOLDEN_CASES
    }
    if os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(produced, indent=1) + "\n", encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert produced == golden
    for case in golden.values():
        assert decode(_spec(case["spec"]), case["registers"]) == pytest.approx(case["value"])


def _spec(fields: dict[str, Any]) -> Register:
    return Register.model_validate({"name": "x", "address": 0} | fields)
