"""Credentials never enter records, logs or exports; adapters get them from a documented source."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import cellauto
from cellauto.errors import SecretsError
from cellauto.records import export_csv, export_jsonl, export_parquet
from cellauto.secrets import credentials, redact_url

PASSWORD = "s3cret-Pa55"
TOKEN = "tok-9Qx7Zr"


def test_redact_url_drops_the_password_and_secret_options() -> None:
    assert redact_url(f"cocoon+opcua://op:{PASSWORD}@10.0.0.5:4840/x?a=1&token={TOKEN}") == (
        "cocoon+opcua://op@10.0.0.5:4840/x?a=1"
    )
    assert redact_url("prodigy+sim://?speed=max") == "prodigy+sim://?speed=max"
    assert redact_url(f"prodigy+tcp://:{PASSWORD}@host:1") == "prodigy+tcp://host:1"


def test_credentials_come_from_environment_then_a_private_file_then_the_url(
    tmp_path: Path,
) -> None:
    file = tmp_path / "credentials.json"
    env = {"CELLAUTO_USERNAME_COCOON_1": "op", "CELLAUTO_PASSWORD_COCOON_1": PASSWORD}
    found = credentials("cocoon-1", environ=env, file=file)
    assert found is not None
    assert (found.username, found.password, found.source) == ("op", PASSWORD, "environment")
    assert PASSWORD not in repr(found)
    file.write_text(f'{{"cocoon-1": {{"username": "fileop", "password": "{PASSWORD}"}}}}')
    os.chmod(file, 0o644)
    with pytest.raises(SecretsError, match="readable or writable by others"):
        credentials("cocoon-1", environ={}, file=file)
    os.chmod(file, 0o600)
    from_file = credentials("cocoon-1", environ={}, file=file)
    assert from_file is not None
    assert from_file.username == "fileop"
    url = f"cocoon+opcua://u:{PASSWORD}@h:1"
    from_url = credentials("other", url, environ={}, file=file)
    assert from_url is not None
    assert from_url.source == "device URL"
    assert credentials("other", environ={}, file=file) is None


def _every_file(root: Path) -> list[tuple[Path, bytes]]:
    return [(f, f.read_bytes()) for f in root.rglob("*") if f.is_file()]


async def test_no_password_anywhere_in_a_record_made_with_a_credentialed_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    records = tmp_path / "records"
    async with cellauto.Batch(
        "B-SECRET", product="p", operator="alice", records=records, sim=True, signatures_for=()
    ) as batch:
        await batch.connect(f"cocoon+sim://alice:{PASSWORD}@/?speed=max")  # logs in as alice
    exports = tmp_path / "exports"
    export_parquet(batch.path, exports / "parquet")
    export_csv(batch.path, exports / "csv")
    export_jsonl(batch.path, exports / "jsonl")
    for file, data in _every_file(tmp_path):
        assert PASSWORD.encode() not in data, file
    assert PASSWORD not in caplog.text
    connect = cellauto.records.open_batch(batch.path).audit_entries()
    urls = [str(e.value) for e in connect if e.action == "device.connect"]
    assert len(urls) == 1
    assert urls[0].startswith("cocoon+sim://alice@")
    assert "speed=max" in urls[0]
