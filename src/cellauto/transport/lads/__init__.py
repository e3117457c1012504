"""The client side of OPC UA LADS: browse any LADS server (`browse_devices`) and build a cellauto
profile from what it serves (`profile_from_view`). The generic LADS adapter
(``lads+opcua://``) and adapters of LADS devices build on these."""

from cellauto.transport.lads.browse import (
    FunctionView,
    LadsDeviceView,
    ProgramManagerView,
    PromptsView,
    TemplateView,
    UnitView,
    browse_devices,
)
from cellauto.transport.lads.profile import channel_of, profile_from_view, snake

__all__ = [
    "FunctionView",
    "LadsDeviceView",
    "ProgramManagerView",
    "PromptsView",
    "TemplateView",
    "UnitView",
    "browse_devices",
    "channel_of",
    "profile_from_view",
    "snake",
]
