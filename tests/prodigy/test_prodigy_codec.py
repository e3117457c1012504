"""The codec: any bytes in give messages or typed errors (never a hang or another exception),
payloads round-trip, and golden frames pin the wire format (regenerate on purpose with
CELLAUTO_REGEN_GOLDEN=1). The adapter's and the simulator's independent codecs must agree."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto.errors import ProtocolError
from cellauto_adapters.prodigy.codec import (
    FrameDecoder,
    Message,
    PayloadError,
    decode,
    encode,
    format_number,
    format_time,
    frame,
    make_framer,
    next_seq,
    parse_number,
    parse_time,
)
from cellauto_simulators.prodigy import wire

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "prodigy" / "frames.json"

keys = st.from_regex(r"\A[a-z0-9_.]{1,12}\Z")
values = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
messages = st.builds(
    Message,
    kind=st.sampled_from(["H", "R", "N", "E", "L"]),
    seq=st.integers(0, 999_999),
    verb=st.from_regex(r"\A[A-Z_]{1,10}\Z"),
    fields=st.dictionaries(keys, values, max_size=6),
)


@given(st.binary(max_size=2000))
def test_any_bytes_give_messages_or_typed_errors(data: bytes) -> None:
    for item in FrameDecoder().feed(data):
        assert isinstance(item, Message | ProtocolError)


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_any_chunking_gives_messages_or_typed_errors(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        for item in decoder.feed(chunk):
            assert isinstance(item, Message | ProtocolError)


@given(st.binary(max_size=1100))
def test_any_payload_decodes_or_raises_payload_error(payload: bytes) -> None:
    try:
        message = decode(payload)
    except PayloadError as exc:
        error: PayloadError | None = exc
    else:
        error = None
        assert decode(encode(message)) == message
    assert error is None or error.raw == payload


@given(messages)
def test_payload_round_trip(message: Message) -> None:
    try:
        payload = encode(message)
    except PayloadError:
        assert len(str(message.fields)) > 300  # only too long a payload is refused
        return
    assert decode(payload) == message
    assert FrameDecoder().feed(frame(message)) == [message]


@given(messages)
def test_the_simulator_reads_what_the_adapter_writes(message: Message) -> None:
    try:
        payload = encode(message)
    except PayloadError:
        return
    parsed = wire.parse(payload)
    assert (parsed.kind, parsed.seq, parsed.verb, parsed.fields) == (
        message.kind,
        message.seq,
        message.verb,
        dict(message.fields),
    )
    assert wire.build(parsed.kind, parsed.seq, parsed.verb, parsed.fields) == payload


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15))
def test_numbers_round_trip(value: float) -> None:
    assert parse_number(format_number(value)) == value


def test_bad_numbers_times_and_fields_are_typed_errors() -> None:
    for text in ("nan", "inf", "1e999", "", "1,5", "0x10"):
        with pytest.raises(PayloadError):
            parse_number(text)
    with pytest.raises(PayloadError, match="YYYY"):
        parse_time("2026-01-05 08:00:00")
    t = datetime(2026, 1, 5, 8, 0, 10, tzinfo=UTC)
    assert parse_time(format_time(t)) == t
    message = decode(b"R000002 GET ch=chamber.temperature v=37.0x")
    with pytest.raises(PayloadError, match="GET v"):
        message.number("v")
    with pytest.raises(PayloadError, match="missing field 'u'"):
        message.text("u")
    assert next_seq(999_999) == 1


GOLDEN_MESSAGES = [
    Message("H", 1, "HELLO"),
    Message(
        "R",
        1,
        "HELLO",
        {
            "manufacturer": "Miltenyi Biotec",
            "model": "CliniMACS Prodigy (simulated)",
            "serial": "SIM-0001",
            "sw": "1.0",
            "hw": "A",
            "last": "0",
        },
    ),
    Message("H", 2, "GET", {"ch": "chamber.temperature"}),
    Message(
        "R",
        2,
        "GET",
        {
            "ch": "chamber.temperature",
            "v": "37.02",
            "u": "Cel",
            "q": "good",
            "t": "2026-01-05T08:00:10.000000Z",
            "seq": "41",
        },
    ),
    Message("H", 3, "SUB", {"ch": "*"}),
    Message(
        "H",
        4,
        "START",
        {
            "prog": "TCT",
            "run": "prodigy-1-3f2a",
            "job": "B-0001",
            "p.target_cells": "1e9",
            "p.target_cells.u": "{cells}",
        },
    ),
    Message("H", 5, "CMD", {"c": "hold"}),
    Message("N", 6, "NAK", {"code": "E04", "reason": "hold not allowed in state READY"}),
    Message("N", 0, "NAK", {"code": "E01", "reason": "sum8-hex checksum b'00' != b'4F'"}),
    Message(
        "E",
        42,
        "SAMPLE",
        {
            "ch": "fluidics.tubing_set",
            "x": "TS520",
            "q": "good",
            "t": "2025-01-01T00:20:00.000000Z",
        },
    ),
    Message(
        "E",
        43,
        "PROMPT",
        {"id": "P0001", "run": "prodigy-1-3f2a", "text": "Connect the apheresis bag."},
    ),
    Message(
        "E",
        44,
        "ALARM",
        {
            "id": "A0001",
            "code": "door_open",
            "sev": "error",
            "st": "raised",
            "msg": "Door open",
            "t": "2025-01-01T02:00:00.000000Z",
        },
    ),
    Message("H", 9, "LOG", {"from": "40"}),
    Message("L", 40, "STATE", {"state": "PROCESSING", "prev": "PREPARING", "cause": "done"}),
    Message("R", 9, "LOG", {"n": "5", "last": "44"}),
    Message("E", 45, "NOTE", {"text": "control bytes \x02\x03\x10 and ünïcode, percent-encoded"}),
]


def test_golden_frames() -> None:
    got = [
        {"payload": encode(m).decode("ascii"), "frame": frame(m).hex(" ")} for m in GOLDEN_MESSAGES
    ]
    if os.environ.get("CELLAUTO_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))
    framer = make_framer()
    for entry, message in zip(got, GOLDEN_MESSAGES, strict=True):
        raw = bytes.fromhex(entry["frame"])
        assert framer.feed(raw) == [entry["payload"].encode("ascii")]
        assert decode(entry["payload"].encode("ascii")) == message
        sim_frame = wire.framer().encode(
            wire.build(message.kind, message.seq, message.verb, dict(message.fields))
        )
        assert sim_frame == raw  # the simulator writes the same bytes
