"""Modbus exception codes mapped to cellauto's typed errors."""

from __future__ import annotations

from cellauto.errors import (
    ModbusDeviceBusy,
    ModbusDeviceFailure,
    ModbusError,
    ModbusGatewayPathUnavailable,
    ModbusGatewayTargetFailed,
    ModbusIllegalAddress,
    ModbusIllegalFunction,
    ModbusIllegalValue,
)

__all__ = ["EXCEPTION_ERRORS", "exception_error"]

EXCEPTION_ERRORS: dict[int, type[ModbusError]] = {
    0x01: ModbusIllegalFunction,
    0x02: ModbusIllegalAddress,
    0x03: ModbusIllegalValue,
    0x04: ModbusDeviceFailure,
    0x06: ModbusDeviceBusy,
    0x0A: ModbusGatewayPathUnavailable,
    0x0B: ModbusGatewayTargetFailed,
}


def exception_error(
    device: str, operation: str, code: int, *, unit: int, table: str, address: int
) -> ModbusError:
    """The typed error for exception `code` (plain `ModbusError` for codes without a class)."""
    cls = EXCEPTION_ERRORS.get(code, ModbusError)
    return cls(device, operation, code, unit=unit, table=table, address=address)
