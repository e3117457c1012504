"""The ``cellauto`` command."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cellauto._version import __version__
from cellauto.errors import CellautoError

if TYPE_CHECKING:
    from cellauto.sim import SimHandle


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cellauto`` command; returns the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        status: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:  # `cellauto records show ... | head`: the reader has enough
        _silence_stdout()
        return 1
    except CellautoError as exc:
        print(f"cellauto: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"cellauto: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cellauto: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: each problem's field and message."""
    problems = [
        f"{'.'.join(str(part) for part in err['loc']) or exc.title}: "
        f"{str(err['msg']).removeprefix('Value error, ')}"
        for err in exc.errors()
    ]
    return f"invalid {exc.title}: " + "; ".join(problems)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellauto", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cellauto {__version__}")
    commands = parser.add_subparsers(title="commands")

    schema = commands.add_parser("schema", help="JSON Schemas and profile validation")
    schema_commands = schema.add_subparsers(title="schema commands")
    export = schema_commands.add_parser(
        "export", help="write JSON Schema for every persisted model"
    )
    export.add_argument("--out", type=Path, help="folder (default: schemas/json)")
    export.add_argument(
        "--check", action="store_true", help="exit 1 if the files there are stale; write nothing"
    )
    export.set_defaults(handler=_schema_export)
    validate = schema_commands.add_parser("validate", help="validate device profile files")
    validate.add_argument("profiles", nargs="+", help="profile files, or names of shipped profiles")
    validate.set_defaults(handler=_schema_validate)

    devices = commands.add_parser(
        "devices", help="devices: profile, public vs assumed, adapter and simulator installed"
    )
    devices.add_argument(
        "device", nargs="?", help="one device: its programs, channels, commands and alarms"
    )
    devices.add_argument(
        "--discover", action="store_true", help="list SiLA 2 servers announced by mDNS (3 s)"
    )
    devices.set_defaults(handler=_devices)

    run = commands.add_parser("run", help="run an orchestration script, with a live view")
    run.add_argument("script", type=Path, help="the script (it opens one or more Batch)")
    run.add_argument("--sim", action="store_true", help="connect every device to its simulator")
    run.add_argument("--speed", help="simulator speed: 'max' or N times real time (with --sim)")
    run.add_argument("--records", type=Path, help="folder for batch records (default: records)")
    run.add_argument("--operator", help="operator name recorded in the batch")
    run.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write each batch's report beside its record (default: yes)",
    )
    run.add_argument(
        "--faults",
        help="fault schedule for every simulated device (with --sim), e.g. disconnect@2h:30s; "
        "see docs/faults.md",
    )
    run.set_defaults(handler=_run, passes_extra=True)
    run.epilog = (
        "Arguments after the script that are not options of `cellauto run` go to the script "
        "(sys.argv == [script, *args]); put them after `--` to pass any."
    )

    sim = commands.add_parser(
        "sim", help="run a device simulator as a standalone process and print its URL"
    )
    sim.add_argument("device", help="device kind, e.g. cocoon or prodigy")
    where = sim.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, help="serve on this loopback TCP port (default: free)")
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal")
    sim.add_argument("--speed", default="1", help="'max', or N times real time (default 1)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument(
        "--faults",
        default="",
        help="fault schedule (docs/faults.md), e.g. disconnect@2h:30s,stall@3h:10m, or a profile "
        "alarm code: door_open@10m:2m",
    )
    sim.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a device option, as in the simulator URL (e.g. -o anonymous=read)",
    )
    sim.set_defaults(handler=_sim)
    _register_optional_commands(commands)
    return parser


def _register_optional_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Sub-commands that live beside the modules they drive."""
    from cellauto.gateway.cli import register as register_gateway
    from cellauto.records.cli import register as register_records

    register_records(commands)
    register_gateway(commands)


def _schema_export(args: argparse.Namespace) -> int:
    from cellauto import schema_export
    from cellauto.records import tables
    from cellauto.resources import schemas_dir

    root: Path = args.out or schemas_dir()
    kinds = {"json": schema_export, "arrow": tables}
    if args.check:
        stale = [
            f"{kind}/{name}" for kind, mod in kinds.items() for name in mod.stale_files(root / kind)
        ]
        if stale:
            print(
                f"stale schemas in {root}: {', '.join(stale)}; run `cellauto schema export`",
                file=sys.stderr,
            )
            return 1
        print(f"JSON and Arrow schemas in {root} are up to date")
        return 0
    for kind, mod in kinds.items():
        written = mod.export(root / kind)
        print(f"wrote {len(written)} {kind} schemas to {root / kind}")
    return 0


def _schema_validate(args: argparse.Namespace) -> int:
    from cellauto.profiles import load_profile

    failed = 0
    for name in args.profiles:
        try:
            profile = load_profile(name)
        except CellautoError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        counts = profile.provenance_counts()
        print(
            f"{name}: valid ({profile.device} {profile.profile_version}: "
            f"{counts['public']} public, {counts['assumed']} assumed)"
        )
    return 1 if failed else 0


def _devices(args: argparse.Namespace) -> int:
    from cellauto.profiles import available_profiles, load_profile
    from cellauto.registry import adapter_names, simulator_names

    if args.discover:
        from cellauto.sila.discovery import discover

        for server in discover():
            print(f"{server.name:<40} {server.url}")
        return 0
    if args.device:
        from cellauto.profile_text import describe

        for line in describe(load_profile(args.device)):
            print(line)
        return 0
    installed, simulated = set(adapter_names()), set(simulator_names())
    print(
        f"{'device':<11} {'profile':<8} {'public':>6} {'assumed':>7}  {'transports':<12} "
        f"{'adapter':<7} {'sim':<3}  model"
    )
    profiles = set(available_profiles())
    for name in sorted(profiles | installed):
        if name not in profiles:  # an adapter that builds its profile by browsing (lads)
            print(
                f"{name:<11} {'browsed':<8} {'-':>6} {'-':>7}  {'-':<12} {'yes':<7} "
                f"{'yes' if name in simulated else 'no':<3}  any device it connects to "
                "(profile built at connect)"
            )
            continue
        profile = load_profile(name)
        counts = profile.provenance_counts()
        print(
            f"{profile.device:<11} {profile.profile_version:<8} {counts['public']:>6} "
            f"{counts['assumed']:>7}  {','.join(profile.transports):<12} "
            f"{'yes' if name in installed else 'no':<7} {'yes' if name in simulated else 'no':<3}  "
            f"{profile.manufacturer} {profile.model}"
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    from cellauto.runner import run_script

    extra = list(args.extra)
    if "--" in extra:  # what follows `--` goes to the script as given
        extra.remove("--")
    if args.faults and not args.sim:
        print(
            "cellauto run: --faults needs --sim (faults are injected by simulators)",
            file=sys.stderr,
        )
        return 2
    return run_script(
        args.script,
        sim=args.sim,
        speed=args.speed,
        records=args.records,
        operator=args.operator,
        reports=args.report,
        faults=args.faults,
        args=extra,
    )


async def start_sim(args: argparse.Namespace) -> SimHandle:
    """Start the simulator ``cellauto sim`` names, with its options as in a simulator URL."""
    from cellauto.errors import SimOptionError
    from cellauto.sim import start_simulator

    options: dict[str, Any] = {}  # text, as in a URL query
    for item in args.option:
        name, equals, value = item.partition("=")
        if not equals:
            raise SimOptionError(args.device, name, f"{item!r}: expected NAME=VALUE")
        options[name.strip()] = value
    return await start_simulator(
        args.device,
        speed=args.speed,
        seed=args.seed,
        port=args.port,
        pty=args.pty,
        faults=args.faults or None,
        **options,
    )


def _sim(args: argparse.Namespace) -> int:
    import asyncio

    async def serve() -> None:
        simulator = await start_sim(args)
        try:
            print(simulator.url, flush=True)
            await asyncio.Event().wait()
        finally:
            await simulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
