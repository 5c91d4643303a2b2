"""Schemathesis against the gateway's own OpenAPI document (``/openapi.json``), served by
a running gateway: every documented operation, at least 1,000 generated requests in all
(valid and invalid), and every answer must be a non-5xx with a documented status, content
type and body schema (the error envelope for errors)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_TOKEN, gateway_config, route
from tests.e2e.helpers import start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway

EXAMPLES_PER_OPERATION = 60  # x 2 modes x 21 operations
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_gateway(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("openapi"))
    config["auth"] = {"required": False, "throttle": {"enabled": False}}
    config["models"].append({"name": "string", "routes": [route("fake", "ok")]})
    running = start_gateway(config)
    yield running
    running.stop()


def fuzz_operation(operation: Any, mode: GenerationMode, base_url: str, failures: list[str]) -> int:
    """Run ``EXAMPLES_PER_OPERATION`` generated cases of one operation; return how many."""
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def run(case: Case) -> None:
        nonlocal ran
        ran += 1
        try:
            case.call_and_validate(
                base_url=base_url,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                checks=CHECKS,
                excluded_checks=[],
                timeout=10,
            )
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # collect every operation's first failure, not just one
            if not any(f.startswith(operation.label) for f in failures):
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE, operation.label
    return ran


def test_every_operation_conforms(fuzzed_gateway: RunningGateway) -> None:
    api = schemathesis.openapi.from_url(fuzzed_gateway.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    failures: list[str] = []
    cases = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases += fuzz_operation(operation, mode, fuzzed_gateway.url, failures)
    assert not failures, "\n\n".join(failures)
    assert len(operations) >= 21
    assert cases >= 1000, cases


def test_the_document_has_no_dangling_references(fuzzed_gateway: RunningGateway) -> None:
    document = httpx.get(fuzzed_gateway.url + "/openapi.json", timeout=10).json()
    text = json.dumps(document)
    assert "#/$defs/" not in text  # pydantic's nested refs point at nothing in OpenAPI
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in document["components"]["schemas"], name
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "default" in operation["responses"], (method, path)
