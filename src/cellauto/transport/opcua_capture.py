"""Capture of OPC UA traffic at the transport's API level, as JSON Lines.

One line per exchange: requests (`read`, `read_many`, `write`, `call`, `browse`, `subscribe`,
`subscribe_events`) with direction `out` and their result or error, notifications (`data`,
`event`) and connection `state` changes with direction `in`. Values keep their type through
tagged objects: `{"$dt": iso}` for datetimes, `{"$b64": ...}` for bytes, `{"$tuple": [...]}`.
`OpcUaReplay` (in `opcua_replay`) plays a capture back.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from asyncua import ua

from cellauto.errors import DeviceError

__all__ = ["Capture", "decode", "encode"]


def encode(value: Any) -> Any:
    """A value as JSON-ready data, tagging what JSON cannot hold."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: encode(v) for k, v in value._asdict().items()}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, ua.LocalizedText):
        return value.Text  # what an adapter reads of it (state and step names over LADS)
    if isinstance(value, DeviceError):
        return {"$error": type(value).__name__, "message": str(value)}
    return {"$repr": repr(value)}


def decode(data: Any) -> Any:
    """The inverse of `encode` (`$repr` values stay strings)."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if "$dt" in data:
            return datetime.fromisoformat(data["$dt"])
        if "$b64" in data:
            return base64.b64decode(data["$b64"])
        if "$tuple" in data:
            return tuple(decode(v) for v in data["$tuple"])
        if "$repr" in data:
            return data["$repr"]
        if "$error" in data:
            return data
        return {k: decode(v) for k, v in data.items()}
    return data


class Capture:
    """Writes a transport's traffic to a JSON Lines file (or an open text stream)."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, str | Path):
            self._stream: IO[str] = Path(target).open("w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self._t0 = time.monotonic()

    def record(self, entry: dict[str, Any]) -> None:
        """Append one exchange (`op` plus fields); direction defaults to `out`."""
        if self._stream.closed:
            return
        line = {"t": round(time.monotonic() - self._t0, 6), "dir": entry.get("dir", "out")}
        line |= {k: encode(v) for k, v in entry.items() if k != "dir"}
        self._stream.write(json.dumps(line, separators=(",", ":")) + "\n")

    def notification(self, sub_id: int, item: Any) -> None:
        """Append one notification of subscription `sub_id` (a data change or an event)."""
        if isinstance(item, dict):
            self.record({"op": "event", "dir": "in", "sub": sub_id, "fields": item})
        else:
            self.record({"op": "data", "dir": "in", "sub": sub_id} | item._asdict())

    def close(self) -> None:
        """Flush, and close the file if this capture opened it."""
        if self._stream.closed:
            return
        self._stream.flush()
        if self._owned:
            self._stream.close()
