"""Simulated Lonza Cocoon serving cellauto's Cocoon OPC UA protocol (schemas/protocols/cocoon.md).

Not Lonza's interface: the real one is not public. Start it with ``cocoon+sim://?speed=max``.
"""

from .handle import CocoonSimulator, start_simulator
from .server import CocoonDevice

__all__ = ["CocoonDevice", "CocoonSimulator", "start_simulator"]
