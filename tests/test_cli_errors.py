"""Bad input to the `cellauto` command: one line naming what is wrong, a non-zero exit, never a
traceback. Each command runs as a user runs it, in a real subprocess."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import cellauto

CLI = [sys.executable, "-m", "cellauto.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sealed record: one simulated device, a few samples and events."""
    root = tmp_path_factory.mktemp("records")

    async def make() -> Path:
        async with cellauto.Batch(
            "B-CLI", product="MSC", operator="alice", records=root, sim=True
        ) as batch:
            prodigy = await batch.connect("prodigy+sim://")
            await prodigy.read("chamber.temperature")
        return batch.path

    return asyncio.run(make())


def test_validating_a_missing_profile_file(tmp_path: Path) -> None:
    one_line_error(
        run("schema", "validate", "missing.toml", cwd=tmp_path), "missing.toml", "no such file"
    )


def test_validating_a_deeply_nested_toml(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    one_line_error(run("schema", "validate", str(deep)), "deep.toml", "nested too deeply")


def test_signing_with_an_empty_name(sealed: Path) -> None:
    result = run("records", "sign", str(sealed), "--name", "", "--user", "u", "--meaning", "review")
    one_line_error(result, "printed_name")


def test_exporting_onto_an_existing_file(sealed: Path, tmp_path: Path) -> None:
    existing = tmp_path / "out"
    existing.write_text("keep me", encoding="utf-8")
    result = run("records", "export", str(sealed), "--format", "csv", "--out", str(existing))
    one_line_error(result, str(existing))
    assert existing.read_text(encoding="utf-8") == "keep me"


def test_showing_a_record_into_a_closed_pipe(sealed: Path) -> None:
    process = subprocess.Popen(
        [*CLI, "records", "show", str(sealed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # `| head` that has read enough
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_devices_shows_one_device_in_full() -> None:
    result = run("devices", "prodigy")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("programs (", "channels (", "commands (", "alarms ("):
        assert heading in out
    assert "TCT transduction" in out
    assert "chamber.temperature" in out
    assert "Cel" in out
    assert "range 0..50" in out
    assert "take_sample" in out
    assert "door_open [error] Door open" in out


def test_devices_names_an_unknown_device() -> None:
    one_line_error(run("devices", "nosuch"), "no profile 'nosuch'", "prodigy")
