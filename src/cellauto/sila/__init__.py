"""SiLA 2 for cellauto: its features in FDL (``schemas/sila/``), the SiLA unit
constraint <-> UCUM mapping, a server that serves any connected `Device` (the LiCellGrow
simulator and the SiLA gateway), and the client side the generic SiLA adapter uses.

Needs the optional extra ``sila`` (``pip install 'cellauto[sila]'``).
"""

from cellauto.sila.fdl import channel_feature, identifier, load_feature
from cellauto.sila.server import DeviceSilaServer, parse_parameters
from cellauto.sila.tls import Credentials, server_credentials
from cellauto.sila.units import SilaUnit, UcumMapping, from_sila, to_sila

__all__ = [
    "Credentials",
    "DeviceSilaServer",
    "SilaUnit",
    "UcumMapping",
    "channel_feature",
    "from_sila",
    "identifier",
    "load_feature",
    "parse_parameters",
    "server_credentials",
    "to_sila",
]
