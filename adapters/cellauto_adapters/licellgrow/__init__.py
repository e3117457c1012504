"""PHCbi LiCellGrow (assumption-based) over SiLA 2: the generic SiLA 2 adapter with
LiCellGrow's profile (``licellgrow+sila://host:port``)."""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

from cellauto.adapter import Conformance
from cellauto_adapters.sila import SilaAdapter


class LiCellGrowAdapter(SilaAdapter):
    """``licellgrow+sila://host:port?ca=<pem>`` (``?insecure=1`` for plain gRPC)."""

    kind: ClassVar[str] = "licellgrow"
    transports: ClassVar[tuple[str, ...]] = ("sila",)
    uses_server_profile: ClassVar[bool] = False
    conformance: ClassVar[Conformance] = Conformance(
        program="T-cell expansion",
        not_applicable=MappingProxyType(
            {"replay": "there is no capture and replay transport for SiLA 2"}
        ),
    )


__all__ = ["LiCellGrowAdapter"]
