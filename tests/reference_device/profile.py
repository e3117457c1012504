"""The reference incubator's profile (made up for tests; every number assumed)."""

from cellauto.schema import DeviceProfile

PROFILE = DeviceProfile.model_validate(
    {
        "device": "incubator",
        "profile_version": "0.1.0",
        "manufacturer": "cellauto",
        "model": "Reference incubator",
        "description": "A made-up device for testing the driver layer.",
        "protocol": "tests/reference_device/__init__.py",
        "transports": ["tcp"],
        "functional_units": [
            {
                "name": "chamber",
                "kind": "culture_chamber",
                "channels": [
                    {
                        "name": "temperature",
                        "kind": "sensor",
                        "unit": "Cel",
                        "eu_range": {"low": 0, "high": 50, "source": "assumed"},
                        "sample_period": {"value": 60, "unit": "s", "source": "assumed"},
                    },
                    {
                        "name": "glucose",
                        "kind": "sensor",
                        "unit": "mmol/L",
                        "substance": "glucose",
                        "sample_period": {"value": 600, "unit": "s", "source": "assumed"},
                    },
                    {
                        "name": "cell_density",
                        "kind": "sensor",
                        "unit": "{cells}/mL",
                        "sample_period": {"value": 600, "unit": "s", "source": "assumed"},
                    },
                ],
            }
        ],
        "programs": [
            {
                "name": "expand",
                "version": "1",
                "author": "tests",
                "parameters": [
                    {
                        "name": "grow_time",
                        "unit": "h",
                        "default": 48,
                        "minimum": 1,
                        "maximum": 240,
                        "source": "assumed",
                    }
                ],
                "steps": [
                    {
                        "name": "Seed",
                        "unit_operation": "seed",
                        "functional_unit": "chamber",
                        "duration": {"value": 1, "unit": "h"},
                        "source": "assumed",
                    },
                    {
                        "name": "Add medium",
                        "unit_operation": "feed",
                        "functional_unit": "chamber",
                        "duration": {"value": 10, "unit": "min"},
                        "prompt": "Connect the medium bag",
                        "source": "assumed",
                    },
                    {
                        "name": "Grow",
                        "unit_operation": "expand",
                        "functional_unit": "chamber",
                        "duration": {"value": 48, "unit": "h"},
                        "source": "assumed",
                    },
                ],
            }
        ],
    }
)
