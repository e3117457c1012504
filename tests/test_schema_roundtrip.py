"""Every persisted model survives JSON and back unchanged (property-based)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellauto.schema import PERSISTED_MODELS
from strategies import STRATEGIES


def test_every_persisted_model_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(PERSISTED_MODELS)


@pytest.mark.parametrize("model", PERSISTED_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_json_round_trip(model: Any, data: st.DataObject) -> None:
    instance = data.draw(STRATEGIES[model])
    assert isinstance(instance, model)
    text = instance.model_dump_json()
    again = model.model_validate_json(text)
    assert again == instance
    assert again.model_dump_json() == text
    assert model.model_validate(instance.model_dump(mode="json")) == instance
