"""Device identity, with the LADS/OPC UA DI field names."""

from __future__ import annotations

from pydantic import Field, JsonValue

from cellauto.schema._base import Model


class DeviceInfo(Model):
    """Who a device is: the LADS (OPC UA DI) identification properties."""

    manufacturer: str
    model: str
    serial_number: str
    software_revision: str = ""
    device_revision: str = ""
    hardware_revision: str = ""
    asset_id: str = ""
    component_name: str = ""
    device_class: str = ""
    vendor_data: dict[str, JsonValue] = Field(default_factory=dict)
