"""The one option set every simulator takes, from a URL query, the CLI or keyword arguments.

``speed`` (``max`` or a positive factor of real time), ``seed`` (an integer), ``port`` (a TCP
port, 0 or absent for a free one), ``pty`` (serve a pseudo-terminal; refused where the wire is
not a byte stream), ``faults`` (the fault grammar of `cellauto.sim.faults`, plus profile alarm
codes as kinds: ``door_open@10m:2m``). A device may declare extra options; anything else is
refused with a `SimOptionError` naming the device and the option.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from cellauto.errors import SimOptionError
from cellauto.sim.clock import Speed

COMMON_OPTIONS: Mapping[str, str] = {
    "speed": "'max' or a positive factor of real time",
    "seed": "integer seed of noise, variability and random fault times",
    "port": "TCP port to listen on (default: a free one)",
    "pty": "serve a pseudo-terminal instead of TCP (byte-stream wires only)",
    "faults": "fault schedule, e.g. disconnect@2h:30s,door_open@10m:2m (docs/faults.md)",
}
"""Every simulator's options, name -> what it means."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Parsed simulator options; `extra` holds the device's own declared options as text."""

    kind: str
    speed: Speed = 1.0
    seed: int = 0
    port: int = 0
    pty: bool = False
    faults: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


def parse_sim_options(
    kind: str,
    options: Mapping[str, str],
    *,
    pty: bool,
    extra: Mapping[str, str] | None = None,
    default_speed: Speed = 1.0,
) -> SimOptions:
    """Check and parse `options` for the `kind` simulator; `pty` says whether its wire can be
    served on a pseudo-terminal, `extra` declares its own options (name -> meaning)."""
    declared = dict(extra or {})
    for name in options:
        if name not in COMMON_OPTIONS and name not in declared:
            known = ", ".join(sorted({*COMMON_OPTIONS, *declared}))
            raise SimOptionError(kind, name, f"unknown option; known: {known}")
    speed = _speed(kind, options.get("speed"), default_speed)
    seed = _int(kind, "seed", options.get("seed", "0"))
    port = _int(kind, "port", options.get("port", "0") or "0")
    if not 0 <= port <= 65535:
        raise SimOptionError(kind, "port", f"{port} is not a TCP port (0..65535)")
    text = str(options.get("pty", "0")).strip().lower()
    if text not in _TRUE | _FALSE:
        raise SimOptionError(kind, "pty", f"{text!r} is not a yes/no value")
    on_pty = text in _TRUE
    if on_pty and not pty:
        raise SimOptionError(kind, "pty", f"the {kind} wire cannot be served on a pty")
    if on_pty and port:
        raise SimOptionError(kind, "pty", "a pty has no port; give one or the other")
    return SimOptions(
        kind=kind,
        speed=speed,
        seed=seed,
        port=port,
        pty=on_pty,
        faults=str(options.get("faults", "")),
        extra={k: str(v) for k, v in options.items() if k in declared},
    )


def _speed(kind: str, text: str | None, default: Speed) -> Speed:
    if text is None:
        return default
    if str(text).strip().lower() == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise SimOptionError(kind, "speed", f"{text!r}: expected 'max' or a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise SimOptionError(kind, "speed", f"{text!r}: must be a positive finite factor")
    return value


def _int(kind: str, name: str, text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise SimOptionError(kind, name, f"{text!r} is not an integer") from None
