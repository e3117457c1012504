"""Typed shorthands over asyncua (its type stubs want NewType wrappers everywhere)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError

__all__ = [
    "AttributeIds",
    "Node",
    "ObjectIds",
    "Server",
    "StatusCodes",
    "UaError",
    "data_value",
    "ident",
    "nid",
    "status",
]


def nid(identifier: int | str | None = None, namespace: int = 0) -> ua.NodeId:
    """A NodeId; no arguments is the null NodeId."""
    if identifier is None:
        return ua.NodeId()
    return ua.NodeId(cast(Any, identifier), cast(Any, namespace))


def status(code: int) -> ua.StatusCode:
    """A StatusCode from a `StatusCodes` constant."""
    return ua.StatusCode(cast(Any, code))


def data_value(
    value: ua.Variant,
    *,
    code: ua.StatusCode | None = None,
    source: datetime | None = None,
    server: datetime | None = None,
) -> ua.DataValue:
    """A DataValue with optional status and timestamps."""
    return ua.DataValue(
        value,
        StatusCode=code or status(StatusCodes.Good),
        SourceTimestamp=cast(Any, source),
        ServerTimestamp=cast(Any, server),
    )


def ident(node: Node) -> str:
    """A node's NodeId identifier as text (the gateway's NodeIds are strings)."""
    return str(node.nodeid.Identifier)
