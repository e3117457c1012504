"""Device URLs, and discovery of adapters and simulators through entry points.

A device URL is ``<device>+<transport>://<address>?<options>``:
``cocoon+opcua://127.0.0.1:4840``, ``prodigy+serial:///dev/ttyUSB0?baudrate=115200``,
``prodigy+tcp://127.0.0.1:5020``, or ``<device>+sim://?speed=max&seed=7`` to start that
device's simulator in this process on a real loopback endpoint and connect the real adapter to it
(a user name, ``cocoon+sim://olga@?speed=max``, logs in to the simulator as that user).

Adapters register under the entry-point group ``cellauto.adapters`` and simulators under
``cellauto.simulators`` (name = device kind), so a separate distribution can add a device.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from cellauto.driver import Device, TimeSource
from cellauto.errors import CellautoError, DeviceOptionError
from cellauto.profiles import load_profile
from cellauto.schema import DeviceProfile

if TYPE_CHECKING:
    from cellauto.sim import Clock


class DeviceUrlError(CellautoError, ValueError):
    """A device URL that cannot be parsed or names nothing installed."""


@dataclass(frozen=True, slots=True)
class DeviceUrl:
    """A parsed device URL."""

    device: str
    transport: str
    address: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.device}+{self.transport}://{self.address}" + (f"?{query}" if query else "")


def parse_url(url: str) -> DeviceUrl:
    """Split a device URL into device, transport, address and options."""
    parts = urlsplit(url)
    device, plus, transport = parts.scheme.partition("+")
    if not plus or not device or not transport or "://" not in url:
        raise DeviceUrlError(
            f"{url!r} is not a device URL; expected <device>+<transport>://<address>?<options>, "
            "e.g. cocoon+opcua://127.0.0.1:4840 or prodigy+sim://?speed=max"
        )
    address = parts.netloc + parts.path
    if transport not in ("sim", "replay") and not parts.netloc and not parts.path.strip("/"):
        raise DeviceUrlError(f"{url!r} names no address; expected {device}+{transport}://<address>")
    options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    return DeviceUrl(device=device, transport=transport, address=address, options=options)


SIM_OPTIONS = {
    "speed": "max, or a positive factor of real time",
    "seed": "a whole number",
    "port": "a TCP port, 1 to 65535 (default: a free one)",
    "pty": "1/true to serve a pseudo-terminal, where the wire allows it",
    "faults": "the fault grammar, and profile alarm codes (door_open@2h:10m)",
}
"""The option set every simulator accepts in a ``+sim://`` URL (a simulator factory may declare
more in its `options` attribute)."""


def split_sim_options(
    device_id: str, options: dict[str, str], adapter: object, simulator: object
) -> tuple[dict[str, str], dict[str, str]]:
    """A ``+sim://`` URL's options as (adapter options, simulator options): the adapter's
    declared options go to the adapter, the simulator's to the simulator; anything else, or a
    common simulator option that does not parse, is a DeviceOptionError."""
    declared = getattr(adapter, "options", None)
    adapter_names = set(getattr(declared, "names", ()))
    sim_names = set(SIM_OPTIONS) | set(getattr(simulator, "options", ()))
    owner = getattr(simulator, "__self__", None)  # a SimHandle.launch declares its options
    declared_by_sim = getattr(owner, "option_names", None)
    if callable(declared_by_sim):
        sim_names |= set(declared_by_sim())
    for_adapter, for_sim = {}, {}
    for name, value in options.items():
        if name in sim_names:
            _check_sim_option(device_id, name, value)
            for_sim[name] = value
        elif name in adapter_names:
            for_adapter[name] = value
        else:
            known = sorted(sim_names | adapter_names)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DeviceOptionError(
                device_id,
                name,
                "not an option of this device or its simulator",
                hint=f"{hint}options: {', '.join(known)}",
            )
    return for_adapter, for_sim


def _check_sim_option(device_id: str, name: str, value: str) -> None:
    ok = True
    if name == "speed":
        try:
            ok = value == "max" or 0 < float(value) < float("inf")
        except ValueError:
            ok = False
    elif name == "seed":
        ok = value.lstrip("-").isdigit()
    elif name == "port":
        ok = value.isdigit() and 0 <= int(value) <= 65535
    elif name == "pty":
        ok = value.lower() in ("", "0", "1", "true", "false", "yes", "no")
    if not ok:
        raise DeviceOptionError(device_id, name, f"{value!r} is not valid", hint=SIM_OPTIONS[name])


def user_name(url: DeviceUrl) -> str:
    """The user name of a URL's address (``olga`` of ``olga:secret@host:4840``), or ``""``."""
    userinfo, at, _ = url.address.partition("/")[0].rpartition("@")
    return userinfo.partition(":")[0] if at else ""


def _as_user(served: DeviceUrl, user: str) -> DeviceUrl:
    """A simulator's served URL logging in as `user` (the user name of the ``+sim`` URL)."""
    if not user:
        return served
    _, at, rest = served.address.rpartition("@")
    if not at:
        raise DeviceUrlError(
            f"{served.device}+sim://{user}@: the {served.device} simulator has no users; "
            f"drop {user}@ from the URL"
        )
    return replace(served, address=f"{user}@{rest}")


class AdapterClass(Protocol):
    """What an adapter class offers the registry."""

    kind: str
    transports: tuple[str, ...]

    def __call__(
        self, device_id: str, profile: DeviceProfile, url: DeviceUrl, *, time: TimeSource | None
    ) -> Device: ...


class RunningSimulator(Protocol):
    """A simulator serving its wire protocol on a loopback endpoint."""

    url: str
    """Where the adapter connects: ``<device>+<transport>://<address>``."""
    time: TimeSource
    """The simulator's (virtual) clock, which the adapter and the record use too."""

    async def stop(self) -> None: ...


SimulatorFactory = Callable[..., Awaitable[RunningSimulator]]
"""``async (profile, options, *, clock=None) -> RunningSimulator``: starts a simulator on a
loopback endpoint; `clock` (a `cellauto.sim.Clock`) lets several simulators share one time."""

_adapters: dict[str, AdapterClass] = {}
_simulators: dict[str, SimulatorFactory] = {}


def register_adapter(kind: str, adapter: AdapterClass) -> None:
    """Register an adapter in this process (entry points do this for installed packages)."""
    _adapters[kind] = adapter


def register_simulator(kind: str, factory: SimulatorFactory) -> None:
    """Register a simulator in this process (entry points do this for installed packages)."""
    _simulators[kind] = factory


def adapter_names() -> list[str]:
    """Device kinds with an adapter, registered in-process or installed (not loaded)."""
    return sorted({ep.name for ep in entry_points(group="cellauto.adapters")} | set(_adapters))


def simulator_names() -> list[str]:
    """Device kinds with a simulator, registered in-process or installed (not loaded)."""
    return sorted({ep.name for ep in entry_points(group="cellauto.simulators")} | set(_simulators))


def load_adapter(kind: str) -> AdapterClass:
    """The adapter class for a device kind; only that adapter's package is imported."""
    loaded: AdapterClass = _load("cellauto.adapters", kind, _adapters, "adapter")
    return loaded


def load_simulator(kind: str) -> SimulatorFactory:
    """The simulator factory for a device kind; only that simulator's package is imported."""
    loaded: SimulatorFactory = _load("cellauto.simulators", kind, _simulators, "simulator")
    return loaded


def _load(group: str, kind: str, registered: dict[str, Any], what: str) -> Any:
    if kind in registered:
        return registered[kind]
    for ep in entry_points(group=group, name=kind):
        try:
            return ep.load()
        except Exception as exc:
            raise DeviceUrlError(f"the {kind} {what} ({ep.value}) failed to load: {exc}") from exc
    names = adapter_names() if what == "adapter" else simulator_names()
    raise DeviceUrlError(f"no {what} for device {kind!r}; installed: {', '.join(names) or 'none'}")


async def connect(
    url: str,
    *,
    device_id: str | None = None,
    profile: DeviceProfile | None = None,
    time: TimeSource | None = None,
    mock: bool = False,
    clock: Clock | None = None,
    before_connect: Callable[[Device], None] | None = None,
) -> Device:
    """Connect to the device a URL names and return it connected.

    ``<device>+sim://`` starts the device's simulator first; the simulator stops when the
    device is closed; pass `clock` to run it on a clock shared with other simulators (a batch
    does). `before_connect` sees the device before it connects, to subscribe to everything it
    reports from the first moment. ``mock=True`` returns a connected MockDevice.
    """
    parsed = parse_url(url)
    if mock:
        from cellauto.mock import MockDevice

        device: Device = MockDevice(
            device_id or f"{parsed.device}-1", profile or load_profile(parsed.device), time=time
        )
        if before_connect is not None:
            before_connect(device)
        await device.connect()
        return device
    adapter = load_adapter(parsed.device)
    if profile is None:
        # an adapter that builds its profile by browsing the device (lads) has no profile file
        placeholder = getattr(adapter, "placeholder_profile", None)
        if getattr(adapter, "browse_profile", False) and callable(placeholder):
            profile = placeholder()
        else:
            profile = load_profile(parsed.device)
    simulator: RunningSimulator | None = None
    device_id = device_id or f"{parsed.device}-1"
    if parsed.transport == "sim":
        factory = load_simulator(parsed.device)
        adapter_options, sim_options = split_sim_options(
            device_id, parsed.options, adapter, factory
        )
        if clock is None:
            simulator = await factory(profile, sim_options)
        else:
            simulator = await factory(profile, sim_options, clock=clock)
        try:
            served = _as_user(parse_url(simulator.url), user_name(parsed))
        except BaseException:
            await simulator.stop()
            raise
        parsed = replace(served, options=served.options | adapter_options)
        time = time or simulator.time
    if parsed.transport not in adapter.transports:
        raise DeviceUrlError(
            f"the {parsed.device} adapter speaks {', '.join(adapter.transports)}, "
            f"not {parsed.transport!r}"
        )
    try:
        device = adapter(device_id, profile, parsed, time=time)
    except BaseException:
        if simulator is not None:
            await simulator.stop()
        raise
    if simulator is not None:
        device.add_closer(simulator.stop)
    if before_connect is not None:
        before_connect(device)
    try:
        await device.connect()
    except BaseException:
        await device.close()
        raise
    return device
