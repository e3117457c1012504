"""The HTTP family: JSON over HTTP(S) with a numbered WebSocket event stream (aiohttp).

`HttpClient` sends requests (bearer token, TLS, per-attempt timeouts, retries only where a
repeat cannot act twice, RFC 9457 problems as `HttpProblem`); `EventStream` delivers the
device's numbered events once, in order, resuming from the last one after a reconnect. Needs
the ``http`` extra (``pip install 'cellauto[http]'``).
"""

from .client import IDEMPOTENT_METHODS, HttpClient, new_idempotency_key
from .events import EventStream, StreamEvent
from .replay import HttpReplay, ReplayClient, ReplayStream

__all__ = [
    "IDEMPOTENT_METHODS",
    "EventStream",
    "HttpClient",
    "HttpReplay",
    "ReplayClient",
    "ReplayStream",
    "StreamEvent",
    "new_idempotency_key",
]
