"""The Modbus family: a device is a register map (data); `ModbusTransport` reads and writes its
entries by name over a `PymodbusLink` (pymodbus's async TCP client) or a `ReplayLink`."""

from .codec import RegisterType, Value, WordOrder, decode, encode, words_of
from .errors import EXCEPTION_ERRORS, exception_error
from .link import PymodbusLink, RegisterLink
from .plan import Request, plan_reads, plan_writes
from .regmap import (
    TABLES,
    Block,
    ConsistentGroup,
    Download,
    Entry,
    LinkSettings,
    Register,
    RegisterMap,
    Ring,
    Table,
    load_register_map,
    validate_register_map,
)
from .replay import ReplayLink
from .transport import ModbusTransport, RingRead, recipe_crc

__all__ = [
    "EXCEPTION_ERRORS",
    "TABLES",
    "Block",
    "ConsistentGroup",
    "Download",
    "Entry",
    "LinkSettings",
    "ModbusTransport",
    "PymodbusLink",
    "Register",
    "RegisterLink",
    "RegisterMap",
    "RegisterType",
    "ReplayLink",
    "Request",
    "Ring",
    "RingRead",
    "Table",
    "Value",
    "WordOrder",
    "decode",
    "encode",
    "exception_error",
    "load_register_map",
    "plan_reads",
    "plan_writes",
    "recipe_crc",
    "validate_register_map",
    "words_of",
]
