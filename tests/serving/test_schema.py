"""Fuzz the service's OpenAPI schema (schemathesis, bounded): no input gives a 5xx, and every
answer matches the schema it documents."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from tests.serving.conftest import KEY
from tuijian.serving import Settings, create_app

EXAMPLES = int(os.environ.get("TUIJIAN_FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="TUIJIAN_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
)


# An invalid body may also be refused for its size (413, documented on every operation).
CONFIG = SchemathesisConfig.from_str(
    """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]
"""
)


def _non_header(operation: dict) -> bool:
    """Whether an operation takes a path or query parameter (any string header is valid)."""
    return any(p["in"] != "header" for p in operation.get("parameters", ()))


# The operations, from the schema of an app that is never started (it needs no model for that),
# each with valid requests and, where it takes any input, invalid ones.
SPEC = create_app(Settings(Path("unused"))).openapi()["paths"]
CASES = [
    (path, method.upper(), mode)
    for path, item in SPEC.items()
    for method, op in item.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or op.get("requestBody") or _non_header(op)
]


@pytest.fixture(scope="module")
def api(shop: Path) -> schemathesis.BaseSchema:
    app = create_app(Settings(shop / "models" / "itemknn", api_key=KEY))
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_no_input_gives_a_5xx(
    api: schemathesis.BaseSchema, path: str, method: str, mode: GenerationMode
) -> None:
    """Schema-valid requests are answered as documented; invalid ones are refused with a 4xx."""

    @given(api[path][method].as_strategy(generation_mode=mode))
    @FUZZ
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"X-API-Key": KEY})

    check()
