"""SINFONIA CellQualia over OPC UA LADS: ``cellqualia+opcua://host:port``.

The generic LADS adapter with CellQualia's profile (``schemas/devices/cellqualia.toml``): the
profile's channels are bound by name to the functions the device serves, so a server that does
not serve them is refused at connect. Every assumption is in docs/devices/cellqualia.md.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from cellauto.adapter import Conformance
from cellauto_adapters.lads import LadsAdapter

__all__ = ["CellQualiaAdapter"]


class CellQualiaAdapter(LadsAdapter):
    """A CellQualia (or its simulator); URL options as `LadsAdapter`."""

    kind: ClassVar[str] = "cellqualia"
    browse_profile: ClassVar[bool] = False
    sample_numbering: ClassVar[Literal["arrival", "period"]] = "period"
    conformance: ClassVar[Conformance] = Conformance(
        program="Isolator decontamination",
        outage_hours=None,
        test_options={"timeout": "5", "heartbeat": "0.5"},
    )
