"""A Modbus device's register map as data: tables of typed entries, repeated blocks (one per
vessel), consistent groups with a sequence register, event ring buffers and download blocks.

`load_register_map` reads a TOML map and validates it; every problem names the key path.
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cellauto.errors import RegisterMapError
from cellauto.profiles import key_path
from cellauto.resources import schemas_dir
from cellauto.schema.quantity import UnitCode

from .codec import RegisterType, WordOrder, words_of

__all__ = [
    "TABLES",
    "Block",
    "ConsistentGroup",
    "Download",
    "Entry",
    "LinkSettings",
    "Register",
    "RegisterMap",
    "Ring",
    "Table",
    "load_register_map",
]

Table = Literal["holding", "input", "coils", "discrete"]
TABLES: tuple[Table, ...] = ("holding", "input", "coils", "discrete")
BIT_TABLES = frozenset({"coils", "discrete"})
WRITABLE = frozenset({"holding", "coils"})

EntryName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_{}]*(\.[a-z][a-z0-9_{}]*)*$", max_length=96)
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Register(_Model):
    """One typed value at an address of a table (in a block or ring: an offset)."""

    name: EntryName
    address: int = Field(ge=0, le=0xFFFF)
    type: RegisterType = "uint16"
    word_order: WordOrder = "big"
    scale: float = 1.0
    offset: float = 0.0
    length: int = Field(default=0, ge=0, le=246, description="characters of a string")
    unit: UnitCode = "1"
    description: str = ""
    readback: bool = Field(default=True, description="confirm writes by reading back")
    pulse: bool = Field(default=False, description="a command coil the device clears itself")
    states: dict[str, str] = Field(default_factory=dict, description="raw code -> label")
    alarm: str = Field(default="", description="profile alarm code this bit raises")


@dataclass(frozen=True)
class Entry:
    """A register placed in its table, with its full name."""

    table: Table
    register: Register
    name: str = field(init=False)
    address: int = field(init=False)
    words: int = field(init=False)
    end: int = field(init=False)

    def __post_init__(self) -> None:
        words = words_of(self.register)
        object.__setattr__(self, "name", self.register.name)
        object.__setattr__(self, "address", self.register.address)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "end", self.register.address + words)


class Block(_Model):
    """Registers repeated `count` times, `stride` apart from `base`; `{i}` in `name` becomes
    the index (from `first`). Register addresses inside are offsets."""

    name: EntryName
    table: Table
    count: int = Field(ge=1, le=1000)
    first: int = 1
    base: int = Field(ge=0, le=0xFFFF)
    stride: int = Field(ge=1)
    description: str = ""
    registers: list[Register]


class ConsistentGroup(_Model):
    """Members (names or glob patterns) a device updates together, bumping `sequence` once per
    update; a read that spans several requests brackets them with reads of `sequence`."""

    name: str
    sequence: EntryName
    members: list[str] = Field(min_length=1)
    description: str = ""


class Ring(_Model):
    """An event ring buffer: `head` counts records ever written (the newest has sequence
    number `head`); record n sits in slot (n - 1) % capacity at `base + slot * stride`."""

    name: EntryName
    table: Literal["holding", "input"] = "input"
    head: EntryName
    base: int = Field(ge=0, le=0xFFFF)
    capacity: int = Field(ge=1, le=4096)
    stride: int = Field(ge=1, le=120)
    sequence_field: str = "seq"
    description: str = ""
    fields: list[Register] = Field(min_length=1)


class Download(_Model):
    """A byte block written into `data_words` holding registers from `data_address`, then
    `length` (bytes) and `crc` (CRC-32/ISO-HDLC of the bytes), then `commit` pulsed; the device
    answers in `status` with one of `status_codes`."""

    name: EntryName
    data_address: int = Field(ge=0, le=0xFFFF)
    data_words: int = Field(ge=1, le=0xFFFF)
    length: EntryName
    crc: EntryName
    commit: EntryName
    status: EntryName
    accepted: int = 1
    status_codes: dict[str, str] = Field(default_factory=dict)
    description: str = ""


class LinkSettings(_Model):
    """How to talk to the device: unit id, timeouts, pacing and request size limits."""

    unit_id: int = Field(default=1, ge=0, le=255)
    port: int = Field(default=502, ge=1, le=65535)
    timeout: float = Field(default=1.0, gt=0, description="s per request")
    min_interval: float = Field(default=0.0, ge=0, description="s between requests (pacing)")
    max_read_registers: int = Field(default=125, ge=1, le=125)
    max_read_bits: int = Field(default=2000, ge=1, le=2000)
    max_write_registers: int = Field(default=123, ge=1, le=123)
    max_write_bits: int = Field(default=1968, ge=1, le=1968)
    max_gap: int = Field(default=0, ge=0, description="unmapped registers a read may bridge")
    busy_retries: int = Field(default=3, ge=0)
    consistency_retries: int = Field(default=5, ge=1)


class RegisterMap(_Model):
    """A device's register map: everything an adapter needs to read and write it.

    Lookups are cached: derive a variant with ``RegisterMap.model_validate(...)``, not
    ``model_copy``, which would carry the old lookups over."""

    map_version: str
    device: str
    title: str
    design: str = Field(description="who designed the map (e.g. cellauto's own design)")
    link: LinkSettings = LinkSettings()
    holding: list[Register] = Field(default_factory=list)
    input: list[Register] = Field(default_factory=list)
    coils: list[Register] = Field(default_factory=list)
    discrete: list[Register] = Field(default_factory=list)
    blocks: list[Block] = Field(default_factory=list)
    consistent: list[ConsistentGroup] = Field(default_factory=list)
    rings: list[Ring] = Field(default_factory=list)
    downloads: list[Download] = Field(default_factory=list)

    @cached_property
    def entries(self) -> dict[str, Entry]:
        """Every named entry, blocks expanded (ring slots and download data excluded)."""
        found: dict[str, Entry] = {}
        for table, register, _path in self._placed():
            found.setdefault(register.name, Entry(table=table, register=register))
        return found

    def entry(self, name: str) -> Entry:
        """The entry called `name`; a KeyError lists near names."""
        try:
            return self.entries[name]
        except KeyError:
            near = difflib.get_close_matches(name, list(self.entries), n=5, cutoff=0.6)
            raise KeyError(
                f"register map {self.device} has no entry {name!r}"
                + (f"; entries nearby: {', '.join(near)}" if near else "")
            ) from None

    def matching(self, pattern: str) -> list[str]:
        """Entry names equal to `pattern` or matching it as a glob."""
        return [n for n in self.entries if n == pattern or fnmatch.fnmatchcase(n, pattern)]

    @cached_property
    def _groups(self) -> dict[str, ConsistentGroup]:
        found: dict[str, ConsistentGroup] = {}
        for group in self.consistent:
            for member in group.members:
                for name in self.matching(member):
                    found.setdefault(name, group)
        return found

    def group_of(self, name: str) -> ConsistentGroup | None:
        """The consistent group `name` belongs to, if any."""
        return self._groups.get(name)

    def ring(self, name: str) -> Ring:
        """The ring called `name`."""
        return next(r for r in self.rings if r.name == name)

    def download(self, name: str) -> Download:
        """The download block called `name`."""
        return next(d for d in self.downloads if d.name == name)

    def _placed(self) -> Iterator[tuple[Table, Register, str]]:
        for table in TABLES:
            for index, register in enumerate(getattr(self, table)):
                yield table, _as_bit(table, register), f"{table}[{index}]({register.name})"
        for b_index, block in enumerate(self.blocks):
            for i in range(block.first, block.first + block.count):
                prefix = block.name.replace("{i}", str(i))
                base = block.base + (i - block.first) * block.stride
                for r_index, register in enumerate(block.registers):
                    placed = register.model_copy(
                        update={
                            "name": f"{prefix}.{register.name}",
                            "address": base + register.address,
                        }
                    )
                    path = f"blocks[{b_index}]({block.name}).registers[{r_index}]"
                    yield block.table, _as_bit(block.table, placed), path

    def problems(self) -> list[tuple[str, str]]:
        """Everything wrong with the map beyond field types, as (key path, reason)."""
        problems: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        spans: dict[str, list[tuple[int, int, str]]] = {t: [] for t in TABLES}
        for table, register, path in self._placed():
            problems += _register_problems(table, register, path)
            if register.name in seen:
                problems.append(
                    (path, f"name {register.name!r} already used at {seen[register.name]}")
                )
            seen.setdefault(register.name, path)
            spans[table].append((register.address, register.address + words_of(register), path))
        for b_index, block in enumerate(self.blocks):
            if "{i}" not in block.name:
                problems.append((f"blocks[{b_index}]({block.name}).name", "needs {i}"))
            width = max(r.address + words_of(r) for r in block.registers)
            if width > block.stride:
                problems.append(
                    (f"blocks[{b_index}]({block.name}).stride", f"{block.stride} < width {width}")
                )
        for r_index, ring in enumerate(self.rings):
            problems += self._ring_problems(r_index, ring, spans)
        for d_index, download in enumerate(self.downloads):
            problems += self._download_problems(d_index, download, spans)
        for g_index, group in enumerate(self.consistent):
            path = f"consistent[{g_index}]({group.name})"
            if group.sequence not in self.entries:
                problems.append((f"{path}.sequence", f"no entry {group.sequence!r}"))
            for member in group.members:
                if not self.matching(member):
                    problems.append((f"{path}.members", f"{member!r} matches no entry"))
        for table_name, table_spans in spans.items():
            table_spans.sort()
            for (_, end, path), (start, _, other) in itertools.pairwise(table_spans):
                if start < end:
                    problems.append((other, f"overlaps {path} in {table_name}"))
            if table_spans and table_spans[-1][1] > 0x10000:
                problems.append((table_spans[-1][2], "runs past address 65535"))
        return problems

    def _ring_problems(
        self, index: int, ring: Ring, spans: dict[str, list[tuple[int, int, str]]]
    ) -> list[tuple[str, str]]:
        path = f"rings[{index}]({ring.name})"
        problems = [
            (f"{path}.fields[{i}]({f.name})", reason)
            for i, f in enumerate(ring.fields)
            for _, reason in _register_problems(ring.table, f, "")
        ]
        if ring.head not in self.entries:
            problems.append((f"{path}.head", f"no entry {ring.head!r}"))
        if not any(f.name == ring.sequence_field for f in ring.fields):
            problems.append((f"{path}.sequence_field", f"no field {ring.sequence_field!r}"))
        width = max(f.address + words_of(f) for f in ring.fields)
        if width > ring.stride:
            problems.append((f"{path}.stride", f"{ring.stride} < record width {width}"))
        spans[ring.table].append((ring.base, ring.base + ring.capacity * ring.stride, path))
        return problems

    def _download_problems(
        self, index: int, download: Download, spans: dict[str, list[tuple[int, int, str]]]
    ) -> list[tuple[str, str]]:
        path = f"downloads[{index}]({download.name})"
        wanted = {
            "length": ("holding", ("uint16", "uint32")),
            "crc": ("holding", ("uint32",)),
            "commit": ("coils", ("bool",)),
            "status": ("input", ("uint16",)),
        }
        problems = []
        for key, (table, types) in wanted.items():
            name = getattr(download, key)
            entry = self.entries.get(name)
            if entry is None:
                problems.append((f"{path}.{key}", f"no entry {name!r}"))
            elif entry.table != table or entry.register.type not in types:
                problems.append((f"{path}.{key}", f"must be a {table} {'/'.join(types)} entry"))
        end = download.data_address + download.data_words
        spans["holding"].append((download.data_address, end, f"{path}.data_address"))
        return problems


def _as_bit(table: Table, register: Register) -> Register:
    if table in BIT_TABLES and register.type != "bool":
        return register.model_copy(update={"type": "bool"})
    return register


def _register_problems(table: str, register: Register, path: str) -> list[tuple[str, str]]:
    problems = []
    if register.type == "string" and register.length == 0:
        problems.append((f"{path}.length", "a string needs a length (characters)"))
    if register.type == "bool" and table not in BIT_TABLES:
        problems.append((f"{path}.type", "bool lives in coils or discrete inputs"))
    if register.word_order == "little" and (words_of(register) != 2 or register.type == "string"):
        problems.append((f"{path}.word_order", "word order applies to 32-bit types only"))
    if register.scale == 0:
        problems.append((f"{path}.scale", "scale may not be 0"))
    if register.pulse and table != "coils":
        problems.append((f"{path}.pulse", "only coils pulse"))
    return problems


def load_register_map(name_or_path: str | Path) -> RegisterMap:
    """Read and validate a TOML register map: a path, or a device name for the map shipped in
    ``schemas/protocols/<device>.toml``. `RegisterMapError` names each key path."""
    source = Path(name_or_path)
    if isinstance(name_or_path, str) and source.suffix == "" and len(source.parts) == 1:
        source = schemas_dir() / "protocols" / f"{name_or_path}.toml"
    try:
        raw: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegisterMapError(str(source), [("", f"cannot read: {error}")]) from None
    return validate_register_map(raw, str(source))


def validate_register_map(raw: dict[str, Any], source: str = "<data>") -> RegisterMap:
    """Validate a map given as data (as read from TOML)."""
    try:
        regmap = RegisterMap.model_validate(raw)
    except ValidationError as error:
        problems = [(key_path(raw, e["loc"]), e["msg"]) for e in error.errors()]
        raise RegisterMapError(source, problems) from None
    if problems := regmap.problems():
        raise RegisterMapError(source, problems)
    return regmap
