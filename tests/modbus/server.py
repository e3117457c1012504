"""The register-map server the Modbus tests run against: the product's
`cellauto.sim.servers.modbus.MapServer` (moved there from this file)."""

from cellauto.sim.servers.modbus import MapServer

__all__ = ["MapServer"]
