"""Declared, typed device URL options: an adapter lists what it accepts, unknown options and
unparsable values are a `DeviceOptionError` naming the device and the option."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from cellauto.errors import DeviceOptionError
from cellauto.transport.base import Backoff

T = TypeVar("T")


@dataclass(frozen=True)
class Option(Generic[T]):
    """One URL option: its name, how its text becomes a value, its default and what it means."""

    name: str
    parse: Callable[[str], T]
    default: T
    doc: str = ""


def number(
    name: str, default: float, doc: str = "", *, minimum: float = 0.0, maximum: float | None = None
) -> Option[float]:
    """A float option within [minimum, maximum]."""

    def parse(text: str) -> float:
        value = float(text)
        if value != value or value < minimum or (maximum is not None and value > maximum):
            top = "" if maximum is None else f" and {maximum:g}"
            raise ValueError(f"must be a number between {minimum:g}{top or ' and above'}")
        return value

    return Option(name, parse, default, doc)


def integer(
    name: str, default: int, doc: str = "", *, minimum: int = 0, maximum: int | None = None
) -> Option[int]:
    """An int option within [minimum, maximum]."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            top = "" if maximum is None else f" and {maximum}"
            raise ValueError(f"must be a whole number between {minimum}{top or ' and above'}")
        return value

    return Option(name, parse, default, doc)


def text(name: str, default: str = "", doc: str = "") -> Option[str]:
    """A free-text option (a path, a name)."""
    return Option(name, str, default, doc)


class Options:
    """The set of options an adapter declares; `a | b` combines two sets (b wins)."""

    def __init__(self, *options: Option[Any]) -> None:
        self._options: dict[str, Option[Any]] = {o.name: o for o in options}

    def __or__(self, other: Options) -> Options:
        return Options(*self._options.values(), *other._options.values())

    def __contains__(self, name: object) -> bool:
        return name in self._options

    def __iter__(self) -> Iterator[Option[Any]]:
        return iter(self._options.values())

    @property
    def names(self) -> list[str]:
        """The declared option names, sorted."""
        return sorted(self._options)

    def parse(self, device: str, given: Mapping[str, str]) -> Values:
        """The values of `given` (defaults for the rest); DeviceOptionError on an unknown
        option or a value that does not parse."""
        values: dict[str, Any] = {}
        for name, raw in given.items():
            option = self._options.get(name)
            if option is None:
                close = difflib.get_close_matches(name, self._options, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise DeviceOptionError(
                    device,
                    name,
                    "not an option of this device",
                    hint=f"{hint}options: {', '.join(self.names) or 'none'}",
                )
            try:
                values[name] = option.parse(raw)
            except (TypeError, ValueError, OverflowError) as exc:
                raise DeviceOptionError(
                    device, name, f"{raw!r} is not valid: {exc}", hint=option.doc
                ) from None
        return Values(self._options, values)


class Values:
    """Parsed option values; ``values[OPTION]`` is typed by the option."""

    def __init__(self, options: Mapping[str, Option[Any]], values: Mapping[str, Any]) -> None:
        self._options = options
        self._values = dict(values)

    def __getitem__(self, option: Option[T]) -> T:
        if option.name in self._values:
            return cast(T, self._values[option.name])
        return option.default

    def given(self, option: Option[Any]) -> bool:
        """Whether the URL set `option`."""
        return option.name in self._values


def host_port(device: str, address: str, *, default_host: str = "") -> tuple[str, int]:
    """``host:port`` of a URL address as (host, port); DeviceOptionError naming what is wrong."""
    host, colon, port = address.rstrip("/").rpartition(":")
    if not colon:
        host, port = address.rstrip("/"), ""
    host = host or default_host
    if not host:
        raise DeviceOptionError(
            device, "address", f"{address!r} has no host", hint="give <host>:<port>"
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DeviceOptionError(
            device, "address", f"{address!r} has no valid port", hint="a port is 1 to 65535"
        )
    return host, int(port)


TIMEOUT = number("timeout", 10.0, "s an operation may take", minimum=0.001)
HEARTBEAT = number("heartbeat", 1.0, "s between liveness probes; 0 turns them off")
CAPTURE = text("capture", "", "path: record the traffic as JSON Lines for replay")
RECONNECT_ATTEMPTS = integer(
    "reconnect_attempts", 100, "reconnect attempts before the device is declared lost", minimum=1
)
RECONNECT_TIME = number(
    "reconnect_time", 300.0, "s of reconnecting before the device is declared lost", minimum=0.001
)
CONNECTION = Options(TIMEOUT, HEARTBEAT, CAPTURE, RECONNECT_ATTEMPTS, RECONNECT_TIME)
"""The options every adapter accepts: `timeout`, `heartbeat`, `capture` and the reconnect
limits `reconnect_attempts` and `reconnect_time` (after which waiters get DeviceLost)."""


def reconnect_policy(
    values: Values, *, initial: float = 0.1, max_delay: float = 10.0, seed: int | None = None
) -> Backoff:
    """The Backoff for a transport, bounded by the URL's reconnect limits."""
    return Backoff(
        initial=initial,
        max_delay=max_delay,
        max_attempts=values[RECONNECT_ATTEMPTS],
        max_time=values[RECONNECT_TIME],
        seed=seed,
    )
