"""The `cellauto` command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cellauto

CLI = [sys.executable, "-m", "cellauto.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"cellauto {cellauto.__version__}"


def test_committed_json_schemas_are_current() -> None:
    result = run("schema", "export", "--check")
    assert result.returncode == 0, result.stderr


def test_schema_check_detects_stale_missing_and_orphan_files(tmp_path: Path) -> None:
    out = tmp_path / "json"
    assert run("schema", "export", "--out", str(tmp_path)).returncode == 0
    assert (tmp_path / "arrow" / "samples.json").is_file()
    assert run("schema", "export", "--check", "--out", str(tmp_path)).returncode == 0
    sample = out / "Sample.json"
    sample.write_text(sample.read_text().replace("channel", "chanel"))
    (out / "Event.json").unlink()
    shutil.copy(out / "Alarm.json", out / "Gone.json")
    (tmp_path / "arrow" / "audit.json").unlink()
    result = run("schema", "export", "--check", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "json/Event.json, json/Gone.json, json/Sample.json, arrow/audit.json" in result.stderr
    assert run("schema", "export", "--out", str(tmp_path)).returncode == 0
    assert not (out / "Gone.json").exists()
    assert run("schema", "export", "--check", "--out", str(tmp_path)).returncode == 0


def test_schema_validate_reports_valid_and_broken_profiles(tmp_path: Path) -> None:
    ok = run("schema", "validate", "cocoon")
    assert ok.returncode == 0
    assert "cocoon: valid" in ok.stdout
    broken = tmp_path / "x.toml"
    broken.write_text('device = "x"\n', encoding="utf-8")
    bad = run("schema", "validate", str(broken))
    assert bad.returncode == 1
    assert str(broken) in bad.stderr
    assert "profile_version" in bad.stderr


def test_devices_lists_every_device_with_its_provenance() -> None:
    result = run("devices")
    assert result.returncode == 0
    for device in cellauto.available_profiles():
        assert device in result.stdout
