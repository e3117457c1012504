"""``cellauto records list | show | verify | export`` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cellauto.cli import main


def test_list_shows_every_record_and_its_state(
    make_record: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_record("B-0001").parent
    make_record("B-0002", seal=False)
    assert main(["records", "list", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["B-0001", "sealed", "CAR-T"]
    assert out[2].split()[:3] == ["B-0002", "open", "CAR-T"]


def test_show_summarises_devices_span_counts_alarms_and_states(
    make_record: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "show", str(make_record())]) == 0
    out = capsys.readouterr().out
    assert "batch B-0001 (CAR-T): sealed (closed)" in out
    assert "device cocoon-1: cocoon profile 0.1" in out
    assert "samples: 22 from 2026-03-01T08:00:00+00:00" in out
    assert "events: 3  audit entries: 6  results: 1" in out
    assert "alarm_raised door_open [warning] door open" in out
    assert "cocoon-1 Idle -> Execute (start)" in out


def test_verify_exit_status_and_first_broken_item(
    make_record: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sealed = make_record()
    assert main(["records", "verify", str(sealed)]) == 0
    assert "B-0001: sealed and intact" in capsys.readouterr().out
    crashed = make_record("B-0002", seal=False)
    assert main(["records", "verify", str(crashed)]) == 0
    assert "B-0002: unsealed but intact" in capsys.readouterr().out
    (sealed / "files" / "report.txt").write_bytes(b"forged")
    assert main(["records", "verify", str(sealed)]) == 1
    assert "BROKEN: files/report.txt: changed" in capsys.readouterr().out


def test_export_writes_the_chosen_format(
    make_record: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_record()
    for fmt, names in {
        "parquet": ["audit.parquet", "events.parquet", "results.parquet", "samples.parquet"],
        "csv": ["audit.csv", "events.csv", "results.csv", "samples.csv"],
        "jsonl": ["audit.jsonl", "events.jsonl", "results.jsonl", "samples.jsonl"],
    }.items():
        out = tmp_path / fmt
        assert main(["records", "export", str(path), "--format", fmt, "--out", str(out)]) == 0
        assert sorted(p.name for p in out.iterdir()) == names
    first = (tmp_path / "jsonl" / "audit.jsonl").read_text().splitlines()[0]
    assert json.loads(first)["action"] == "record_created"


def test_user_errors_exit_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "show", str(tmp_path)]) == 1
    assert "is not a batch record (no manifest.json)" in capsys.readouterr().err
    assert main(["records", "list", str(tmp_path / "missing")]) == 1
    assert "is not a folder of batch records" in capsys.readouterr().err
