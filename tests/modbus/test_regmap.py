"""Register maps: valid ones expand blocks and plan reads; broken ones name the key path."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto.errors import RegisterMapError
from cellauto.transport.modbus import (
    Entry,
    LinkSettings,
    Register,
    RegisterMap,
    load_register_map,
    plan_reads,
    plan_writes,
    validate_register_map,
)

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return tomllib.loads((HERE / "testmap.toml").read_text(encoding="utf-8"))


def test_blocks_expand_into_named_entries(regmap: RegisterMap) -> None:
    entry = regmap.entry("vessel3.volume")
    assert (entry.table, entry.address, entry.words) == ("input", 208, 2)
    assert regmap.entry("alarm.leak").register.type == "bool"
    assert regmap.matching("vessel*.state") == ["vessel1.state", "vessel2.state", "vessel3.state"]
    with pytest.raises(KeyError, match=r"no entry 'vessel9.volume'; entries nearby"):
        regmap.entry("vessel9.volume")


def test_reads_never_split_an_entry_and_respect_the_limit(regmap: RegisterMap) -> None:
    entries = [regmap.entry(n) for n in regmap.matching("sp.*")]
    plans = plan_reads(entries, LinkSettings(max_read_registers=5))
    assert [(p.address, p.count) for p in plans] == [(0, 4), (4, 5), (9, 5), (14, 1)]
    bridged = plan_reads(
        [regmap.entry("pv.f32"), regmap.entry("pv.far")], LinkSettings(max_gap=100)
    )
    assert [(p.address, p.count) for p in bridged] == [(1, 101)]


def _edit(raw: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "where", "reason"),
    [
        (["holding", 0, "type"], "int64", "holding[0](sp.i16).type", "Input should be"),
        (["holding", 4, "unit"], "degC", "holding[4](sp.f32).unit", "did you mean 'Cel'"),
        (["holding", 6, "length"], 0, "holding[6](sp.label).length", "needs a length"),
        (["holding", 1, "address"], 0, "holding[1](sp.u16)", "overlaps holding[0](sp.i16)"),
        (["holding", 1, "name"], "sp.i16", "holding[1](sp.i16)", "already used"),
        (["holding", 0, "word_order"], "little", "sp.i16).word_order", "32-bit types only"),
        (["holding", 0, "pulse"], True, "holding[0](sp.i16).pulse", "only coils pulse"),
        (["blocks", 0, "stride"], 2, "blocks[0](vessel{i}).stride", "2 < width 3"),
        (["consistent", 0, "sequence"], "pv.nope", "consistent[0](pv).sequence", "no entry"),
        (["rings", 0, "head"], "nope.head", "rings[0](events).head", "no entry"),
        (["downloads", 0, "crc"], "sp.u16", "downloads[0](recipe).crc", "holding uint32"),
        (["link", "unit_id"], 300, "link.unit_id", "less than or equal to 255"),
        (["colour"], "blue", "colour", "Extra inputs"),
    ],
)
def test_a_broken_map_names_the_key_path_and_reason(
    raw: dict[str, Any], path: list[Any], value: Any, where: str, reason: str
) -> None:
    with pytest.raises(RegisterMapError) as info:
        validate_register_map(_edit(raw, path, value), "broken.toml")
    message = str(info.value)
    assert "register map broken.toml is invalid" in message
    assert where in message
    assert reason in message


def test_an_unreadable_map_is_a_register_map_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("device = [", encoding="utf-8")
    with pytest.raises(RegisterMapError, match="cannot read"):
        load_register_map(path)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[Entry], LinkSettings]:
    kinds = ["uint16", "int32", "float32", "string"]
    address = 0
    entries = []
    for index in range(draw(st.integers(1, 30))):
        address += draw(st.integers(0, 6))
        kind = draw(st.sampled_from(kinds))
        length = draw(st.integers(1, 20)) if kind == "string" else 0
        register = Register(name=f"e.r{index}", address=address, type=kind, length=length)  # type: ignore[arg-type]
        entry = Entry("holding", register)
        entries.append(entry)
        address = entry.end
    settings = LinkSettings(
        max_read_registers=draw(st.integers(10, 125)), max_gap=draw(st.integers(0, 8))
    )
    return draw(st.permutations(entries)), settings


@given(layouts())
def test_a_read_plan_covers_every_entry_once_whole_and_within_limits(
    layout: tuple[list[Entry], LinkSettings],
) -> None:
    entries, settings = layout
    plans = plan_reads(entries, settings)
    covered = [e.name for p in plans for e in p.entries]
    assert sorted(covered) == sorted(e.name for e in entries)
    for request in plans:
        assert request.count <= settings.max_read_registers
        for entry in request.entries:
            assert request.address <= entry.address
            assert entry.end <= request.address + request.count


def test_writes_merge_contiguous_entries_up_to_the_limit(regmap: RegisterMap) -> None:
    items = [(regmap.entry(n), [1] * regmap.entry(n).words) for n in ("sp.f32", "sp.i32", "sp.u16")]
    items.append((regmap.entry("cmd.lamp"), [1]))
    writes = plan_writes(items, LinkSettings(max_write_registers=3))
    assert [(t, a, len(v)) for t, a, v in writes] == [
        ("coils", 1, 1),
        ("holding", 1, 3),
        ("holding", 6, 2),
    ]
