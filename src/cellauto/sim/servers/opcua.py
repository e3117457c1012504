"""An OPC UA wire server for simulators: an asyncua.Server on loopback, built from a declarative
address space, with value updates, async method handlers, custom events and fault hooks.

Simulators describe their address space with `Obj`, `Var`, `Method` and `EventType`, then::

    server = OpcUaServer([Obj("Cocoon", [Obj("Chamber", [Var("Temperature", "Double", 37.0)])])])
    async with server:
        print(server.url)                                  # opc.tcp://127.0.0.1:PORT
        await server.set("2:Cocoon/2:Chamber/2:Temperature", 37.2)
        await server.emit_event("AlarmEvent", "temperature high", severity=800)

Access (ADR 0021): an anonymous session may read, browse and subscribe, and its writes and
method calls are answered BadUserAccessDenied, unless `anonymous="operate"`. A session that
logs in with a user name operates. By default any user name is a simulated user and its
password is not checked (a simulator models permissions, not authentication, and must accept
whatever password a site's credentials hold for the real device); `users={name: password}`
declares the only users and checks their passwords (a wrong one: BadUserAccessDenied).
`SIM_USER` is the user name simulators put in the URLs they serve.

Paths are browse paths below the Objects folder, each element `<namespace index>:<name>`; the
simulator's namespace is registered first, so it is index 2. Startup cost: `Server.init()` loads
the standard address space (about 1 s, a thread filling ~6 k nodes); building nodes and starting
the listener take milliseconds, and `restart()` reuses the address space, so it is fast too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.internal_session import InternalSession
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes

__all__ = [
    "SIM_USER",
    "EventType",
    "Method",
    "MethodFailed",
    "Obj",
    "OpcUaServer",
    "Var",
]

_log = logging.getLogger("cellauto.sim.servers.opcua")

MethodHandler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Var:
    """A variable: OPC UA built-in type name (`Double`, `Int32`, `UInt32`, `Boolean`, `String`,
    `DateTime`, ...), initial value, and whether clients may write it. `unit` (a UCUM code)
    becomes its EngineeringUnits property; `low`/`high` its EURange, and a client write outside
    them (or NaN) is refused with BadOutOfRange."""

    name: str
    datatype: str
    value: Any
    writable: bool = False
    namespace: str | None = None
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Method:
    """A method with named, typed inputs/outputs `(name, datatype)` (published as its
    InputArguments/OutputArguments); `handler(*inputs)` is async and returns None, one value, or
    a tuple of values matching `outputs`. A call with too few or too many arguments, or one of
    the wrong type, is answered BadArgumentsMissing, BadTooManyArguments or BadTypeMismatch
    before the handler runs."""

    name: str
    handler: MethodHandler
    inputs: Sequence[tuple[str, str]] = ()
    outputs: Sequence[tuple[str, str]] = ()
    namespace: str | None = None


@dataclass(frozen=True)
class Obj:
    """An object (or, with `folder=True`, a folder) holding variables, methods and objects."""

    name: str
    children: Sequence[Obj | Var | Method] = ()
    folder: bool = False
    namespace: str | None = None


@dataclass(frozen=True)
class EventType:
    """A custom event type derived from BaseEventType, with extra fields `name -> datatype`."""

    name: str
    fields: dict[str, str] = field(default_factory=dict)


class MethodFailed(Exception):
    """Raise in a method handler to answer the call with an OPC UA status (e.g. BadInvalidState)."""

    def __init__(self, status: str, message: str = "") -> None:
        self.status = status
        super().__init__(message or status)


_INTEGERS = {
    "SByte": (-(2**7), 2**7 - 1),
    "Byte": (0, 2**8 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "UInt16": (0, 2**16 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "UInt32": (0, 2**32 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt64": (0, 2**64 - 1),
}
_NUMBERS = {*_INTEGERS, "Float", "Double"}
_ADMIN = User(role=UserRole.Admin)
_ANONYMOUS = User(role=UserRole.Anonymous)
SIM_USER = "operator"
"""The user name a simulator's served URL logs in with (any name would do by default)."""
UCUM_URI = "http://unitsofmeasure.org"
"""EUInformation.NamespaceUri of this server's units: DisplayName is the UCUM code."""


def _argument_fits(datatype: str, arg: ua.Variant) -> Any:
    """The value of call argument `arg` as `datatype` wants it, or None when it does not fit
    (an integer of any width within range fits an integer type; any number fits a float)."""
    got = arg.VariantType.name
    if arg.Value is None or arg.is_array:
        return None
    if datatype in _INTEGERS:
        low, high = _INTEGERS[datatype]
        if got in _INTEGERS and low <= arg.Value <= high:
            return arg.Value
        return None
    if datatype in ("Double", "Float"):
        return float(arg.Value) if got in _NUMBERS else None
    return arg.Value if got == datatype else None


def _status(name: str) -> ua.StatusCode:
    return ua.StatusCode(getattr(StatusCodes, name))


def _vtype(name: str) -> ua.VariantType:
    try:
        return ua.VariantType[name]
    except KeyError:
        raise ValueError(f"unknown OPC UA datatype {name!r}") from None


def _argument(name: str, datatype: str) -> ua.Argument:
    return ua.Argument(
        Name=name,
        DataType=ua.NodeId(cast(Any, _vtype(datatype).value)),
        ValueRank=-1,
        ArrayDimensions=[],
        Description=ua.LocalizedText(name),
    )


class _SimUsers:
    """Every session gets asyncua's user role, named after its user name (None: anonymous);
    with declared `users`, only they log in, and only with their password."""

    def __init__(self, users: Mapping[str, str] | None) -> None:
        self.users = None if users is None else dict(users)

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username and self.users is not None and self.users.get(username) != password:
            _log.info("user %r refused: unknown user or wrong password", username)
            return None
        return User(role=UserRole.User, name=username or None)


class _StallableProtocol(OPCUAProtocol):
    """A server connection whose reading can be paused to simulate a silent server."""

    stalled: Callable[[], bool] = staticmethod(lambda: False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.stalled() and isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()


class _SimBinaryServer(BinaryServer):
    def __init__(self, owner: OpcUaServer, *args: Any) -> None:
        super().__init__(*args)
        self._owner = owner

    def _make_protocol(self) -> OPCUAProtocol:
        proto = _StallableProtocol(
            iserver=self.iserver,
            policies=self._policies,
            clients=self.clients,
            closing_tasks=self.closing_tasks,
            limits=self.limits,
        )
        proto.stalled = lambda: self._owner.stalled
        return proto


class OpcUaServer:
    """An asyncua.Server on 127.0.0.1 serving a declared address space (see the module doc)."""

    def __init__(
        self,
        objects: Sequence[Obj],
        *,
        namespace: str = "urn:cellauto:sim",
        event_types: Sequence[EventType] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "cellauto simulator",
        anonymous: Literal["read", "operate"] = "read",
        users: Mapping[str, str] | None = None,
    ) -> None:
        self._objects = list(objects)
        self.anonymous = anonymous
        """What an anonymous session may do: ``read`` (read, browse, subscribe) or ``operate``
        (also write and call methods). A session with a user name always operates."""
        self._users = _SimUsers(users)
        self._namespace = namespace
        self._event_types = list(event_types)
        self._host = host
        self._port = port
        self._name = name
        self._server: Server | None = None
        self._nodes: dict[str, Node] = {}
        self._vtypes: dict[str, ua.VariantType] = {}
        self._limits: dict[ua.NodeId, tuple[float | None, float | None]] = {}
        self._events: dict[str, Any] = {}  # event type name -> EventGenerator
        self._ns: dict[str, int] = {}
        self.stalled = False
        """True while `stall()` holds every connection silent."""
        self.startup_seconds = 0.0
        """Wall time the last `start()` took."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def _listener(self) -> BinaryServer:
        if self._server is None or self._server.bserver is None:
            raise RuntimeError("OPC UA server not started; call start() first")
        return self._server.bserver

    @property
    def port(self) -> int:
        """The TCP port the server listens on (known after `start()`)."""
        return int(self._listener.port)

    @property
    def url(self) -> str:
        """The endpoint URL, `opc.tcp://127.0.0.1:PORT`."""
        return f"opc.tcp://{self._host}:{self.port}"

    def login_address(self, user: str = SIM_USER) -> str:
        """``user@127.0.0.1:PORT``: the address part of a device URL that logs in as `user`."""
        return f"{user}@{self._host}:{self.port}"

    @property
    def namespace_index(self) -> int:
        """Index of the simulator's default namespace (2 unless the server changes)."""
        return self._ns[self._namespace]

    @property
    def sessions(self) -> int:
        """How many client sessions are open."""
        if self._server is None:
            return 0
        return len(getattr(self._server.iserver, "_external_sessions", {}))

    @property
    def connections(self) -> int:
        """How many client connections are open on the listener."""
        if self._server is None or self._server.bserver is None:
            return 0
        return len(self._server.bserver.clients)

    def session_ids(self) -> list[str]:
        """The ids of the open client sessions (a reactivated session keeps its id)."""
        if self._server is None:
            return []
        sessions = getattr(self._server.iserver, "_external_sessions", {})
        return [str(s.session_id) for s in sessions.values()]

    async def start(self) -> None:
        """Build the address space and start listening."""
        t0 = asyncio.get_running_loop().time()
        server = Server()
        server.name = self._name
        await server.init()
        server.set_endpoint(f"opc.tcp://{self._host}:{self._port}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        server.iserver.user_manager = cast(Any, self._users)
        server.set_server_name(self._name)
        self._server = server
        self._guard(server)
        self._ns[self._namespace] = await server.register_namespace(self._namespace)
        for obj in self._objects:
            await self._build(server.nodes.objects, obj, "")
        for etype in self._event_types:
            await self._build_event_type(etype)
        await server.start()
        port = self.port
        # swap the listener for one whose connections can be stalled (a few ms)
        await self._listener.stop()
        await self._listen(port)
        self.startup_seconds = asyncio.get_running_loop().time() - t0
        _log.info("OPC UA server at %s (%.3f s)", self.url, self.startup_seconds)

    async def stop(self) -> None:
        """Stop the server and close every session."""
        if self._server is not None:
            server, self._server = self._server, None
            # asyncua's clock task sleeps 1 s between ticks and stop() waits for it: cancel it
            iserver = server.iserver
            task, iserver.time_task = iserver.time_task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await server.stop()

    async def __aenter__(self) -> OpcUaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self, port: int) -> None:
        assert self._server is not None
        bserver = _SimBinaryServer(
            self, self._server.iserver, self._host, port, self._server.limits
        )
        bserver.set_policies(self._server._policies)
        self._server.bserver = bserver
        await bserver.start()

    # -- building ----------------------------------------------------------------------------

    async def _ns_index(self, uri: str | None) -> int:
        uri = uri or self._namespace
        if uri not in self._ns:
            assert self._server is not None
            self._ns[uri] = await self._server.register_namespace(uri)
        return self._ns[uri]

    async def _build(self, parent: Node, spec: Obj | Var | Method, prefix: str) -> None:
        idx = await self._ns_index(spec.namespace)
        path = f"{prefix}{idx}:{spec.name}"
        if isinstance(spec, Obj):
            if spec.folder:
                node = await parent.add_folder(idx, spec.name)
            else:
                node = await parent.add_object(idx, spec.name)
            self._nodes[path] = node
            for child in spec.children:
                await self._build(node, child, path + "/")
        elif isinstance(spec, Var):
            vtype = _vtype(spec.datatype)
            node = await parent.add_variable(idx, spec.name, ua.Variant(spec.value, vtype))
            if spec.writable:
                await node.set_writable()
                self._limits[node.nodeid] = (spec.low, spec.high)
            if spec.unit is not None:
                units = ua.EUInformation(
                    NamespaceUri=UCUM_URI,
                    UnitId=-1,
                    DisplayName=ua.LocalizedText(spec.unit),
                    Description=ua.LocalizedText(spec.unit),
                )
                await node.add_property(0, "EngineeringUnits", units)
            if spec.low is not None and spec.high is not None:
                await node.add_property(0, "EURange", ua.Range(spec.low, spec.high))
            self._nodes[path] = node
            self._vtypes[path] = vtype
        else:
            out_types = [_vtype(t) for _, t in spec.outputs]
            node = await parent.add_method(
                idx,
                spec.name,
                self._wrap_method(spec, out_types),
                [_argument(name, t) for name, t in spec.inputs],
                [_argument(name, t) for name, t in spec.outputs],
            )
            self._nodes[path] = node

    @staticmethod
    def _wrap_method(spec: Method, out_types: list[ua.VariantType]) -> MethodHandler:
        async def call(_parent: ua.NodeId, *args: ua.Variant) -> Any:
            if len(args) != len(spec.inputs):
                status = (
                    "BadArgumentsMissing"
                    if len(args) < len(spec.inputs)
                    else ("BadTooManyArguments")
                )
                _log.info(
                    "method %s: %d arguments, expected %d (%s)",
                    spec.name,
                    len(args),
                    len(spec.inputs),
                    ", ".join(n for n, _ in spec.inputs),
                )
                return ua.StatusCode(getattr(StatusCodes, status))
            inputs = [_argument_fits(t, a) for (_, t), a in zip(spec.inputs, args, strict=True)]
            if any(v is None for v in inputs):
                result = ua.CallMethodResult(
                    StatusCode=_status("BadInvalidArgument"),
                    InputArgumentResults=[
                        _status("Good" if v is not None else "BadTypeMismatch") for v in inputs
                    ],
                )
                _log.info("method %s: argument of the wrong type", spec.name)
                return result
            try:
                result = await spec.handler(*inputs)
            except MethodFailed as exc:
                _log.info("method %s failed: %s", spec.name, exc)
                return ua.StatusCode(getattr(StatusCodes, exc.status))
            if not out_types:
                return []
            values = result if isinstance(result, tuple) else (result,)
            return [ua.Variant(v, t) for v, t in zip(values, out_types, strict=True)]

        return call

    async def _build_event_type(self, etype: EventType) -> None:
        assert self._server is not None
        idx = self.namespace_index
        props = [(name, _vtype(t)) for name, t in etype.fields.items()]
        node = await self._server.create_custom_event_type(idx, etype.name, properties=props)
        self._events[etype.name] = await self._server.get_event_generator(node)

    def _may_operate(self, user: User | None) -> bool:
        if user is not None and user.role is UserRole.Admin:  # the server itself
            return True
        anonymous = user is None or user.role is UserRole.Anonymous or not user.name
        return not anonymous or self.anonymous == "operate"

    def _guard(self, server: Server) -> None:
        """Refuse client writes out of a variable's range (or NaN), and writes and method calls
        from anonymous sessions when they may only read."""
        service = server.iserver.attribute_service
        write = service.write

        async def checked_write(
            params: ua.WriteParameters, user: User = _ADMIN
        ) -> list[ua.StatusCode]:
            refused = [self._refuse_write(item, user) for item in params.NodesToWrite]
            allowed = [i for i, r in zip(params.NodesToWrite, refused, strict=True) if r is None]
            written = iter(await write(ua.WriteParameters(NodesToWrite=allowed), user=user))
            return [r if r is not None else next(written) for r in refused]

        service.write = checked_write  # type: ignore[method-assign]
        create = server.iserver.create_session

        def create_session(
            name: str, user: User = _ANONYMOUS, external: bool = False
        ) -> InternalSession:
            session = create(name, user, external)
            call = session.call

            async def checked_call(
                methods: list[ua.CallMethodRequest],
            ) -> list[ua.CallMethodResult]:
                if self._may_operate(session.user):
                    return await call(methods)
                denied = _status("BadUserAccessDenied")
                return [ua.CallMethodResult(StatusCode=denied) for _ in methods]

            session.call = checked_call  # type: ignore[method-assign,assignment]
            return session

        server.iserver.create_session = create_session  # type: ignore[method-assign]

    def _refuse_write(self, item: ua.WriteValue, user: User) -> ua.StatusCode | None:
        if user.role is UserRole.Admin:  # the server itself
            return None
        if not self._may_operate(user):
            return _status("BadUserAccessDenied")
        limits = self._limits.get(item.NodeId)
        if limits is None or item.AttributeId != AttributeIds.Value:
            return None
        value = item.Value.Value.Value if item.Value.Value is not None else None
        if isinstance(value, float | int) and not isinstance(value, bool):
            low, high = limits
            if (
                math.isnan(value)
                or (low is not None and value < low)
                or (high is not None and value > high)
            ):
                _log.info("write %s = %r refused: outside %s..%s", item.NodeId, value, low, high)
                return _status("BadOutOfRange")
        return None

    # -- simulator API -----------------------------------------------------------------------

    def paths(self) -> Iterator[str]:
        """Every path the server built, in declaration order."""
        return iter(self._nodes)

    def node_id(self, path: str) -> str:
        """The NodeId string of a built node (for tests and logs)."""
        return str(self._node(path).nodeid.to_string())

    def _node(self, path: str) -> Node:
        try:
            return self._nodes[path]
        except KeyError:
            raise KeyError(f"no node {path!r} in this simulator's address space") from None

    async def set(
        self,
        path: str,
        value: Any,
        source_timestamp: datetime | None = None,
        status: str = "Good",
    ) -> None:
        """Update a variable; subscribed clients get a data change. `status` names an OPC UA
        status code (``"BadSensorFailure"`` for a failed sensor). Does nothing while stalled
        except record the value (a stalled device reports nothing)."""
        node = self._node(path)
        assert self._server is not None
        now = datetime.now(UTC)
        dv = ua.DataValue(
            ua.Variant(value, self._vtypes[path]),
            StatusCode=ua.StatusCode(getattr(StatusCodes, status)),
            SourceTimestamp=cast(ua.DateTime, source_timestamp or now),
            ServerTimestamp=cast(ua.DateTime, now),
        )
        await self._server.write_attribute_value(node.nodeid, dv)

    async def get(self, path: str) -> Any:
        """The current value of a variable."""
        return await self._node(path).read_value()

    async def emit_event(
        self,
        event_type: str,
        message: str,
        *,
        severity: int = 500,
        source: str = "",
        time: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Fire an event of a declared type from the Server object, with its custom fields."""
        try:
            gen = self._events[event_type]
        except KeyError:
            raise KeyError(f"no event type {event_type!r}; declare it in event_types") from None
        gen.event.Severity = severity
        gen.event.SourceName = source or self._name
        for name, value in fields.items():
            if not hasattr(gen.event, name):
                raise KeyError(f"event type {event_type!r} has no field {name!r}")
            setattr(gen.event, name, value)
        await gen.trigger(time_attr=time, message=message)

    # -- faults ------------------------------------------------------------------------------

    async def restart(
        self,
        downtime: float = 0.0,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        reboot: bool = False,
    ) -> None:
        """A network blip: drop every connection, stay away `downtime` s (waited with `sleep`:
        pass a simulator clock's to count it in virtual time), listen again on the same port.
        Sessions with subscriptions outlive their connection as on a real server (Part 4 6.7):
        a client may reactivate them until their timeout; the address space and values are
        kept. `reboot=True` also ends every session (a device restart)."""
        assert self._server is not None
        port = self.port
        await self._listener.stop()
        if reboot:
            await self._close_sessions()
        if downtime:
            await sleep(downtime)
        await self._listen(port)

    async def _close_sessions(self) -> None:
        assert self._server is not None
        iserver = self._server.iserver
        # sessions with subscriptions outlive their socket (Part 4 6.7); a reboot ends them
        for session in list(getattr(iserver, "_external_sessions", {}).values()):
            try:
                await session.close_session(delete_subs=True)
            except Exception:  # a dying session may fail to close; it is gone either way
                _log.debug("closing session failed", exc_info=True)

    def stall(self) -> None:
        """Stop reading from every connection (and from new ones): the server goes silent
        while its sockets stay open, like a hung device."""
        assert self._server is not None
        self.stalled = True
        for proto in list(self._listener.clients):
            if proto.transport is not None:
                proto.transport.pause_reading()

    def resume(self) -> None:
        """End a stall; queued requests are answered."""
        assert self._server is not None
        self.stalled = False
        for proto in list(self._listener.clients):
            if proto.transport is not None and not proto.transport.is_closing():
                proto.transport.resume_reading()
