"""Vendor vocabulary of the protocol profiles as data (``schemas/protocols/<device>.toml``).

One table per device protocol: vendor states and the cellauto state each means, the vendor name
of each state command, error (status or NAK) codes with their meaning and the host's action, and
alarm severity codes. The simulator and the adapter both load it, so a vendor name is written
once; the tables marked "generated" in ``<device>.md`` are rendered from it:
``python -m cellauto.protocols`` rewrites them, ``--check`` exits 1 if one is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from cellauto.errors import ProfileError
from cellauto.resources import schemas_dir
from cellauto.state import State, StateCommand


def protocols_dir() -> Path:
    """Folder of the protocol profiles (``<device>.md`` and ``<device>.toml``)."""
    return schemas_dir() / "protocols"


@dataclass(frozen=True)
class ProtocolTables:
    """A protocol's vendor vocabulary; see the module doc."""

    name: str
    version: int
    states: Mapping[str, State]
    """vendor state -> cellauto state, in protocol order."""
    commands: Mapping[StateCommand, str]
    """state command -> its vendor name."""
    errors: Mapping[str, tuple[str, str]]
    """error code -> (meaning, what the host does)."""
    severities: Mapping[str, int]
    """alarm severity -> the vendor's severity number (empty: the wire sends the name)."""

    def vendor_state(self, state: State) -> str:
        """The vendor's name of a cellauto state."""
        for vendor, mapped in self.states.items():
            if mapped == state:
                return vendor
        raise KeyError(f"{self.name}: no vendor state for {state}")

    def state(self, vendor: str) -> State | None:
        """The cellauto state of a vendor state name (None if unknown)."""
        return self.states.get(vendor)

    def by_state(self) -> dict[State, str]:
        """cellauto state -> vendor name."""
        return {state: vendor for vendor, state in self.states.items()}


@cache
def load_protocol(name: str) -> ProtocolTables:
    """The vocabulary of protocol `name` (``"cocoon"``); ProfileError naming the file if bad."""
    path = protocols_dir() / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(str(path), [("", str(exc))]) from None
    if "protocol" not in data and "map_version" in data:
        data = _register_map_vocabulary(data)
    problems: list[tuple[str, str]] = []
    states: dict[str, State] = {}
    for vendor, text in _table(data, "states", problems).items():
        try:
            states[vendor] = State.parse(str(text))
        except ValueError as exc:
            problems.append((f"states.{vendor}", str(exc)))
    commands: dict[StateCommand, str] = {}
    for command, vendor in _table(data, "commands", problems).items():
        try:
            commands[StateCommand(command)] = str(vendor)
        except ValueError:
            problems.append((f"commands.{command}", "not a state command"))
    errors: dict[str, tuple[str, str]] = {}
    for code, pair in _table(data, "errors", problems).items():
        if not (isinstance(pair, list) and len(pair) == 2):
            problems.append((f"errors.{code}", "expected [meaning, host action]"))
            continue
        errors[code] = (str(pair[0]), str(pair[1]))
    severities = {str(k): int(v) for k, v in data.get("severities", {}).items()}
    if len(set(states.values())) != len(states):
        problems.append(("states", "two vendor states map to one cellauto state"))
    if problems:
        raise ProfileError(str(path), problems)
    return ProtocolTables(
        name=str(data.get("protocol", name)),
        version=int(data.get("version", 1)),
        states=states,
        commands=commands,
        errors=errors,
        severities=severities,
    )


def state_named(label: str) -> State:
    """A state from its full name (``Running/Idle``) or its PackML short name (``Idle``)."""
    try:
        return State.parse(label)
    except ValueError:
        return State.parse(f"Running/{label}")


def _register_map_vocabulary(data: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary of a Modbus register map: its ``device.state`` register's codes are the
    vendor states (PackML codes -> state names); commands are coils, errors exception codes."""
    register = next(
        (
            r
            for r in data.get("input", [])
            if isinstance(r, dict) and r.get("name") == "device.state"
        ),
        {},
    )
    states = register.get("states")
    if isinstance(states, dict):
        states = {code: str(state_named(str(label))) for code, label in states.items()}
    return {
        "protocol": data.get("device", ""),
        "states": states,
        "commands": {},
        "errors": {},
    }


def _table(data: dict[str, Any], key: str, problems: list[tuple[str, str]]) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        problems.append((key, "missing table"))
        return {}
    return value


# --- rendering the .md tables -------------------------------------------------------------------

_BLOCK = re.compile(
    r"(<!-- generated: (?P<section>[a-z]+) [^>]*-->\n)(?P<body>.*?)(<!-- end generated -->)",
    re.DOTALL,
)


def render(tables: ProtocolTables, section: str) -> str:
    """The Markdown table of one section (``states`` or ``errors``)."""
    if section == "states":
        rows = [f"| `{vendor}` | {state} |" for vendor, state in tables.states.items()]
        return "\n".join(["| vendor state | cellauto state |", "|---|---|", *rows]) + "\n"
    if section == "errors":
        rows = [f"| `{code}` | {m} | {action} |" for code, (m, action) in tables.errors.items()]
        return "\n".join(["| code | meaning | host action |", "|---|---|---|", *rows]) + "\n"
    raise ValueError(f"no generated section {section!r}; sections: states, errors")


def rendered_document(name: str) -> tuple[str, str]:
    """(current, up-to-date) text of ``<name>.md``."""
    path = protocols_dir() / f"{name}.md"
    text = path.read_text(encoding="utf-8")
    tables = load_protocol(name)

    def fill(match: re.Match[str]) -> str:
        return match.group(1) + render(tables, match["section"]) + match.group(4)

    return text, _BLOCK.sub(fill, text)


def protocol_names() -> list[str]:
    """Protocols with a vocabulary file (a ``<device>.toml`` with a ``protocol`` key; the folder
    also holds Modbus register maps, which `cellauto.transport.modbus` renders)."""
    return sorted(p.stem for p in protocols_dir().glob("*.toml") if _is_vocabulary(p))


def _is_vocabulary(path: Path) -> bool:
    with path.open("rb") as file:
        return "protocol" in tomllib.load(file)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the generated tables of every protocol document; ``--check``: exit 1 if stale."""
    parser = argparse.ArgumentParser(prog="python -m cellauto.protocols", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for name in protocol_names():
        current, fresh = rendered_document(name)
        if current != fresh:
            stale.append(name)
            if not args.check:
                (protocols_dir() / f"{name}.md").write_text(fresh, encoding="utf-8")
    for name in stale:
        verb = "is stale" if args.check else "rewritten"
        print(f"schemas/protocols/{name}.md: generated tables {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
