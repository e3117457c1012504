"""Declared URL options: unknown or unparsable options are typed errors naming the device and
the option; `+sim://` URLs hand adapter options to the adapter and the rest to the simulator."""

from __future__ import annotations

import pytest

from cellauto.adapter import CONNECTION, Backoff, Options, number
from cellauto.errors import DeviceOptionError
from cellauto.registry import DeviceUrlError, connect, parse_url


@pytest.mark.parametrize(
    ("url", "option"),
    [
        ("cocoon+sim://?sped=max", "sped"),
        ("prodigy+sim://?seed=x", "seed"),
        ("prodigy+sim://?port=x", "port"),
        ("cocoon+sim://?port=99999", "port"),
        ("prodigy+sim://?speed=-1", "speed"),
        ("prodigy+sim://?retries=abc", "retries"),
        ("cocoon+opcua://127.0.0.1:99999", "address"),
        ("cocoon+opcua://:4840", "address"),
        ("prodigy+tcp://127.0.0.1:5020?timout=3", "timout"),
        ("prodigy+tcp://127.0.0.1:x", "address"),
    ],
)
async def test_bad_options_are_typed_errors_naming_device_and_option(url: str, option: str) -> None:
    with pytest.raises(DeviceOptionError) as caught:
        await connect(url, device_id="dev-7")
    assert caught.value.option == option
    assert caught.value.device == "dev-7"
    assert option in str(caught.value)


async def test_a_misspelt_option_suggests_the_right_one() -> None:
    with pytest.raises(DeviceOptionError, match="did you mean 'speed'"):
        await connect("cocoon+sim://?sped=max")


@pytest.mark.parametrize("url", ["cocoon+sim:/", "cocoon+opcua://", "cocoon:4840", "prodigy+tcp:"])
def test_malformed_urls_are_typed_errors(url: str) -> None:
    with pytest.raises(DeviceUrlError):
        parse_url(url)


async def test_sim_urls_pass_adapter_options_to_the_adapter() -> None:
    device = await connect("prodigy+sim://?speed=max&request_timeout=0.7&heartbeat=0&retries=1")
    try:
        assert device.request_timeout == 0.7  # type: ignore[attr-defined]
        assert device.retries == 1  # type: ignore[attr-defined]
    finally:
        await device.close()


def test_options_combine_and_parse_typed_values() -> None:
    period = number("period", 0.02, "s")
    options = CONNECTION | Options(period)
    values = options.parse("dev", {"period": "0.5", "reconnect_attempts": "3"})
    assert values[period] == 0.5
    assert values.given(period)
    assert "timeout" in options.names


def test_backoff_stops_at_its_attempt_and_time_limits() -> None:
    assert len(list(Backoff(0.01, max_attempts=3, seed=1).delays())) == 3
    assert list(Backoff(10.0, max_time=1.0, seed=1).delays()) == []
    assert "at most 3 attempts" in Backoff(max_attempts=3).limits()
