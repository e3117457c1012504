"""The OPC UA client transport: the only place adapters touch asyncua.

Nodes are addressed by browse path below the Objects folder, each element namespace-qualified
(`"2:Cocoon/2:Chamber/2:Temperature"`), or by a NodeId string (`"ns=2;i=7"`, `"i=2258"`).
Paths are resolved with one TranslateBrowsePathsToNodeIds request and cached per connection.

Reconnect: asyncua 2.1 has an opt-in `auto_reconnect` supervisor, but its backoff starts at a
fixed 1 s with no jitter (every device on a network retries in lock-step), it exposes no hook
after subscriptions are restored, and it reuses the Client object that users report hanging.
So this transport keeps asyncua's health probe (its supervisor reads ServerState every
`heartbeat` s and fires `connection_lost_callback` on a probe timeout or a dropped socket) as
the heartbeat, and owns the reconnect: a fresh Client per attempt, exponential backoff with
seeded jitter, every subscription re-created, then `on_reconnect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol, Self, TypeVar, cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, OpcEvent, Subscription
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from cellauto.adapter.options import host_port
from cellauto.errors import (
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    NodeNotFound,
    OpcUaStatusError,
)
from cellauto.secrets import credentials
from cellauto.transport.base import Backoff, ConnectionEvent, ConnectionState
from cellauto.transport.opcua_capture import Capture
from cellauto.transport.opcua_security import ClientSecurity

__all__ = [
    "Backoff",
    "BrowseEntry",
    "ConnectionState",
    "DataChange",
    "Endpoint",
    "EventSubscription",
    "OpcUaApi",
    "OpcUaTransport",
    "ValueSubscription",
]

_log = logging.getLogger("cellauto.transport.opcua")
_NODEID = re.compile(r"^(ns=\d+;)?[isgb]=")
_OBJECTS = ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder))
_BASE_EVENT_TYPE = ua.NodeId(ua.Int32(ObjectIds.BaseEventType))
_SERVER = ua.NodeId(ua.Int32(ObjectIds.Server))


class DataChange(NamedTuple):
    """One data-change notification: path, value, source timestamp and status name."""

    path: str
    value: Any
    source_timestamp: datetime | None
    status: str


class BrowseEntry(NamedTuple):
    """A child node: its full path and node class (`Object`, `Variable`, `Method`, ...)."""

    path: str
    node_class: str


class Endpoint(NamedTuple):
    """Where an OPC UA adapter connects and as whom (None: anonymously)."""

    url: str
    credentials: tuple[str, str] | None


def endpoint(device: str, address: str) -> Endpoint:
    """The endpoint of a device URL's address ``[user@]host:port``: a user name logs in with
    the password `cellauto.secrets.credentials` finds for the device or its host (environment,
    credentials file, then the URL's ``user:password@``; none found: an empty password);
    without a user name the session is anonymous."""
    address = address.split("/", 1)[0]
    userinfo, at, hostport = address.rpartition("@")
    user = userinfo.split(":", 1)[0] if at else ""
    host, port = host_port(device, hostport)
    url = f"opc.tcp://{host}:{port}"
    if not user:
        return Endpoint(url, None)
    found = credentials(device, f"opc.tcp://{address}") or credentials(host)
    return Endpoint(url, (user, found.password if found is not None else ""))


def parse_path(path: str) -> list[ua.QualifiedName]:
    """`"2:A/2:B"` as qualified names (an element without `ns:` is in namespace 0)."""
    names = []
    for element in path.split("/"):
        ns, sep, name = element.partition(":")
        if sep and ns.isdigit():
            names.append(ua.QualifiedName(name, int(ns)))
        else:
            names.append(ua.QualifiedName(element, 0))
    return names


def _relative_path(path: str) -> ua.RelativePath:
    elements = []
    for qname in parse_path(path):
        el = ua.RelativePathElement()
        el.ReferenceTypeId = ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences))
        el.IncludeSubtypes = cast(ua.Boolean, True)
        el.IsInverse = cast(ua.Boolean, False)
        el.TargetName = qname
        elements.append(el)
    return ua.RelativePath(Elements=elements)


def _builtin_vtype(datatype: ua.NodeId) -> ua.VariantType | None:
    """The variant type of a built-in DataType NodeId (ns=0, id 1..25), else None."""
    if datatype.NamespaceIndex == 0 and isinstance(datatype.Identifier, int):
        with contextlib.suppress(ValueError):
            if 1 <= datatype.Identifier <= 25:
                return ua.VariantType(datatype.Identifier)
    return None


def plain(value: Any) -> Any:
    """An OPC UA value as plain Python (LocalizedText -> str, NodeId -> str, ...)."""
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.NodeId):
        return value.to_string()
    if isinstance(value, ua.QualifiedName):
        return value.to_string()
    if isinstance(value, ua.StatusCode):
        return value.name
    if isinstance(value, ua.Variant):
        return plain(value.Value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


T_co = TypeVar("T_co", covariant=True)


class SubscriptionApi(Protocol[T_co]):
    """A subscription as adapters see it: `start()` creates it, iteration yields its
    notifications, `close()` ends it."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def __aiter__(self) -> AsyncIterator[T_co]: ...
    async def __anext__(self) -> T_co: ...


class OpcUaApi(Protocol):
    """What adapters may use: implemented by `OpcUaTransport` and `OpcUaReplay`."""

    device: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def read(self, path: str) -> Any: ...
    async def read_data(self, path: str) -> DataChange: ...
    async def read_many(self, paths: Sequence[str]) -> list[Any]: ...
    async def write(self, path: str, value: Any, variant_type: str | None = None) -> None: ...
    async def call(self, object_path: str, method_name: str, *args: Any) -> Any: ...
    async def browse(self, path: str = "") -> list[BrowseEntry]: ...
    def subscribe(
        self, paths: Sequence[str], period: float = 0.1
    ) -> SubscriptionApi[DataChange]: ...
    def subscribe_events(
        self, object_path: str = "", event_types: Sequence[str] = ()
    ) -> SubscriptionApi[dict[str, Any]]: ...


class _BaseSubscription:
    """A subscription that survives reconnects: each connection gets a fresh asyncua
    subscription (iterator mode, unbounded queue: no loss); the iterator drains a replaced
    one before reading the next, so every delivered notification is seen, in order."""

    def __init__(self, transport: OpcUaTransport, period: float) -> None:
        self._transport = transport
        self._period = period
        self._ua_sub: Subscription | None = None
        self._draining: list[Subscription] = []
        self._attached = asyncio.Event()
        self._started = False
        self._closed = False
        self.id = transport._next_sub_id()

    async def start(self) -> None:
        """Create the subscription on the server (done by `async with` or the first `anext`)."""
        if self._started:
            return
        self._started = True
        self._transport._subs.append(self)
        client = await self._transport._ready(self._describe())
        self._transport._capture_record(self._capture_open())
        await self._attach(client)

    async def close(self) -> None:
        """Delete the subscription; the iterator ends after what was already delivered."""
        if self._closed:
            return
        self._closed = True
        if self in self._transport._subs:
            self._transport._subs.remove(self)
        await self._detach()
        self._attached.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        if not self._started:
            await self.start()
        while True:
            if self._draining:
                sub = self._draining[0]
            elif self._ua_sub is not None:
                sub = self._ua_sub
            elif self._closed:
                raise StopAsyncIteration
            else:
                await self._attached.wait()
                continue
            try:
                event = await sub.__anext__()
            except StopAsyncIteration:
                if sub in self._draining:
                    self._draining.remove(sub)
                continue
            item = self._convert(event)
            if item is not None:
                if self._transport._capture is not None:
                    self._transport._capture.notification(self.id, item)
                return item

    async def _attach(self, client: Client) -> None:
        sub = await client.create_subscription(self._period * 1000, queue_maxsize=0)
        try:
            await self._monitor(client, sub)
        except BaseException:
            self._draining.append(sub)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sub.delete(), self._transport.timeout)
            sub._close_iterator()
            raise
        self._ua_sub = sub
        self._attached.set()

    async def _detach(self) -> None:
        sub, self._ua_sub = self._ua_sub, None
        self._attached.clear()
        if sub is None:
            return
        self._draining.append(sub)
        try:
            await asyncio.wait_for(sub.delete(), self._transport.timeout)
        except Exception:  # a lost connection: the server drops it with the session
            _log.debug("%s: deleting subscription failed", self._transport.device, exc_info=True)
        sub._close_iterator()  # idempotent sentinel: the iterator moves on after draining

    def _describe(self) -> str:
        raise NotImplementedError

    def _capture_open(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _monitor(self, client: Client, sub: Subscription) -> None:
        raise NotImplementedError

    def _convert(self, event: Any) -> Any:
        raise NotImplementedError


class ValueSubscription(_BaseSubscription):
    """Data changes of some variables, as `DataChange` tuples, in server order."""

    def __init__(self, transport: OpcUaTransport, paths: Sequence[str], period: float) -> None:
        super().__init__(transport, period)
        self.paths = list(paths)
        self._by_id: dict[ua.NodeId, str] = {}

    def _describe(self) -> str:
        return f"subscribe {', '.join(self.paths)}"

    QUEUE = 10_000
    """Server-side queue size per monitored item (values kept between two publishes)."""

    def _capture_open(self) -> dict[str, Any]:
        return {"op": "subscribe", "sub": self.id, "paths": self.paths, "period": self._period}

    async def _monitor(self, client: Client, sub: Subscription) -> None:
        nodes = await self._transport._nodes(self.paths, self._describe(), client=client)
        self._by_id = {node.nodeid: path for node, path in zip(nodes, self.paths, strict=True)}
        # a server-side queue per item: at speed=max a variable changes many times within one
        # publishing interval, and a queue of 1 would keep only the last change
        # StatusValueTimestamp: a value written again with a new source timestamp is a new
        # publication (a periodic channel whose value did not change) and is notified too
        trigger = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        results = await sub._subscribe(
            list(nodes), mfilter=trigger, queuesize=self.QUEUE, sampling_interval=ua.Double(0)
        )
        for path, result in zip(self.paths, results, strict=True):
            if isinstance(result, ua.StatusCode):
                raise OpcUaStatusError(self._transport.device, self._describe(), result.name, path)

    def _convert(self, event: Any) -> DataChange | None:
        if not isinstance(event, DataChangeEvent):
            _log.info("%s: subscription status %s", self._transport.device, event)
            return None
        dv = event.data.monitored_item.Value
        status = dv.StatusCode.name if dv.StatusCode is not None else "Good"
        return DataChange(self._by_id[event.node.nodeid], event.value, dv.SourceTimestamp, status)


class EventSubscription(_BaseSubscription):
    """OPC UA events from one object, each as a dict of its fields (plain Python values)."""

    PERIOD = 0.05
    """Publishing interval (s). Not 0: an asyncua server sends no keep-alives at interval 0,
    and the client's stale-subscription watchdog then recreates the subscription every second."""

    def __init__(
        self, transport: OpcUaTransport, object_path: str, event_types: Sequence[str]
    ) -> None:
        super().__init__(transport, self.PERIOD)
        self.object_path = object_path
        self.event_types = list(event_types)

    def _describe(self) -> str:
        return f"subscribe events {self.object_path or 'Server'}"

    def _capture_open(self) -> dict[str, Any]:
        return {
            "op": "subscribe_events",
            "sub": self.id,
            "path": self.object_path,
            "event_types": self.event_types,
        }

    async def _monitor(self, client: Client, sub: Subscription) -> None:
        operation = self._describe()
        source = (
            (await self._transport._nodes([self.object_path], operation, client=client))[0]
            if self.object_path
            else client.get_node(_SERVER)
        )
        types: list[Node] = [client.get_node(_BASE_EVENT_TYPE)]
        if self.event_types:
            types = await self._transport._nodes(
                self.event_types, operation, _BASE_EVENT_TYPE, client=client
            )
        await sub.subscribe_events(source, types, queuesize=0)

    def _convert(self, event: Any) -> dict[str, Any] | None:
        if not isinstance(event, OpcEvent):
            _log.info("%s: event subscription status %s", self._transport.device, event)
            return None
        fields = event.event.get_event_props_as_fields_dict()
        return {name: plain(variant) for name, variant in fields.items()}


def _end_publishing_with_the_socket(client: Client) -> None:
    """When the client's socket drops, cancel asyncua's publish loop before it wakes to its
    failed request: the loop would log "Publish iteration crashed" with a traceback and retry
    every second on a client this transport is about to replace (it reconnects with a fresh
    client and re-creates every subscription on it)."""
    uaclient = client.uaclient
    protocol = uaclient.protocol
    if protocol is None:
        return
    notify = protocol.on_connection_lost

    def lost(exc: Exception | None) -> None:
        task = uaclient.session._publish_task
        if task is not None:
            task.cancel()
        if notify is not None:
            notify(exc)

    protocol.on_connection_lost = lost


class OpcUaTransport:
    """An OPC UA client connection to one device (see the module doc).

    `timeout` bounds each request (`DeviceTimeout`); `heartbeat` is the health-probe period
    (a server silent for longer is declared lost); `reconnect` turns automatic reconnection on;
    `on_state` hears every `ConnectionState`; `on_reconnect` runs after each reconnect, once
    subscriptions are back; `capture` records traffic as JSON Lines (see `opcua_capture`).
    """

    def __init__(
        self,
        url: str,
        *,
        device: str,
        timeout: float = 4.0,
        heartbeat: float = 1.0,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        on_state: Callable[[ConnectionState], None] | None = None,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        on_event: Callable[[ConnectionEvent], None] | None = None,
        capture: Capture | None = None,
        credentials: tuple[str, str] | None = None,
        security: ClientSecurity | None = None,
    ) -> None:
        self.url = url
        self.credentials = credentials
        """(user name, password) for a UserNameIdentityToken; None: anonymous."""
        self.security = security
        """Basic256Sha256 Sign or SignAndEncrypt with cellauto's client certificate; None:
        security mode None."""
        self.device = device
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.on_reconnect = on_reconnect
        self._listeners: list[Callable[[ConnectionState], None]] = [on_state] if on_state else []
        self._on_event = on_event
        self._attempts = 0
        self._capture = capture
        self._client: Client | None = None
        self._state = ConnectionState.DISCONNECTED
        self._connected = asyncio.Event()
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._node_cache: dict[str, Node] = {}
        self._vtypes: dict[str, ua.VariantType | None] = {}
        self._method_cache: dict[tuple[str, str], tuple[Node, ua.NodeId, list[Any]]] = {}
        self._subs: list[_BaseSubscription] = []
        self._sub_counter = 0
        self.reconnects = 0
        """How many times the connection was re-established."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._state

    def add_state_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        """Call `listener(state)` on every state change."""
        self._listeners.append(listener)

    async def open(self) -> None:
        """Connect; raises `ConnectionLost` or `DeviceTimeout` if the server cannot be reached."""
        self._closing = False
        try:
            self._client = await self._new_client()
        except TimeoutError:
            raise DeviceTimeout(self.device, f"connect {self.url}", self.timeout) from None
        except (OSError, UaError) as exc:
            raise ConnectionLost(self.device, f"connect {self.url}", str(exc) or repr(exc)) from exc
        self._set_state(ConnectionState.CONNECTED)

    async def close(self) -> None:
        """Close subscriptions and the connection; stops reconnecting."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subs):
            await sub.close()
        client, self._client = self._client, None
        if client is not None:
            await self._dispose(client, graceful=True)
        self._set_state(ConnectionState.DISCONNECTED)
        if self._capture is not None:
            self._capture.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _new_client(self) -> Client:
        client = Client(self.url, timeout=self.timeout, watchdog_intervall=self.heartbeat)
        client.connection_lost_callback = self._on_lost
        if self.credentials is not None:
            client.set_user(self.credentials[0])
            client.set_password(self.credentials[1])
        try:
            if self.security is not None:
                await asyncio.wait_for(self.security.apply(client), self.timeout)
            await asyncio.wait_for(client.connect(), self.timeout)
        except BaseException:
            await self._dispose(client, graceful=False)
            raise
        _end_publishing_with_the_socket(client)
        _log.info("%s: connected to %s", self.device, self.url)
        return client

    async def _dispose(self, client: Client, *, graceful: bool) -> None:
        """Tear a client down without hanging on a dead peer."""
        if graceful:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close_session(), min(self.timeout, 1.0))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close_secure_channel(), min(self.timeout, 1.0))
        else:
            # stop asyncua's tasks; its CloseSession request fails fast on a dead client
            client.uaclient.request_disconnect()
            client.uaclient.pre_request_hook = None
            for name in ("_stale_watchdog_task", "_supervisor_task", "_renew_channel_task"):
                task = getattr(client, name, None)
                if task is not None and task is not asyncio.current_task():
                    await Client._cancel_task(task)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.uaclient.close_session(False), 0.2)
        client.disconnect_socket()

    def _set_state(self, state: ConnectionState, detail: str = "") -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_event is not None:
            try:
                self._on_event(ConnectionEvent(state, detail or self.url, self._attempts))
            except Exception:
                _log.exception("%s: connection event listener failed", self.device)
        if state is ConnectionState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        _log.info("%s: %s", self.device, state.value)
        if self._capture is not None:
            self._capture.record({"op": "state", "dir": "in", "state": state.value})
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:
                _log.exception("%s: state listener failed", self.device)

    async def _on_lost(self, exc: Exception) -> None:
        if self._closing or (self._reconnect_task and not self._reconnect_task.done()):
            return
        _log.warning("%s: connection lost: %r", self.device, exc)
        self._reconnect_task = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        client, self._client = self._client, None
        self._set_state(ConnectionState.DISCONNECTED)
        for sub in self._subs:
            await sub._detach()
        if client is not None:
            await self._dispose(client, graceful=False)
        if not self.reconnect:
            return
        self._attempts = 0
        started = asyncio.get_running_loop().time()
        self._set_state(ConnectionState.RECONNECTING)
        for delay in self.backoff.delays():
            self._attempts += 1
            await asyncio.sleep(delay)
            try:
                client = await self._new_client()
            except (OSError, TimeoutError, UaError) as exc:
                _log.info("%s: reconnect failed: %r; next try in ~%.2f s", self.device, exc, delay)
                continue
            self._client = client
            self._node_cache.clear()
            self._method_cache.clear()
            try:
                for sub in self._subs:
                    await sub._attach(client)
            except (OSError, TimeoutError, UaError, DeviceError) as exc:
                _log.warning("%s: re-subscribing failed: %r", self.device, exc)
                self._client = None
                for sub in self._subs:
                    await sub._detach()
                await self._dispose(client, graceful=False)
                continue
            break
        else:
            elapsed = asyncio.get_running_loop().time() - started
            self._set_state(
                ConnectionState.LOST,
                f"gave up reconnecting after {self._attempts} attempts in {elapsed:.1f} s "
                f"({self.backoff.limits()})",
            )
            self._connected.set()  # wake waiters: they see LOST
            return
        self.reconnects += 1
        self._set_state(ConnectionState.CONNECTED)
        if self.on_reconnect is not None:
            try:
                await self.on_reconnect()
            except Exception:
                _log.exception("%s: on_reconnect hook failed", self.device)

    async def _ready(self, operation: str) -> Client:
        """The live client, waiting up to `timeout` while reconnecting."""
        client = self._client
        if client is not None and self._state is ConnectionState.CONNECTED:
            return client
        if self._state is ConnectionState.LOST:
            raise ConnectionLost(self.device, operation, "gave up reconnecting")
        if self._closing or (self._reconnect_task is None and self._client is None):
            raise ConnectionLost(self.device, operation, "not connected", hint="call open() first")
        try:
            await asyncio.wait_for(self._connected.wait(), self.timeout)
        except TimeoutError:
            raise ConnectionLost(
                self.device, operation, f"still {self._state.value} after {self.timeout:g} s"
            ) from None
        if self.state is ConnectionState.LOST or self._client is None:
            raise ConnectionLost(self.device, operation, "gave up reconnecting")
        return self._client

    # -- errors and capture ------------------------------------------------------------------

    def _error(self, exc: BaseException, operation: str) -> DeviceError:
        if isinstance(exc, DeviceError):
            return exc
        if isinstance(exc, TimeoutError):
            return DeviceTimeout(self.device, operation, self.timeout)
        if isinstance(exc, UaStatusCodeError):
            status = ua.StatusCode(exc.code).name
            return OpcUaStatusError(self.device, operation, status)
        if isinstance(exc, (ConnectionError, OSError)):
            return ConnectionLost(self.device, operation, str(exc) or repr(exc))
        return DeviceError(self.device, operation, repr(exc))

    def _capture_record(self, entry: dict[str, Any]) -> None:
        if self._capture is not None:
            self._capture.record(entry)

    def _next_sub_id(self) -> int:
        self._sub_counter += 1
        return self._sub_counter

    # -- addressing --------------------------------------------------------------------------

    async def _nodes(
        self,
        paths: Sequence[str],
        operation: str,
        start: ua.NodeId = _OBJECTS,
        client: Client | None = None,
    ) -> list[Node]:
        """Nodes for paths, resolving the uncached ones in one request (on `client` if given,
        as while re-subscribing, else on the live connection)."""
        cache = self._node_cache
        prefix = "" if start == _OBJECTS else f"{start.to_string()}|"
        missing = [p for p in dict.fromkeys(paths) if prefix + p not in cache]
        if missing:
            client = client or await self._ready(operation)
            by_path = [p for p in missing if not _NODEID.match(p)]
            for p in missing:
                if _NODEID.match(p):
                    cache[prefix + p] = client.get_node(p)
            if by_path:
                try:
                    results = await client.translate_browsepaths(
                        start, [_relative_path(p) for p in by_path]
                    )
                except (TimeoutError, OSError, UaError) as exc:
                    raise self._error(exc, operation) from exc
                for p, result in zip(by_path, results, strict=True):
                    if not result.StatusCode.is_good() or not result.Targets:
                        raise NodeNotFound(self.device, operation, p, result.StatusCode.name)
                    cache[prefix + p] = client.get_node(result.Targets[0].TargetId)
        return [cache[prefix + p] for p in paths]

    async def node_id(self, path: str) -> str:
        """The NodeId string a path resolves to."""
        node = (await self._nodes([path], f"resolve {path}"))[0]
        return str(node.nodeid.to_string())

    # -- requests ----------------------------------------------------------------------------

    async def read(self, path: str) -> Any:
        """The value of one variable."""
        node = self._node_cache.get(path)
        if node is None or self._state is not ConnectionState.CONNECTED:
            node = (await self._nodes([path], f"read {path}"))[0]
        try:
            value = await node.read_value()
        except Exception as exc:
            err = self._error(exc, f"read {path}")
            self._capture_record({"op": "read", "path": path, "error": err})
            raise err from exc
        if self._capture is not None:
            self._capture.record({"op": "read", "path": path, "result": value})
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("%s: read %s -> %r", self.device, path, value)
        return value

    async def read_data(self, path: str) -> DataChange:
        """One variable's value with its source timestamp and status (a Bad status is data
        here, not an error)."""
        operation = f"read {path}"
        node = (await self._nodes([path], operation))[0]
        try:
            dv = await node.read_data_value(raise_on_bad_status=False)
        except Exception as exc:
            err = self._error(exc, operation)
            self._capture_record({"op": "read_data", "path": path, "error": err})
            raise err from exc
        value = dv.Value.Value if dv.Value is not None else None
        status = dv.StatusCode.name if dv.StatusCode is not None else "Good"
        data = DataChange(path, value, dv.SourceTimestamp, status)
        self._capture_record({"op": "read_data", "path": path, "result": data})
        return data

    async def read_many(self, paths: Sequence[str]) -> list[Any]:
        """Values of several variables in one Read request (Bad statuses raise)."""
        operation = f"read {', '.join(paths)}"
        nodes = await self._nodes(paths, operation)
        client = await self._ready(operation)
        try:
            dvs = await client.read_attributes(nodes)
        except Exception as exc:
            raise self._error(exc, operation) from exc
        values = []
        for path, dv in zip(paths, dvs, strict=True):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                raise OpcUaStatusError(self.device, f"read {path}", dv.StatusCode.name)
            values.append(dv.Value.Value if dv.Value is not None else None)
        self._capture_record({"op": "read_many", "paths": list(paths), "result": values})
        _log.debug("%s: read %s -> %r", self.device, paths, values)
        return values

    async def write(self, path: str, value: Any, variant_type: str | None = None) -> None:
        """Write a variable; without `variant_type` the node's built-in DataType is used."""
        operation = f"write {path}"
        node = (await self._nodes([path], operation))[0]
        try:
            if variant_type is not None:
                vtype: ua.VariantType | None = ua.VariantType[variant_type]
            elif path in self._vtypes:
                vtype = self._vtypes[path]
            else:
                vtype = self._vtypes[path] = _builtin_vtype(await node.read_data_type())
            variant = ua.Variant(value) if vtype is None else ua.Variant(value, vtype)
            await node.write_value(ua.DataValue(variant))
        except Exception as exc:
            err = self._error(exc, operation)
            self._capture_record({"op": "write", "path": path, "value": value, "error": err})
            raise err from exc
        self._capture_record({"op": "write", "path": path, "value": value})
        _log.debug("%s: write %s <- %r", self.device, path, value)

    async def call(self, object_path: str, method_name: str, *args: Any) -> Any:
        """Call a method of an object: None, one output value, or a list of outputs. Inputs
        are typed from the method's InputArguments."""
        operation = f"call {method_name}"
        key = (object_path, method_name)
        try:
            if key not in self._method_cache:
                self._method_cache[key] = await self._resolve_method(key, operation)
            obj, method_id, in_types = self._method_cache[key]
            variants = [
                ua.Variant(a, t) if t is not None and not isinstance(a, ua.Variant) else a
                for a, t in zip(args, [*in_types, *[None] * len(args)], strict=False)
            ]
            result = await obj.call_method(method_id, *variants)
        except Exception as exc:
            err = self._error(exc, operation)
            self._capture_record(
                {"op": "call", "path": object_path, "method": method_name, "args": list(args)}
                | {"error": err}
            )
            raise err from exc
        self._capture_record(
            {"op": "call", "path": object_path, "method": method_name, "args": list(args)}
            | {"result": result}
        )
        _log.debug("%s: call %s/%s%r -> %r", self.device, object_path, method_name, args, result)
        return result

    async def _resolve_method(
        self, key: tuple[str, str], operation: str
    ) -> tuple[Node, ua.NodeId, list[Any]]:
        object_path, method_name = key
        method_path = f"{object_path}/{method_name}"
        obj, method = await self._nodes([object_path, method_path], operation)
        in_types: list[Any] = []
        with contextlib.suppress(UaError, NodeNotFound):
            (args_node,) = await self._nodes([f"{method_path}/0:InputArguments"], operation)
            in_types = [_builtin_vtype(a.DataType) for a in await args_node.read_value()]
        return obj, method.nodeid, in_types

    async def browse(self, path: str = "") -> list[BrowseEntry]:
        """The children of a node (`""` is the Objects folder)."""
        operation = f"browse {path or 'Objects'}"
        client = await self._ready(operation)
        node = (await self._nodes([path], operation))[0] if path else client.get_node(_OBJECTS)
        try:
            refs = await node.get_children_descriptions()
        except Exception as exc:
            raise self._error(exc, operation) from exc
        prefix = f"{path}/" if path else ""
        entries = [
            BrowseEntry(prefix + ref.BrowseName.to_string(), ref.NodeClass.name) for ref in refs
        ]
        self._capture_record({"op": "browse", "path": path, "result": [list(e) for e in entries]})
        return entries

    async def client(self, operation: str = "browse") -> Client:
        """The live asyncua Client (waiting while reconnecting), for family modules that need
        more of OPC UA than paths and NodeId strings (the LADS browser reads type definitions)."""
        return await self._ready(operation)

    def subscribe(self, paths: Sequence[str], period: float = 0.1) -> ValueSubscription:
        """Data changes of `paths` every `period` s. Use `async with` (or iterate: the first
        `anext` starts it); it survives reconnects and closes with the transport."""
        return ValueSubscription(self, paths, period)

    def subscribe_events(
        self, object_path: str = "", event_types: Sequence[str] = ()
    ) -> EventSubscription:
        """Events emitted by an object (default: the Server object), optionally only of event
        types given as paths below BaseEventType (e.g. `"2:AlarmEvent"`), as field dicts."""
        return EventSubscription(self, object_path, event_types)
