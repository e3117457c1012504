"""The generic SiLA 2 adapter (``sila+grpc://host:port``)."""

from cellauto_adapters.sila.adapter import SilaAdapter, generic_profile

__all__ = ["SilaAdapter", "generic_profile"]
