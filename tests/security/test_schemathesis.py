"""Property-based requests generated from the application's own OpenAPI schema
(schemathesis, in process over ASGI): no operation answers 5xx, and every answer conforms
to the schema — its status code is documented, its body matches the documented model,
its content type the documented one.

One test walks every operation with a bounded number of examples (``EXAMPLES``), with the
credentials the route is for (an organisation's broad client-credentials token, or a
resident's token), so that generated requests get past authentication and reach the
code. No shrinking: a failure is reported with the first failing example."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from tests.conftest import OrgFactory, user_token_headers

# Examples per operation: CI runs a few (deterministic); `PHR_FUZZ_EXAMPLES=200` for a
# long, random run by hand.
EXAMPLES = int(os.environ.get("PHR_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BROAD = ["system/*.rs", "system/*.cud", "system/Bundle.c"]
# Resident routes: the resident's own token.
RESIDENT_PREFIXES = ("/api/me", "/api/triage/me")


@pytest.fixture
def tokens(session: Session, make_org: OrgFactory, world: dict[str, Any]) -> dict[str, Any]:
    from phr.store.indexer import utcnow

    org = make_org("hospital-fuzz", "hospital", scopes=BROAD)
    rid = world["patient"]
    resident = user_token_headers(session, subject_kind="resident", subject_id=rid, resident_id=rid)
    assert utcnow()
    return {"org": org["headers"], "resident": resident}


def headers_for(path: str, tokens: dict[str, Any]) -> dict[str, str]:
    return dict(tokens["resident"] if path.startswith(RESIDENT_PREFIXES) else tokens["org"])


def fuzz(operation: Any, headers: dict[str, str]) -> Any:
    """The Hypothesis test of one operation: ``EXAMPLES`` generated requests."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize="PHR_FUZZ_EXAMPLES" not in os.environ,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    return run


def test_no_operation_fails_or_breaks_its_schema(app: Any, tokens: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            fuzz(operation, headers_for(operation.path, tokens))()
        except (Exception, BaseExceptionGroup) as exc:  # reported together below
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:3000]}")
    assert operations > 50
    assert failures == [], "\n\n".join(failures)
