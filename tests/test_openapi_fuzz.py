"""Schemathesis against the gateway's own OpenAPI, served by uvicorn: no route answers a server
error, and every answer matches the schema the route declares. Kept short: a few tens of
generated requests per route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import gateway_in_thread, make_config

EXAMPLES_PER_ROUTE = 25
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("openapi-data")
    config = make_config(history={"data_dir": str(data)}, http={"read_timeout_s": 5})
    with gateway_in_thread(config) as (_, url, _published):
        yield url


def test_every_route_answers_within_its_schema_and_never_500(gateway_url: str) -> None:
    loaded = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    # the event stream never ends; terminate would leave the fuzzer a stopped stream
    schema = loaded.exclude(path="/events").exclude(path_regex=r".*/terminate$")
    failures: dict[str, str] = {}
    operations = 0
    for found in schema.get_all_operations():
        operation = found.ok()  # type: ignore[union-attr]
        operations += 1

        @given(operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate(checks=CHECKS)

        try:
            fuzz()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # collect every route's first failure, then report them all
            failures[operation.label] = str(exc)[:2000]
    assert operations >= 25
    report = "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert not failures, f"{sorted(failures)}\n\n{report}"
