"""The Prodigy payload grammar (schemas/protocols/prodigy.md section 2) and its frames: pure,
sans-I/O.

`decode(payload)` gives a `Message` or raises `PayloadError`; `encode(message)` is its inverse.
`FrameDecoder.feed(data)` turns any byte stream into messages and typed errors, never anything
else. Typed accessors (`Message.number`, `Message.time`, ...) raise `PayloadError` naming the
field, so a malformed field never surfaces as a bare ValueError. `CODEC` is the grammar as the
framed-stream family base (`cellauto.adapter.FramedEventDevice`) uses it; `params`,
`quantities` and `reply_data` say how fields carry cellauto values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast
from urllib.parse import quote, unquote_to_bytes

from pydantic import JsonValue

from cellauto.adapter import Incoming
from cellauto.errors import FramingError, ProtocolError
from cellauto.schema import PropertyValue, Quantity
from cellauto.transport import SUM8_HEX, StxEtxFramer

__all__ = [
    "CODEC",
    "MAX_PAYLOAD",
    "SEQ_MAX",
    "FrameDecoder",
    "Kind",
    "Message",
    "PayloadError",
    "decode",
    "encode",
    "format_number",
    "format_time",
    "make_framer",
    "next_seq",
    "params",
    "parse_number",
    "parse_time",
    "quantities",
    "reply_data",
]

Kind = Literal["H", "R", "N", "E", "L"]
KINDS: frozenset[str] = frozenset("HRNEL")
MAX_PAYLOAD = 1024
SEQ_MAX = 999_999

_HEAD = re.compile(rb"([HRNEL])([0-9]{6}) ([A-Z_]+)")
_KEY = re.compile(r"[a-z0-9_.]+")
_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
_UNBOUND = "?"


class PayloadError(ProtocolError):
    """A payload that does not follow the grammar, or a field that is missing or malformed."""

    def __init__(self, message: str, *, raw: bytes = b"", device: str = _UNBOUND) -> None:
        self.reason = message
        super().__init__(device, "decode", message, raw=raw)


@dataclass(frozen=True)
class Message:
    """One payload: kind, seq, verb and its fields in order."""

    kind: Kind
    seq: int
    verb: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        """A field's text, or `default`."""
        return self.fields.get(key, default)

    def text(self, key: str) -> str:
        """A required field's text."""
        try:
            return self.fields[key]
        except KeyError:
            raise PayloadError(f"{self.verb}: missing field {key!r}") from None

    def number(self, key: str) -> float:
        """A required numeric field."""
        return parse_number(self.text(key), f"{self.verb} {key}")

    def integer(self, key: str) -> int:
        """A required whole-number field."""
        text = self.text(key)
        if not text.isascii() or not text.isdigit():
            raise PayloadError(f"{self.verb}: field {key}={text!r} is not a whole number")
        return int(text)

    def time(self, key: str) -> datetime:
        """A required time field (UTC, ISO 8601 with Z)."""
        return parse_time(self.text(key), f"{self.verb} {key}")

    def prefixed(self, prefix: str) -> dict[str, str]:
        """Fields whose key starts with `prefix` (e.g. ``p.``), prefix removed."""
        return {k[len(prefix) :]: v for k, v in self.fields.items() if k.startswith(prefix)}

    def __str__(self) -> str:
        return encode(self).decode("ascii")


def encode(message: Message) -> bytes:
    """The payload bytes of `message`; PayloadError if it cannot be expressed."""
    if message.kind not in KINDS:
        raise PayloadError(f"kind {message.kind!r} is not one of H R N E L")
    if not 0 <= message.seq <= SEQ_MAX:
        raise PayloadError(f"seq {message.seq} is outside 0..{SEQ_MAX}")
    if not re.fullmatch(r"[A-Z_]+", message.verb):
        raise PayloadError(f"verb {message.verb!r} is not upper-case letters and _")
    parts = [f"{message.kind}{message.seq:06d} {message.verb}"]
    for key, value in message.fields.items():
        if not _KEY.fullmatch(key):
            raise PayloadError(f"{message.verb}: key {key!r} is not [a-z0-9_.]+")
        try:
            parts.append(f"{key}={quote(value, safe='-._~')}")
        except UnicodeEncodeError:
            raise PayloadError(f"{message.verb}: {key}: not encodable as UTF-8") from None
    payload = " ".join(parts).encode("ascii")
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"{message.verb}: payload of {len(payload)} bytes > {MAX_PAYLOAD}")
    return payload


def decode(payload: bytes) -> Message:
    """The message in `payload`; PayloadError (with `raw`) if it breaks the grammar."""
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"payload of {len(payload)} bytes > {MAX_PAYLOAD}", raw=payload)
    head, *rest = payload.split(b" ")
    verb_part = rest[0] if rest else b""
    match = _HEAD.fullmatch(head + b" " + verb_part)
    if match is None:
        raise PayloadError("expected <kind><6-digit seq> <VERB> at the start", raw=payload)
    kind, seq, verb = (g.decode("ascii") for g in match.groups())
    fields: dict[str, str] = {}
    for part in rest[1:]:
        key_bytes, eq, value_bytes = part.partition(b"=")
        if not eq:
            raise PayloadError(f"{verb}: field {part[:40]!r} has no '='", raw=payload)
        if not key_bytes.isascii() or not value_bytes.isascii():
            raise PayloadError(f"{verb}: non-ASCII bytes in a field", raw=payload)
        key, value = key_bytes.decode("ascii"), value_bytes.decode("ascii")
        if not _KEY.fullmatch(key):
            raise PayloadError(f"{verb}: key {key!r} is not [a-z0-9_.]+", raw=payload)
        if key in fields:
            raise PayloadError(f"{verb}: field {key!r} given twice", raw=payload)
        if not _VALUE.fullmatch(value):
            raise PayloadError(f"{verb}: {key}: not percent-encoded", raw=payload)
        try:
            fields[key] = unquote_to_bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError(f"{verb}: {key}: not UTF-8", raw=payload) from None
    return Message(cast(Kind, kind), int(seq), verb, fields)


def next_seq(seq: int) -> int:
    """The seq after `seq`: 1, 2, ... 999999, then 1 again (0 means "unreadable")."""
    return seq % SEQ_MAX + 1


def format_number(value: float) -> str:
    """A number as the wire writes it (shortest round-trip form)."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise PayloadError(f"{value!r} is not a finite number")
    if isinstance(value, int):
        return str(value)
    return repr(float(value)).removesuffix(".0")


def parse_number(text: str, what: str = "number") -> float:
    """A wire number back to float; PayloadError naming `what`."""
    if not _NUMBER.fullmatch(text):
        raise PayloadError(f"{what}: {text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError(f"{what}: {text!r} is out of range")
    return value


def format_time(t: datetime) -> str:
    """An aware datetime as UTC ISO 8601 with Z and microseconds."""
    if t.tzinfo is None:
        raise PayloadError(f"naive time {t.isoformat()}: the wire carries UTC only")
    return t.astimezone(UTC).strftime(_TIME)


def parse_time(text: str, what: str = "time") -> datetime:
    """A wire time back to an aware UTC datetime; PayloadError naming `what`."""
    try:
        return datetime.strptime(text, _TIME).replace(tzinfo=UTC)
    except ValueError:
        raise PayloadError(f"{what}: {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from None


def make_framer() -> StxEtxFramer:
    """The framer of the line: STX/ETX with DLE stuffing and SUM8_HEX, payloads <= 1024 B."""
    return StxEtxFramer(SUM8_HEX, max_length=MAX_PAYLOAD)


def frame(message: Message) -> bytes:
    """`message` framed for the wire."""
    return make_framer().encode(encode(message))


class FrameDecoder:
    """Bytes in, `Message`s and typed errors (FramingError, PayloadError) out, in stream order."""

    def __init__(self) -> None:
        self._framer = make_framer()

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        return list(self._iter(data))

    def _iter(self, data: bytes) -> Iterator[Message | ProtocolError]:
        for item in self._framer.feed(data):
            if isinstance(item, FramingError):
                yield item
                continue
            try:
                yield decode(item)
            except PayloadError as exc:
                yield exc


class ProdigyCodec:
    """The grammar as a `cellauto.adapter.FramedCodec`: `R` replies, `N` refusals (``code=``,
    ``reason=``), and `E` events and `L` logged events (both go to the event sequencer)."""

    wrap: int | None = SEQ_MAX

    def framer(self) -> StxEtxFramer:
        return make_framer()

    def request(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        return encode(Message("H", seq, verb, fields))

    def decode(self, payload: bytes) -> Incoming[Message]:
        m = decode(payload)
        if m.kind == "R":
            return Incoming("reply", m.seq, m)
        if m.kind == "N":
            return Incoming("refusal", m.seq, m, m.get("code") or "", m.get("reason") or "")
        if m.kind == "H":
            raise PayloadError("a host request sent by the device", raw=payload)
        return Incoming("event", m.seq, m)


CODEC = ProdigyCodec()


def params(parameters: dict[str, PropertyValue]) -> dict[str, str]:
    """Command parameters as `p.<name>` (and `p.<name>.u`) request fields."""
    fields: dict[str, str] = {}
    for name, value in parameters.items():
        if isinstance(value, Quantity):
            fields[f"p.{name}"] = format_number(value.value)
            fields[f"p.{name}.u"] = value.unit
        elif isinstance(value, bool):
            fields[f"p.{name}"] = "true" if value else "false"
        elif isinstance(value, int | float):
            fields[f"p.{name}"] = format_number(value)
        else:
            fields[f"p.{name}"] = value
    return fields


def reply_data(reply: Message) -> dict[str, JsonValue]:
    """An `X` reply's fields as JSON: integers, numbers (``{value, unit}`` with a `.u` field)
    and text."""
    data: dict[str, JsonValue] = {}
    for key, text in reply.fields.items():
        if key == "c" or key.endswith(".u"):
            continue
        if text.isascii() and text.isdigit():
            data[key] = int(text)
            continue
        try:
            number = parse_number(text)
        except PayloadError:
            data[key] = text
            continue
        unit = reply.get(f"{key}.u")
        data[key] = {"value": number, "unit": unit} if unit else number
    return data


def quantities(m: Message, prefix: str) -> dict[str, PropertyValue]:
    """The `<prefix><name>` fields of `m` as numbers, or quantities where `.u` gives a unit."""
    found: dict[str, PropertyValue] = {}
    for name, text in m.prefixed(prefix).items():
        if not name.endswith(".u"):
            number = parse_number(text, f"{m.verb} {prefix}{name}")
            unit = m.get(f"{prefix}{name}.u")
            found[name] = Quantity(value=number, unit=unit) if unit else number
    return found
