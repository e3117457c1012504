"""A device URL's address as an OPC UA endpoint and a login."""

from __future__ import annotations

import pytest

from cellauto.transport.opcua import endpoint


def test_a_user_name_in_the_address_logs_in_with_the_password_from_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELLAUTO_USERNAME_COCOON_1", "olga")
    monkeypatch.setenv("CELLAUTO_PASSWORD_COCOON_1", "from-env")
    assert endpoint("cocoon-1", "olga@10.0.0.5:4840") == (
        "opc.tcp://10.0.0.5:4840",
        ("olga", "from-env"),
    )
    assert endpoint("cocoon-2", "bob:in-url@10.0.0.5:4840").credentials == ("bob", "in-url")
    assert endpoint("cocoon-1", "10.0.0.5:4840") == ("opc.tcp://10.0.0.5:4840", None)
