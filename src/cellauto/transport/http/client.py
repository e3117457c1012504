"""JSON over HTTP to one device: bearer token, TLS for https, per-attempt timeouts, and retries
that never repeat a non-idempotent request.

Retried (after a timeout, a dropped connection or a 502/503/504): GET, HEAD, PUT, DELETE and
OPTIONS, which RFC 9110 defines as idempotent, and a POST that carries an ``Idempotency-Key``
(the device answers a repeated key with the first answer instead of acting twice). A POST
without a key is sent once; if its answer is lost the caller gets `ConnectionLost` or
`DeviceTimeout` and must find out from the device what happened.

Error answers are read as RFC 9457 problem details and raised as `HttpProblem` (401/403:
`AuthenticationRefused`), naming the device, the operation, the status and the problem.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp

from cellauto.errors import (
    AuthenticationRefused,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    HttpProblem,
    ProtocolError,
)
from cellauto.transport.opcua_capture import Capture

__all__ = [
    "IDEMPOTENT_METHODS",
    "HttpClient",
    "error_record",
    "new_idempotency_key",
    "request_record",
]

logger = logging.getLogger("cellauto.transport.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})


def new_idempotency_key() -> str:
    """A fresh key for one logical request (reuse it for every attempt of that request)."""
    return str(uuid.uuid4())


class HttpClient:
    """One device's HTTP endpoint: `base_url` (``http://host:port`` or ``https://...``).

    `token` is sent as ``Authorization: Bearer``; it is never logged. `ca_file` adds a trust
    anchor for https (else the system's); `timeout` bounds one attempt, `retries` the extra
    attempts of a request that may be repeated, `retry_delay` the pause between attempts.
    """

    def __init__(
        self,
        device: str,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        retry_delay: float = 0.05,
        ca_file: str | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.device = device
        self.capture = capture
        """Where every request and its answer (or error) is recorded, if anywhere."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self._token = token
        self._ssl: ssl.SSLContext | bool = True
        if self.base_url.startswith("https://"):
            self._ssl = ssl.create_default_context(cafile=ca_file)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        """Attempts sent (retries included)."""

    @property
    def tls(self) -> bool:
        """Whether requests go over TLS (the URL says https)."""
        return self.base_url.startswith("https://")

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        """The TLS setting for aiohttp calls (True: plain HTTP, default checks)."""
        return self._ssl

    def headers(self) -> dict[str, str]:
        """Headers of every request (and of the event stream's upgrade)."""
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers(), timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    async def open(self) -> None:
        """Create the connection pool (requests open it on first use as well)."""
        _ = self.session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body (None for 204); see the module
        doc for what is retried. `path` starts with ``/``. With a capture, the request (not
        its headers: no token, no idempotency key) and its outcome are recorded."""
        method = method.upper()
        if self.capture is None:
            return await self._send(method, path, operation, json_body, params, idempotency_key)
        sent = request_record(method, path, json_body, params)
        try:
            answer = await self._send(method, path, operation, json_body, params, idempotency_key)
        except DeviceError as error:
            self.capture.record(sent | {"error": error_record(error)})
            raise
        self.capture.record(sent | {"answer": answer})
        return answer

    async def _send(
        self,
        method: str,
        path: str,
        operation: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> Any:
        repeatable = method in IDEMPOTENT_METHODS or idempotency_key is not None
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        attempts = 1 + (self.retries if repeatable else 0)
        url = self.base_url + path
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            self.requests += 1
            try:
                async with (
                    asyncio.timeout(self.timeout),
                    self.session.request(
                        method,
                        url,
                        json=json_body,
                        params=params,
                        headers=headers,
                        ssl=self._ssl,
                    ) as response,
                ):
                    body = await response.read()
                    status = response.status
                    content_type = response.content_type
            except TimeoutError:
                if last:
                    raise DeviceTimeout(self.device, operation, self.timeout) from None
            except aiohttp.ClientSSLError as exc:
                raise ConnectionLost(
                    self.device, operation, f"TLS: {exc}", hint="check the device certificate"
                ) from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                if last:
                    more = "" if repeatable else " (not repeated: the request is not idempotent)"
                    raise ConnectionLost(
                        self.device, operation, f"{type(exc).__name__}: {exc}{more}"
                    ) from None
            else:
                if status in RETRY_STATUSES and not last:
                    logger.info("%s: %s: HTTP %d, retrying", self.device, operation, status)
                elif status >= 400:
                    raise self._problem(operation, status, content_type, body)
                else:
                    return self._decode(operation, status, body)
            await asyncio.sleep(self.retry_delay * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, operation: str, status: int, body: bytes) -> Any:
        if status == 204 or not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise ProtocolError(
                self.device, operation, f"HTTP {status}: the body is not JSON", raw=body[:200]
            ) from None

    def _problem(self, operation: str, status: int, content_type: str, body: bytes) -> HttpProblem:
        problem: dict[str, Any] = {}
        if content_type in ("application/problem+json", "application/json"):
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                problem = decoded
        title = str(problem.get("title") or _REASONS.get(status, "error"))
        detail = str(problem.get("detail") or "")
        kind = str(problem.get("type") or "about:blank")
        if status in (401, 403):
            return AuthenticationRefused(
                self.device,
                operation,
                status,
                title,
                detail,
                problem_type=kind,
                hint=f"set CELLAUTO_TOKEN_<NAME> for {self.device} (see cellauto.secrets)",
            )
        return HttpProblem(self.device, operation, status, title, detail, problem_type=kind)


def request_record(
    method: str, path: str, body: Any, params: Mapping[str, str] | None
) -> dict[str, Any]:
    """A request as a capture records it (and a replay matches it)."""
    return {
        "op": "request",
        "method": method,
        "path": path,
        "params": dict(params or {}),
        "body": body,
    }


def error_record(error: DeviceError) -> dict[str, Any]:
    """What a capture keeps of a request's error, enough to raise it again on replay."""
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, HttpProblem):
        record |= {
            "status": error.status,
            "title": error.title,
            "detail": error.detail,
            "problem_type": error.problem_type,
        }
    elif isinstance(error, DeviceTimeout):
        record["timeout"] = error.timeout
    return record


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}
