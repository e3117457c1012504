"""The simulator's side of the Prodigy payload grammar (schemas/protocols/prodigy.md).

Written from the protocol document, independently of the adapter's codec: the two meet only on
the wire, so every simulator test also checks the adapter against the document.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from urllib.parse import quote, unquote_to_bytes

from cellauto.sim.families.framed import Refusal, Request
from cellauto.transport import SUM8_HEX, StxEtxFramer

MAX_PAYLOAD = 1024
_HEAD = re.compile(r"([HRNEL])(\d{6}) (\S+)", re.ASCII)
_VERB = re.compile(r"[A-Z_]+", re.ASCII)
_FIELD = re.compile(r"([a-z0-9_.]+)=((?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*)", re.ASCII)


class WireError(Refusal):
    """A payload the simulator cannot read or refuses; `code` is the NAK code to answer with."""


Frame = Request
"""One payload: kind letter, seq, verb, fields."""


def framer() -> StxEtxFramer:
    """STX/ETX, DLE stuffing, SUM8_HEX, payloads up to 1024 bytes."""
    return StxEtxFramer(SUM8_HEX, max_length=MAX_PAYLOAD)


def build(kind: str, seq: int, verb: str, fields: dict[str, str] | None = None) -> bytes:
    """The payload text of one message."""
    text = f"{kind}{seq:06d} {verb}"
    for key, value in (fields or {}).items():
        text += f" {key}={quote(value, safe='-._~')}"
    payload = text.encode("ascii")
    if len(payload) > MAX_PAYLOAD:
        raise WireError("E03", f"{verb}: reply would be {len(payload)} bytes")
    return payload


def parse(payload: bytes) -> Frame:
    """Read a payload; WireError with the NAK code that fits."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise WireError("E01", "non-ASCII payload") from None
    head, *parts = text.split(" ")
    match = _HEAD.fullmatch(f"{head} {parts[0]}" if parts else head)
    if match is None:
        raise WireError("E01", "expected <kind><6-digit seq> <VERB>")
    seq = int(match[2])
    if _VERB.fullmatch(match[3]) is None:
        verb = match[3][:40]
        raise WireError("E02", f"unknown verb {verb!r}: verbs are upper case A-Z and _", seq)
    fields: dict[str, str] = {}
    for part in parts[1:]:
        fm = _FIELD.fullmatch(part)
        if fm is None or fm[1] in fields:
            why = "given twice" if fm is not None else "not key=value in the payload grammar"
            raise WireError("E03", f"field {part[:40]!r} is {why}", seq)
        try:
            fields[fm[1]] = unquote_to_bytes(fm[2]).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("E03", f"field {fm[1]} is not UTF-8", seq) from None
    return Frame(match[1], seq, match[3], fields)


def num(value: float) -> str:
    """A number in its shortest exact form."""
    if not math.isfinite(value):
        raise WireError("E03", f"{value!r} is not finite")
    return repr(float(value)).removesuffix(".0")


def stamp(t: datetime) -> str:
    """UTC ISO 8601 with microseconds and Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
