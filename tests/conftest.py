"""Shared fixtures: a real database (SQLite, or PostgreSQL when PHR_TEST_DATABASE_URL is
set) built by Alembic, a rollback per test, and helpers for organisations and tokens."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

SHARED = Path(__file__).resolve().parents[2] / "shared"
SYNTHEA_DIR = SHARED / "data" / "synthea-r4"
DRUGS_CSV = SHARED / "data" / "jp-drugs" / "mhlw-drug-price-list-2025-07-16.csv"
# In CI every precondition below is installed by .ci/run: a test never skips there, it fails.
IN_CI = os.environ.get("CI", "").lower() == "true"


OFF_CI = (
    " — skipped on this machine only: CI machines have ../shared/data beside the repository"
    " and .ci/run installs the extras and packages, so in CI this test fails instead"
)


def needs(present: bool, reason: str) -> pytest.MarkDecorator:
    """Skip on a developer machine that lacks an outside input (the shared data next to
    the repository, an optional extra); in CI run anyway, so a missing input fails."""
    return pytest.mark.skipif(not present and not IN_CI, reason=reason + OFF_CI)


def require(present: bool, reason: str) -> None:
    """The same at run time: skip off CI (saying so), fail in CI."""
    if present:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason + OFF_CI)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("phr-data")
    os.environ["PHR_DATA_DIR"] = str(d)
    os.environ["PHR_ENV"] = "test"
    os.environ["PHR_BASE_URL"] = "http://testserver"
    # No chainer thread: it would share the test's connection. Tests chain explicitly
    # (consent.audit.chain_pending); the chainer has its own tests.
    os.environ["PHR_AUDIT_CHAIN_INTERVAL"] = "0"
    from phr.settings import reset_settings_cache

    reset_settings_cache()
    return d


def _fresh_postgres(url: str) -> Engine:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    return engine


@pytest.fixture(scope="session")
def engine(data_dir: Path) -> Iterator[Engine]:
    from phr.db import make_engine, set_engine
    from phr.migrate import upgrade

    url = os.environ.get("PHR_TEST_DATABASE_URL")
    if url:
        _fresh_postgres(url).dispose()
        eng = make_engine(url=url)
    else:
        eng = make_engine(url=f"sqlite:///{data_dir / 'test.db'}")
    upgrade(eng)
    set_engine(eng)
    yield eng
    set_engine(None)
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session whose commits are savepoints inside one outer transaction per test."""
    from phr.db import set_session_factory

    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    set_session_factory(factory)
    s = factory()
    try:
        yield s
    finally:
        s.close()
        set_session_factory(None)


@pytest.fixture
def app(session: Session) -> Any:
    from phr.app import create_app

    return create_app()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


OrgFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def make_org(session: Session, client: TestClient) -> OrgFactory:
    """Register an organisation with an OAuth2 client; return its id and auth headers."""
    from consent.identity.clients import register_client, register_organization

    def make(org_id: str, kind: str = "clinic", scopes: list[str] | None = None) -> dict[str, Any]:
        register_organization(session, id=org_id, name=f"{org_id} ({kind})", kind=kind)
        oc, secret = register_client(
            session,
            organization_id=org_id,
            name=f"{org_id} client",
            scopes=scopes or ["system/*.rs", "system/Bundle.c", "system/*.cud"],
        )
        session.commit()
        r = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(oc.client_id, secret)
        )
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        return {
            "id": org_id,
            "client_id": oc.client_id,
            "secret": secret,
            "headers": {"Authorization": f"Bearer {token}"},
        }

    return make


def patient_bundle(
    *,
    mrn: str = "12345",
    family: str = "筑波",
    given: str = "花子",
    birth: str = "1950-04-01",
    gender: str = "female",
    extra: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A small clinic transaction: one patient and what refers to them."""
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11234567", "value": mrn}],
                "name": [{"family": family, "given": [given]}],
                "gender": gender,
                "birthDate": birth,
            },
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    entries += extra or []
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def observation_entry(
    uuid: str,
    code: str = "4548-4",
    value: float = 6.1,
    date: str = "2024-05-01T09:00:00+09:00",
    unit: str = "%",
) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": "HbA1c"}]},
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "effectiveDateTime": date,
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        },
        "request": {"method": "POST", "url": "Observation"},
    }


def user_token_headers(
    session: Session,
    *,
    subject_kind: str,
    subject_id: str,
    resident_id: str | None = None,
    organization_id: str | None = None,
    role: str | None = None,
) -> dict[str, str]:
    """Authorization headers of a person's access token exactly as the OpenID Connect
    provider issues it to an app they approved (the authorization-code flow itself is
    tested in tests/consent/identity): a resident (``patient/*.rs``) or a staff member
    (``user/*.rs``)."""
    from consent.identity import oauth, oidc
    from consent.identity.models import TokenFamily
    from phr.store.indexer import utcnow

    resident = subject_kind == "resident"
    scope = "openid fhirUser " + ("patient/*.rs" if resident else "user/*.rs")
    app_row, _ = oidc.register_app_client(
        session,
        name=f"app for {subject_id}",
        redirect_uris=["https://app.example.jp/callback"],
        public=True,
        scopes=[*scope.split(), *(["launch/patient"] if resident else [])],
    )
    family = TokenFamily(
        id=f"fam-{subject_id}",
        client_id=app_row.client_id,
        scope=scope,
        subject_kind=subject_kind,
        subject_id=subject_id,
        resident_id=resident_id,
        organization_id=organization_id,
        role=role,
        auth_time=utcnow(),
        created_at=utcnow(),
    )
    session.add(family)
    session.flush()
    user = oauth.SignedInUser(
        kind="resident" if resident else "staff",
        id=subject_id,
        resident_id=resident_id,
        organization_id=organization_id,
        role=role,
        auth_time=utcnow(),
    )
    issued = oauth.issue_user_tokens(
        session, family=family, user=user, scope=scope, include_refresh=False
    )
    session.commit()
    return {"Authorization": f"Bearer {issued['access_token']}"}
