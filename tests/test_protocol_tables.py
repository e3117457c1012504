"""Vendor vocabulary as data: every protocol's TOML loads, covers every state, and the tables in
its .md are the ones rendered from it (a stale table fails here, so `make test` catches it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import cellauto.protocols as protocols
from cellauto.errors import ProfileError
from cellauto.protocols import load_protocol, protocol_names, rendered_document
from cellauto.state import ALL_STATES, StateCommand


def test_every_protocol_document_has_its_generated_tables_up_to_date() -> None:
    assert protocol_names() == ["cellqualia", "cocoon", "licellgrow", "maholo", "prodigy"]
    for name in protocol_names():
        current, fresh = rendered_document(name)
        assert "<!-- generated: states" in current
        assert current == fresh, f"run: python -m cellauto.protocols ({name}.md is stale)"


@pytest.mark.parametrize("name", ["cocoon", "maholo", "prodigy", "cellqualia"])
def test_a_vocabulary_maps_every_state_and_command_once(name: str) -> None:
    tables = load_protocol(name)
    assert set(tables.states.values()) == set(ALL_STATES)
    assert set(tables.commands) == set(StateCommand) - {StateCommand.START}
    for vendor, state in tables.states.items():
        assert tables.vendor_state(state) == vendor
        assert tables.state(vendor) == state
    assert tables.errors


def test_the_simulators_speak_the_vocabulary() -> None:
    from cellauto_simulators.cocoon.address_space import VENDOR_STATES
    from cellauto_simulators.prodigy.server import VENDOR

    assert load_protocol("cocoon").by_state() == VENDOR_STATES
    assert load_protocol("prodigy").by_state() == VENDOR


def test_the_check_finds_a_stale_table_and_the_generator_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in protocols.protocols_dir().glob("*"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(protocols, "protocols_dir", lambda: tmp_path)
    doc = tmp_path / "prodigy.md"
    doc.write_text(doc.read_text().replace("| `PAUSED` | Running/Held |", "| `PAUSED` | Held |"))
    assert protocols.main(["--check"]) == 1
    assert protocols.main([]) == 0
    assert protocols.main(["--check"]) == 0
    assert "| `PAUSED` | Running/Held |" in doc.read_text()


def test_a_bad_vocabulary_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.toml").write_text('[states]\nFOO = "Nonsense"\n[commands]\nhold = "H"\n')
    monkeypatch.setattr(protocols, "protocols_dir", lambda: tmp_path)
    with pytest.raises(ProfileError, match=r"bad\.toml") as info:
        load_protocol("bad")
    assert any(path == "states.FOO" for path, _ in info.value.problems)
