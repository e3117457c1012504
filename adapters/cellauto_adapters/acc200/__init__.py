"""ACC-200 adapter: cellauto's Modbus TCP register map of Hitachi's closed automated culture
equipment (schemas/protocols/acc200.md; not the vendor's interface)."""

from .adapter import Acc200Adapter

__all__ = ["Acc200Adapter"]
