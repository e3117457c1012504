"""Lonza Cocoon adapter over cellauto's Cocoon OPC UA protocol profile
(schemas/protocols/cocoon.md).

Not Lonza's interface: the real one is not public, and no compatibility with it is claimed.
"""

from .adapter import CocoonAdapter

__all__ = ["CocoonAdapter"]
