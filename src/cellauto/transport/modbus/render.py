"""Render a register map into the tables of its protocol profile (Markdown).

The profile's prose is written by hand; the tables between the markers below are generated:
``python -m cellauto.transport.modbus.render schemas/protocols/acc200.toml`` rewrites them in
``acc200.md`` next to the map, ``--check`` only reports whether they are current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .codec import words_of
from .regmap import TABLES, Register, RegisterMap, load_register_map

__all__ = ["BEGIN", "END", "render_tables", "splice"]

BEGIN = "<!-- BEGIN GENERATED: register tables (edit the .toml, then run the renderer) -->"
END = "<!-- END GENERATED -->"

_TITLES = {
    "input": "Input registers (function 04): measurements, state, identity",
    "holding": "Holding registers (functions 03, 06, 16): setpoints, parameters, prompt answers",
    "coils": "Coils (functions 01, 05, 15): commands",
    "discrete": "Discrete inputs (function 02): alarm bits",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type(register: Register) -> str:
    if register.type == "string":
        return f"string[{register.length}]"
    if words_of(register) == 2:
        order = "high word first" if register.word_order == "big" else "low word first"
        return f"{register.type}, {order}"
    return register.type


def _details(register: Register) -> str:
    parts = [register.description.rstrip(".") + "."] if register.description else []
    if register.scale != 1 or register.offset != 0:
        parts.append(f"Value = raw x {register.scale:g} + {register.offset:g}.")
    if register.states:
        parts.append("Codes: " + ", ".join(f"{k} {v}" for k, v in register.states.items()) + ".")
    if register.alarm:
        parts.append(f"Alarm `{register.alarm}`.")
    if register.pulse:
        parts.append("Pulse: the device clears it once it acted.")
    return _cell(" ".join(parts))


def _row(address: str, register: Register, name: str) -> str:
    words = words_of(register)
    unit = "" if register.unit == "1" else f"`{register.unit}`"
    return f"| {address} | {words} | `{name}` | {_type(register)} | {unit} | {_details(register)} |"


_HEADER = "| address | words | name | type | unit | meaning |\n|---:|---:|---|---|---|---|"


def render_tables(regmap: RegisterMap) -> str:
    """The generated Markdown: link settings, one table per register table, blocks, groups,
    rings and downloads."""
    link = regmap.link
    out = [
        f"_Generated from the register map `{regmap.device}` version {regmap.map_version}._",
        "",
        "### Link",
        "",
        f"- Modbus TCP, port {link.port}, unit id {link.unit_id}.",
        f"- One request at a time, at least {link.min_interval * 1000:g} ms apart; "
        f"answer within {link.timeout:g} s.",
        f"- At most {link.max_read_registers} registers or {link.max_read_bits} bits per read, "
        f"{link.max_write_registers} registers per write.",
        f"- Reads may bridge up to {link.max_gap} unmapped registers (they read as 0).",
        f"- Device busy (exception 06) is retried {link.busy_retries} times.",
        "",
    ]
    for table in TABLES:
        registers = sorted(getattr(regmap, table), key=lambda r: r.address)
        if not registers:
            continue
        out += [f"### {_TITLES[table]}", "", _HEADER]
        out += [_row(str(r.address), r, r.name) for r in registers]
        out.append("")
    for block in regmap.blocks:
        last = block.base + (block.count - 1) * block.stride
        out += [
            f"### Block `{block.name}` ({block.table}), "
            f"i = {block.first}..{block.first + block.count - 1}",
            "",
            f"{_cell(block.description)} Base {block.base}, stride {block.stride} "
            f"(last block at {last}); addresses below are offsets.",
            "",
            _HEADER,
        ]
        out += [
            _row(f"+{r.address}", r, block.name + "." + r.name)
            for r in sorted(block.registers, key=lambda r: r.address)
        ]
        out.append("")
    if regmap.consistent:
        out += [
            "### Consistent groups",
            "",
            "| group | sequence register | members |",
            "|---|---|---|",
        ]
        out += [
            f"| {g.name} | `{g.sequence}` | {', '.join(f'`{m}`' for m in g.members)} |"
            for g in regmap.consistent
        ]
        out.append("")
    for ring in regmap.rings:
        out += [
            f"### Event ring `{ring.name}` ({ring.table})",
            "",
            f"{_cell(ring.description)} Head `{ring.head}`, base {ring.base}, "
            f"capacity {ring.capacity}, stride {ring.stride}; record fields (offsets):",
            "",
            _HEADER,
        ]
        out += [_row(f"+{f.address}", f, f.name) for f in ring.fields]
        out.append("")
    for download in regmap.downloads:
        end = download.data_address + download.data_words - 1
        codes = ", ".join(f"{k} {v}" for k, v in download.status_codes.items())
        out += [
            f"### Download `{download.name}`",
            "",
            f"{_cell(download.description)} Data: holding {download.data_address}-{end} "
            f"({2 * download.data_words} bytes, big-endian, two bytes per register); "
            f"length `{download.length}`, CRC `{download.crc}`, commit `{download.commit}`, "
            f"answer `{download.status}` ({codes}).",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def splice(document: str, tables: str) -> str:
    """`document` with the text between the markers replaced by `tables`."""
    head, sep, rest = document.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"the document lacks the markers {BEGIN!r} ... {END!r}")
    return f"{head}{BEGIN}\n\n{tables}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the tables of the .md next to each map."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="fail if a .md is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in args.maps:
        doc = path.with_suffix(".md")
        current = doc.read_text(encoding="utf-8")
        wanted = splice(current, render_tables(load_register_map(path)))
        if wanted != current:
            if args.check:
                stale.append(str(doc))
            else:
                doc.write_text(wanted, encoding="utf-8")
    if stale:
        print(
            f"stale: {', '.join(stale)}; run python -m cellauto.transport.modbus.render",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
