"""Any connected cellauto device served as an OPC UA LADS device (``cellauto gateway --lads``).

The gateway knows no adapter or simulator: it serves any `cellauto.Device` through its public
interface (read, subscribe, events, results, alarms, prompts, state commands, programs)."""

from cellauto.gateway.audit import AuditCall, AuditSink, BatchAudit
from cellauto.gateway.security import Role, TrustList, UserStore
from cellauto.gateway.server import GATEWAY_NAMESPACE, Gateway, GatewayConfig, serve_lads

__all__ = [
    "GATEWAY_NAMESPACE",
    "AuditCall",
    "AuditSink",
    "BatchAudit",
    "Gateway",
    "GatewayConfig",
    "Role",
    "TrustList",
    "UserStore",
    "serve_lads",
]
