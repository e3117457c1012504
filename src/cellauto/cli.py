"""The ``cellauto`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cellauto._version import __version__
from cellauto.errors import CellautoError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cellauto`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        status: int = args.handler(args)
    except CellautoError as exc:
        print(f"cellauto: {exc}", file=sys.stderr)
        return 1
    return status


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

    profiles = commands.add_parser("profiles", help="list the device profiles that ship")
    profiles.set_defaults(handler=_profiles)
    return parser


def _schema_export(args: argparse.Namespace) -> int:
    from cellauto.schema_export import default_json_dir, export, stale_files

    out: Path = args.out or default_json_dir()
    if args.check:
        stale = stale_files(out)
        if stale:
            print(
                f"stale JSON Schemas in {out}: {', '.join(stale)}; run `cellauto schema export`",
                file=sys.stderr,
            )
            return 1
        print(f"JSON Schemas in {out} are up to date")
        return 0
    written = export(out)
    print(f"wrote {len(written)} JSON Schemas to {out}")
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


def _profiles(args: argparse.Namespace) -> int:
    from cellauto.profiles import available_profiles, load_profile

    print(f"{'device':<12} {'version':<8} {'public':>6} {'assumed':>7}  model")
    for name in available_profiles():
        profile = load_profile(name)
        counts = profile.provenance_counts()
        print(
            f"{profile.device:<12} {profile.profile_version:<8} {counts['public']:>6} "
            f"{counts['assumed']:>7}  {profile.manufacturer} {profile.model}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
