"""`cellauto gateway` user and trust-list management (no server needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sila2.client import SilaClient

from cellauto.cli import main
from cellauto.gateway.security import Role, UserStore, make_certificate, thumbprint
from cellauto.sila.server import free_port


def test_add_user_stores_only_an_argon2_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLAUTO_GATEWAY_PASSWORD", "s3cret-pw")
    assert (
        main(["gateway", "--state", str(tmp_path), "--add-user", "olga", "--role", "operator"]) == 0
    )
    text = (tmp_path / "users.json").read_text(encoding="utf-8")
    assert "s3cret-pw" not in text
    assert json.loads(text)["users"][0]["password_hash"].startswith("$argon2id$")
    store = UserStore(tmp_path / "users.json")
    found = store.check_password("olga", "s3cret-pw")
    assert found is not None
    assert found.role is Role.OPERATOR
    assert store.check_password("olga", "wrong") is None


def test_add_user_without_role_is_an_error(tmp_path: Path) -> None:
    assert main(["gateway", "--state", str(tmp_path), "--add-user", "olga"]) == 1


def test_trust_and_list_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, _ = make_certificate("urn:test:plant", common_name="plant", client=True)
    der = cert.public_bytes(serialization.Encoding.DER)
    (tmp_path / "client.der").write_bytes(der)
    assert main(["gateway", "--state", str(tmp_path), "--trust", str(tmp_path / "client.der")]) == 0
    assert (tmp_path / "pki" / "trusted" / f"{thumbprint(der)}.der").is_file()
    capsys.readouterr()
    assert main(["gateway", "--state", str(tmp_path), "--list-rejected"]) == 0
    assert capsys.readouterr().out == ""  # nothing refused yet


def test_no_urls_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["gateway", "--lads", "--state", str(tmp_path)]) == 2


def test_sila_gateway_serves_a_device_with_the_sites_vendor_url(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "cellauto.cli", "gateway", "--sila", "--insecure"]
    command += ["--port", str(port), "--state", str(tmp_path)]
    command += ["--vendor-url", "https://plant.example/", "prodigy+sim://?speed=max"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as gateway:
        try:
            assert gateway.stdout is not None
            line = gateway.stdout.readline()
            assert line.startswith(f"sila+grpc://127.0.0.1:{port} (plain gRPC) serves prodigy-1")
            client = SilaClient("127.0.0.1", port, insecure=True)
            try:
                assert client.SiLAService.ServerVendorURL.get() == "https://plant.example/"
            finally:
                client.close()
        finally:
            gateway.terminate()
