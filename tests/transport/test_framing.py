"""Framers: round trips, resynchronisation after bad frames, bounded memory, golden encodings.

Regenerate the golden files on purpose with CELLAUTO_REGEN_GOLDEN=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellauto.errors import FramingError, ProtocolError
from cellauto.transport import (
    SUM8_HEX,
    XOR8_HEX,
    Framer,
    LengthPrefixFramer,
    LineFramer,
    StxEtxFramer,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "framing"
MAX = 64


def framers() -> list[Framer]:
    return [
        LineFramer(b"\r\n", max_length=MAX),
        LineFramer(b"\n", max_length=MAX),
        StxEtxFramer(SUM8_HEX, max_length=MAX),
        StxEtxFramer(XOR8_HEX, max_length=MAX),
        LengthPrefixFramer(2, max_length=MAX),
        LengthPrefixFramer(4, max_length=MAX),
    ]


def feed_chunked(framer: Framer, data: bytes, cuts: list[int]) -> list[bytes | FramingError]:
    out: list[bytes | FramingError] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += framer.feed(data[start:cut])
        start = cut
    return out


def payloads(framer: Framer) -> st.SearchStrategy[bytes]:
    data = st.binary(max_size=MAX)
    if isinstance(framer, LineFramer):
        return data.filter(lambda p: framer.terminator not in p)
    return data


@pytest.mark.parametrize("framer", framers(), ids=repr)
@given(data=st.data())
def test_encode_then_decode_round_trips_in_any_chunking(
    framer: Framer, data: st.DataObject
) -> None:
    framer.reset()
    sent = data.draw(st.lists(payloads(framer), max_size=8))
    wire = b"".join(framer.encode(p) for p in sent)
    cuts = data.draw(st.lists(st.integers(0, 10_000), max_size=6))
    assert feed_chunked(framer, wire, cuts) == sent
    assert framer.pending == 0


@pytest.mark.parametrize("framer", framers(), ids=repr)
@given(wire=st.binary(max_size=600), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_any_bytes_in_any_chunking_give_frames_or_framing_errors(
    framer: Framer, wire: bytes, cuts: list[int]
) -> None:
    framer.reset()
    for item in feed_chunked(framer, wire, cuts):
        assert isinstance(item, bytes | FramingError)
        if isinstance(item, bytes):
            assert len(item) <= MAX
    assert framer.pending <= 2 * MAX + 8  # memory stays bounded
    leftover = framer.reset()
    assert leftover is None or isinstance(leftover, FramingError)
    assert framer.pending == 0


@pytest.mark.parametrize(
    "framer", [f for f in framers() if not isinstance(f, LengthPrefixFramer)], ids=repr
)
@given(data=st.data())
@settings(max_examples=200)
def test_valid_frames_among_garbage_are_all_recovered(framer: Framer, data: st.DataObject) -> None:
    framer.reset()
    good = data.draw(st.lists(payloads(framer), min_size=1, max_size=6))
    garbage = st.binary(max_size=3 * MAX)
    if isinstance(framer, LineFramer):
        # A line protocol has no start marker: garbage is recoverable when it is whole lines.
        garbage = garbage.map(lambda g: g.replace(framer.terminator, b"") + framer.terminator)
    wire = b""
    for payload in good:
        wire += data.draw(garbage) + framer.encode(payload)
    cuts = data.draw(st.lists(st.integers(0, 10_000), max_size=6))
    decoded = [item for item in feed_chunked(framer, wire, cuts) if isinstance(item, bytes)]
    it = iter(decoded)
    assert all(any(p == d for d in it) for p in good), (good, decoded)


def test_stx_etx_reports_each_bad_frame_and_keeps_the_good_ones() -> None:
    framer = StxEtxFramer(SUM8_HEX)
    good = framer.encode(b"TEMP?")
    bad_checksum = good[:-2] + b"00"
    half = good[:4]
    items = framer.feed(b"noise" + good + bad_checksum + half + good)
    kinds = [i if isinstance(i, bytes) else i.reason for i in items]
    assert kinds == [
        "garbage between frames",
        b"TEMP?",
        f"sum8-hex checksum mismatch: frame has 00, payload gives {good[-2:].decode()}",
        "half a frame (no ETX before the next STX)",
        b"TEMP?",
    ]
    errors = [i for i in items if isinstance(i, FramingError)]
    assert [e.raw for e in errors] == [b"noise", bad_checksum, half]
    assert isinstance(errors[0], ProtocolError)


def test_stx_etx_escapes_control_bytes_so_any_payload_frames() -> None:
    framer = StxEtxFramer(XOR8_HEX)
    wire = framer.encode(b"\x02a\x03b\x10")
    assert wire == b"\x02\x10\x22a\x10\x23b\x10\x30\x03" + b"%02X" % (2 ^ 0x61 ^ 3 ^ 0x62 ^ 0x10)
    assert framer.feed(wire) == [b"\x02a\x03b\x10"]


def test_oversize_frames_are_reported_once_and_skipped() -> None:
    line = LineFramer(b"\n", max_length=8)
    items = line.feed(b"x" * 20) + line.feed(b"y" * 20 + b"\nok\n")
    assert [type(i) for i in items] == [FramingError, bytes]
    assert items[1] == b"ok"
    assert line.pending == 0
    stx = StxEtxFramer(max_length=8)
    items = stx.feed(stx.encode(b"z" * 8)[:1] + b"z" * 30 + stx.encode(b"ok"))
    assert [i if isinstance(i, bytes) else i.reason for i in items] == [
        "frame longer than 8 bytes",
        b"ok",
    ]


def test_line_framer_rejects_payloads_it_cannot_frame() -> None:
    with pytest.raises(FramingError, match="terminator"):
        LineFramer(b"\r\n").encode(b"a\r\nb")


def test_length_prefix_slides_past_an_impossible_length() -> None:
    framer = LengthPrefixFramer(2, max_length=16)
    items = framer.feed(b"\xff\xff" + framer.encode(b"hello"))
    assert [i if isinstance(i, bytes) else i.raw for i in items] == [b"\xff\xff", b"hello"]


def test_reset_reports_a_half_frame() -> None:
    framer = LengthPrefixFramer(4)
    assert framer.feed(b"\x00\x00\x00\x05ab") == []
    error = framer.reset()
    assert error is not None
    assert error.raw == b"\x00\x00\x00\x05ab"
    assert framer.reset() is None


GOLDEN_CASES: dict[str, Framer] = {
    "line-crlf": LineFramer(b"\r\n"),
    "stx-etx-sum8": StxEtxFramer(SUM8_HEX),
    "stx-etx-xor8": StxEtxFramer(XOR8_HEX),
    "length-2": LengthPrefixFramer(2),
    "length-4": LengthPrefixFramer(4),
}
GOLDEN_PAYLOADS = [b"", b"STATUS?", b"SET chamber.temperature 37.0", b"\x00\x02\x03\x10\xff"]


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden_encodings(name: str) -> None:
    framer = GOLDEN_CASES[name]
    sendable = [p for p in GOLDEN_PAYLOADS if not isinstance(framer, LineFramer) or b"\r" not in p]
    actual = {
        "framer": repr(framer),
        "frames": [{"payload": p.hex(), "wire": framer.encode(p).hex()} for p in sendable],
    }
    path = GOLDEN / f"{name}.json"
    if os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected, f"{path} differs; regenerate with CELLAUTO_REGEN_GOLDEN=1"
    wire = b"".join(bytes.fromhex(f["wire"]) for f in expected["frames"])
    assert framer.feed(wire) == [bytes.fromhex(f["payload"]) for f in expected["frames"]]
