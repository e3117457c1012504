"""The generic OPC UA LADS adapter: ``lads+opcua://host:port`` (see `LadsAdapter`)."""

from .adapter import LadsAdapter

__all__ = ["LadsAdapter"]
