"""OPC UA LADS (OPC 30500-1) for cellauto: the vendored nodesets, the mapping between cellauto's
model and LADS, the UCUM <-> UNECE unit table, and a builder of LADS devices in an asyncua
server. Shared by the gateway that serves devices as LADS and by adapters that consume LADS."""

from cellauto.lads.builder import DeviceNodes, FunctionNodes, LadsBuilder, UnitNodes, eu_information
from cellauto.lads.mapping import SEVERITY, STATE_METHODS, FunctionKind, StateNames, function_kind
from cellauto.lads.nodesets import LADS_URI, Namespaces, load_lads
from cellauto.lads.units import UNECE_NAMESPACE, for_ucum, ucum_from_eu, unit_table

__all__ = [
    "LADS_URI",
    "SEVERITY",
    "STATE_METHODS",
    "UNECE_NAMESPACE",
    "DeviceNodes",
    "FunctionKind",
    "FunctionNodes",
    "LadsBuilder",
    "Namespaces",
    "StateNames",
    "UnitNodes",
    "eu_information",
    "for_ucum",
    "function_kind",
    "load_lads",
    "ucum_from_eu",
    "unit_table",
]
