"""Device profiles: shipped ones validate; broken ones name the file, key path and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from cellauto import ProfileError, available_profiles, load_profile
from cellauto.profiles import key_path, profiles_dir
from cellauto.schema import DeviceProfile
from cellauto.schema.provenance import is_public

DEVICES = ["acc200", "cellqualia", "cocoon", "licellgrow", "maholo", "prodigy"]


def test_the_six_devices_ship_a_profile() -> None:
    # `sila` is the generic SiLA 2 adapter's placeholder (its real profile comes from the server)
    assert [p for p in available_profiles() if p != "sila"] == DEVICES


@pytest.mark.parametrize("device", DEVICES)
def test_shipped_profile_is_valid_and_honest(device: str) -> None:
    profile = load_profile(device)
    assert profile.device == device
    assert profile.protocol == f"schemas/protocols/{device}.md"
    counts = profile.provenance_counts()
    assert counts["public"] + counts["assumed"] > 0
    cited = {
        source.removeprefix("public:") for _, source in profile.provenances() if is_public(source)
    }
    assert cited <= set(profile.sources)
    for unit in profile.functional_units:
        for channel in unit.channels:
            if channel.dtype in ("float", "int"):
                assert channel.sample_period is not None, f"{unit.name}.{channel.name}"


def test_licellgrow_is_entirely_assumed() -> None:
    # Nothing about LiCellGrow is public (no public source was found; see the profile's header).
    assert load_profile("licellgrow").provenance_counts()["public"] == 0


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    import json

    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def cocoon_raw() -> dict[str, Any]:
    with (profiles_dir() / "cocoon.toml").open("rb") as handle:
        return tomllib.load(handle)


def _first_numeric_channel(raw: dict[str, Any]) -> dict[str, Any]:
    for unit in raw["functional_units"]:
        for channel in unit.get("channels", []):
            if "eu_range" in channel:
                return channel  # type: ignore[no-any-return]
    raise AssertionError("no numeric channel")


@pytest.mark.parametrize(
    ("mutate", "path_part", "reason"),
    [
        (lambda raw: raw.update(colour="blue"), "colour", "unknown key"),
        (
            lambda raw: _first_numeric_channel(raw).update(unit="degC"),
            ".unit",
            "did you mean 'Cel'",
        ),
        (
            lambda raw: _first_numeric_channel(raw)["eu_range"].update(source="from the brochure"),
            ".eu_range.source",
            "pattern",
        ),
        (
            lambda raw: _first_numeric_channel(raw)["eu_range"].update(source="public:nowhere"),
            "",
            "cites 'nowhere', which is not in [sources]",
        ),
        (
            lambda raw: _first_numeric_channel(raw).update(
                alarm_limits={"low": -1e9, "high": 1, "source": "assumed"}
            ),
            ".channels",
            "outside eu_range",
        ),
        (lambda raw: raw.pop("transports"), "transports", "Field required"),
    ],
    ids=[
        "unknown-key",
        "bad-unit",
        "bad-provenance",
        "missing-citation",
        "limit-out-of-range",
        "missing",
    ],
)
def test_broken_profile_names_file_key_path_and_reason(
    tmp_path: Path, cocoon_raw: dict[str, Any], mutate: Any, path_part: str, reason: str
) -> None:
    mutate(cocoon_raw)
    path = _write(tmp_path, cocoon_raw)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message
    assert path_part in message
    assert reason in message


def test_key_path_names_list_items_by_their_name() -> None:
    raw = {"functional_units": [{"name": "chamber", "channels": [{"name": "ph"}, {"name": "t"}]}]}
    loc = ("functional_units", 0, "channels", 1, "unit", "function-after[x]")
    assert key_path(raw, loc) == "functional_units[0](chamber).channels[1](t).unit"


def test_unknown_profile_name_lists_known_ones() -> None:
    with pytest.raises(ProfileError, match="known: acc200, cellqualia"):
        load_profile("cocoa")


def test_unreadable_profile_is_a_profile_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("device = [", encoding="utf-8")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(path)


def test_profile_lookups_name_what_exists() -> None:
    profile: DeviceProfile = load_profile("cocoon")
    first = next(iter(profile.channels()))
    assert profile.channel(first).name == first.split(".")[1]
    with pytest.raises(KeyError, match=r"has no channel 'chamber\.colour'"):
        profile.channel("chamber.colour")
    with pytest.raises(KeyError, match="has no program"):
        profile.program("Nope")
