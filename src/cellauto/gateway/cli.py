"""``cellauto gateway``: serve devices as LADS, and manage the gateway's users and trust list."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from pathlib import Path

from cellauto.errors import GatewayError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gateway`` sub-command."""
    gateway = commands.add_parser(
        "gateway",
        help="serve connected devices as OPC UA LADS devices (one server, secured)",
        description="Serve every device URL as a LADS device in one OPC UA server. "
        "Users and the trust list live in the --state folder.",
    )
    gateway.add_argument("urls", nargs="*", help="device URLs, e.g. prodigy+sim://?speed=1")
    gateway.add_argument("--lads", action="store_true", help="serve OPC UA LADS (the default)")
    gateway.add_argument(
        "--sila", action="store_true", help="serve each device as a SiLA 2 server instead"
    )
    gateway.add_argument(
        "--insecure", action="store_true", help="SiLA: plain gRPC without TLS (warns)"
    )
    gateway.add_argument("--discovery", action="store_true", help="SiLA: announce by mDNS")
    gateway.add_argument(
        "--vendor-url",
        default=None,
        help="SiLA: the ServerVendorURL in SiLAService (default: a placeholder, example.org)",
    )
    gateway.add_argument("--port", type=int, default=4840, help="TCP port (default 4840)")
    gateway.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    gateway.add_argument(
        "--state", type=Path, default=Path("gateway"), help="certificate/users folder"
    )
    gateway.add_argument(
        "--allow-unsecured-read",
        action="store_true",
        help="also offer a None-security endpoint (anonymous read-only)",
    )
    gateway.add_argument("--no-anonymous", action="store_true", help="refuse anonymous sessions")
    gateway.add_argument("--add-user", metavar="NAME", help="add a user (password asked)")
    gateway.add_argument(
        "--role", choices=["observer", "operator", "supervisor"], help="role of --add-user"
    )
    gateway.add_argument("--trust", type=Path, metavar="CERT", help="trust a client certificate")
    gateway.add_argument(
        "--list-rejected", action="store_true", help="list refused client certificates"
    )
    gateway.set_defaults(handler=_gateway)


def _gateway(args: argparse.Namespace) -> int:
    from cellauto.gateway.security import Role, TrustList, UserStore

    state: Path = args.state
    if args.add_user:
        if not args.role:
            raise GatewayError("--add-user needs --role observer|operator|supervisor")
        password = os.environ.get("CELLAUTO_GATEWAY_PASSWORD") or getpass.getpass(
            f"password for {args.add_user}: "
        )
        UserStore(state / "users.json").add(args.add_user, Role[args.role.upper()], password)
        print(f"user {args.add_user} ({args.role}) saved in {state / 'users.json'}")
        return 0
    if args.trust:
        path = TrustList(state / "pki").trust(args.trust.read_bytes())
        print(f"trusted: {path}")
        return 0
    if args.list_rejected:
        for rejected in TrustList(state / "pki").rejected():
            print(rejected)
        return 0
    if not args.urls:
        print("cellauto gateway: give at least one device URL", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_sila(args) if args.sila else _serve(args))
    return 0


async def _serve_sila(args: argparse.Namespace) -> None:
    import cellauto
    from cellauto.gateway.sila import serve_sila

    devices = [await cellauto.connect(url) for url in args.urls]
    try:
        port = 50052 if args.port == 4840 else args.port  # 4840 is OPC UA's
        gateway = serve_sila(
            devices,
            state=args.state,
            host=args.host,
            port=port,
            insecure=args.insecure,
            discovery=args.discovery,
            vendor_url=args.vendor_url,
        )
        async with gateway:
            for server in gateway.servers:
                tls = "plain gRPC" if server.insecure else "TLS"
                print(
                    f"sila+grpc://{server.address} ({tls}) serves {server.device.device_id}",
                    flush=True,
                )
            await asyncio.Event().wait()
    finally:
        for device in devices:
            await device.close()


async def _serve(args: argparse.Namespace) -> None:
    import cellauto
    from cellauto.gateway.server import serve_lads

    devices = [await cellauto.connect(url) for url in args.urls]
    try:
        gateway = serve_lads(
            devices,
            state=args.state,
            host=args.host,
            port=args.port,
            allow_unsecured_read=args.allow_unsecured_read,
            anonymous=not args.no_anonymous,
        )
        async with gateway:
            names = ", ".join(d.device_id for d in devices)
            print(f"{gateway.url} serves {names} as LADS devices", flush=True)
            await asyncio.Event().wait()
    finally:
        for device in devices:
            await device.close()
