"""Pull records from a clinic's FHIR R4 server into the platform through the gateway.

For each resource type the clinic's server is searched (``GET {base}/{type}?_count=100``,
with ``_lastUpdated=ge{since}`` for an incremental pull) and its ``next`` links followed
(http://hl7.org/fhir/R4/http.html#paging). Every page becomes one ``transaction`` Bundle
of ``PUT {type}/{id}`` entries handed to :func:`fhir_gateway.ingest.process_bundle` — the
same write path as a clinic's own ``POST /fhir`` — in a database transaction of its own:

- a crash loses at most the page in flight; what was stored before stays stored;
- the gateway maps the clinic's ids to the platform's through its source table, so a
  re-run (or a page fetched twice) changes nothing, and a reference such as
  ``Patient/123`` on a later page resolves to the platform Patient. Patients are pulled
  first for that reason.

Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried with
exponential back-off, honouring ``Retry-After`` up to :data:`MAX_RETRY_DELAY`; after
``max_retries`` retries the pull stops with a :class:`PullError` that carries the report of
what was stored so far. Other answers (401, 403, 404, a body that is not a searchset
Bundle, a page the gateway rejects) stop it at once: retrying would not help.

The bearer token goes only to the clinic's own origin: a ``next`` link elsewhere stops
the pull.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from consent.actors import Actor
from consent.models import Organization
from fhir_gateway.ingest import SourceRecord, plan_ids, process_bundle
from fhir_gateway.validation import known_type
from phr import __version__
from phr.db import transaction
from phr.errors import PHRError
from phr.settings import get_settings
from phr.store import repository as repo
from phr.store.indexer import date_range

__all__ = ["DEFAULT_TYPES", "PullError", "PullReport", "TypeCounts", "pull"]

log = logging.getLogger(__name__)

# Patients first so that every later reference to them resolves; then what others refer to.
DEFAULT_TYPES: tuple[str, ...] = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "AllergyIntolerance",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "DocumentReference",
)
PAGE_SIZE = 100
MAX_RETRY_DELAY = 60.0  # seconds; a longer Retry-After is cut to this
MAX_PAGES_PER_TYPE = 100_000  # a server whose next links never end
FHIR_JSON = "application/fhir+json"


class PullError(Exception):
    """The pull stopped; ``report`` tells what was stored before it did."""

    def __init__(self, message: str, *, report: PullReport) -> None:
        super().__init__(message)
        self.message = message
        self.report = report


@dataclass
class TypeCounts:
    pages: int = 0
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # stored once with what another source had sent: the same fact, or a Patient linked
    # to a resident the platform already knew
    merged: int = 0
    skipped: int = 0  # entries that were not a resource of the type (include, outcome, no id)


@dataclass
class PullReport:
    organization_id: str
    base_url: str
    since: str | None = None
    types: dict[str, TypeCounts] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0

    @property
    def pages(self) -> int:
        return sum(c.pages for c in self.types.values())

    def total(self, what: str) -> int:
        return sum(int(getattr(c, what)) for c in self.types.values())

    def summary(self) -> str:
        head = f"pull from {self.base_url} for {self.organization_id}"
        if self.since:
            head += f" (changed since {self.since})"
        lines = [
            head,
            f"{'type':<22}{'pages':>6}{'received':>10}{'created':>9}{'updated':>9}"
            f"{'unchanged':>11}{'merged':>8}{'skipped':>9}",
        ]
        for rtype, c in self.types.items():
            lines.append(
                f"{rtype:<22}{c.pages:>6}{c.received:>10}{c.created:>9}{c.updated:>9}"
                f"{c.unchanged:>11}{c.merged:>8}{c.skipped:>9}"
            )
        lines.append(
            f"{self.pages} pages, {self.requests} requests, {self.retries} retries; "
            f"{self.total('created')} created, {self.total('updated')} updated, "
            f"{self.total('unchanged')} unchanged"
        )
        return "\n".join(lines)


def pull(
    *,
    organization_id: str,
    base_url: str,
    types: Sequence[str] | None = None,
    since: str | datetime | None = None,
    token: str | None = None,
    client: httpx.Client | None = None,
    max_retries: int = 5,
    backoff: float = 0.5,
) -> PullReport:
    """Pull ``types`` (default :data:`DEFAULT_TYPES`) from the clinic's server at ``base_url``.

    ``since`` (a FHIR instant or an aware datetime) limits the pull to resources changed
    since then. ``client`` may be injected (tests use ``httpx.MockTransport``); otherwise
    one is made and closed here. Raises :class:`PullError` when it cannot finish.
    """
    base = base_url.rstrip("/")
    report = PullReport(organization_id=organization_id, base_url=base)
    wanted = _ordered_types(types, report)
    report.since = _since_text(since, report)
    actor = _actor(organization_id, report)
    import_id = f"pull:{repo.new_id()}"
    headers = {"Accept": FHIR_JSON, "User-Agent": f"tsukuba-phr/{__version__} (gateway pull)"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
    try:
        for rtype in wanted:
            counts = report.types.setdefault(rtype, TypeCounts())
            first = [("_count", str(PAGE_SIZE))]
            if report.since:
                first.append(("_lastUpdated", f"ge{report.since}"))
            params: list[tuple[str, str]] | None = first
            url: str | None = f"{base}/{rtype}"
            seen: set[str] = set()
            while url is not None:
                if counts.pages >= MAX_PAGES_PER_TYPE:
                    raise PullError(f"{rtype}: more than {MAX_PAGES_PER_TYPE} pages", report=report)
                page = _get_page(
                    http,
                    url,
                    params,
                    headers,
                    report,
                    what=f"{rtype} page {counts.pages + 1}",
                    max_retries=max_retries,
                    backoff=backoff,
                )
                counts.pages += 1
                _store_page(page, rtype, base, actor, import_id, counts, report)
                log.info(
                    "pulled %s page %d from %s (%d entries)",
                    rtype,
                    counts.pages,
                    organization_id,
                    len(page.get("entry") or []),
                )
                seen.add(_shown(url, params))
                url = _next_link(page, url, base, seen, report)
                params = None  # a next link carries its own query
    finally:
        if client is None:
            http.close()
    return report


# ---- set-up ---------------------------------------------------------------------------------


def _ordered_types(types: Sequence[str] | None, report: PullReport) -> list[str]:
    wanted = list(dict.fromkeys(types or DEFAULT_TYPES))
    unknown = [t for t in wanted if not known_type(t) or t == "Bundle"]
    if unknown:
        raise PullError(f"unknown resource type(s): {', '.join(unknown)}", report=report)
    if "Patient" in wanted:
        wanted.remove("Patient")
        wanted.insert(0, "Patient")
    return wanted


def _since_text(since: str | datetime | None, report: PullReport) -> str | None:
    if since is None or since == "":
        return None
    if isinstance(since, datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return since.isoformat()
    if date_range(since) is None:
        raise PullError(f"since must be a FHIR date or instant, not {since!r}", report=report)
    return since


def _actor(organization_id: str, report: PullReport) -> Actor:
    with transaction() as session:
        org = session.get(Organization, organization_id)
        if org is None or not org.active:
            raise PullError(
                f"organisation {organization_id!r} is not registered or not active "
                "(register it with `phr org add`)",
                report=report,
            )
        kind = org.kind
    return Actor(
        kind="organization",
        organization_id=organization_id,
        client_id=f"pull:{organization_id}",
        organization_kind=kind,
        scopes=frozenset({"system/*.cruds"}),
    )


# ---- HTTP -----------------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _shown(url: str, params: list[tuple[str, str]] | None) -> str:
    """The URL as requested (``httpx.URL(url, params=[])`` would drop its own query)."""
    return str(httpx.URL(url, params=params)) if params else str(httpx.URL(url))


def _get_page(
    http: httpx.Client,
    url: str,
    params: list[tuple[str, str]] | None,
    headers: dict[str, str],
    report: PullReport,
    *,
    what: str,
    max_retries: int,
    backoff: float,
) -> dict[str, Any]:
    shown = _shown(url, params)
    attempt = 0
    while True:
        wait_hint: float | None = None
        report.requests += 1
        try:
            resp = http.get(url, params=tuple(params) if params else None, headers=headers)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code == 200:
                return _searchset(resp, f"{what}: GET {shown}", report)
            if resp.status_code != 429 and resp.status_code < 500:
                raise PullError(
                    f"{what}: GET {shown} answered HTTP {resp.status_code}{_diagnostics(resp)}",
                    report=report,
                )
            problem = f"HTTP {resp.status_code}{_diagnostics(resp)}"
            wait_hint = _retry_after(resp.headers.get("Retry-After"))
        if attempt >= max_retries:
            raise PullError(
                f"{what}: GET {shown} failed after {attempt + 1} attempts "
                f"({max_retries} retries); last answer: {problem}",
                report=report,
            )
        delay = backoff * (2**attempt)
        if wait_hint is not None:
            delay = max(delay, wait_hint)
        delay = min(delay, MAX_RETRY_DELAY)
        attempt += 1
        report.retries += 1
        log.warning("GET %s: %s; retry %d in %.1fs", shown, problem, attempt, delay)
        time.sleep(delay)


def _diagnostics(resp: httpx.Response) -> str:
    """A short reason from an OperationOutcome body, if the server sent one."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    texts = [
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code") or "")
        for i in body.get("issue") or []
        if isinstance(i, dict)
    ]
    text = "; ".join(t for t in texts if t)[:300]
    return f" ({text})" if text else ""


def _searchset(resp: httpx.Response, what: str, report: PullReport) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        raise PullError(f"{what} did not answer JSON", report=report) from None
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise PullError(f"{what} did not answer a Bundle", report=report)
    if body.get("type") != "searchset":
        raise PullError(
            f"{what} answered a {body.get('type')!r} Bundle, not a searchset", report=report
        )
    if not isinstance(body.get("entry", []), list):
        raise PullError(f"{what}: Bundle.entry is not an array", report=report)
    return body


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _next_link(
    page: dict[str, Any], current: str, base: str, seen: set[str], report: PullReport
) -> str | None:
    links = page.get("link") or []
    target = next(
        (
            str(link.get("url"))
            for link in links
            if isinstance(link, dict) and link.get("relation") == "next" and link.get("url")
        ),
        None,
    )
    if target is None:
        return None
    target = urljoin(current, target)
    if _origin(httpx.URL(target)) != _origin(httpx.URL(base)):
        raise PullError(
            f"next link {target} leaves the clinic's server {base}; not followed", report=report
        )
    if str(httpx.URL(target)) in seen:
        raise PullError(f"next link {target} repeats an earlier page", report=report)
    return target


# ---- storing a page -----------------------------------------------------------------------------


def _matches(page: dict[str, Any], rtype: str, counts: TypeCounts) -> list[dict[str, Any]]:
    """The page's resources of ``rtype`` (search matches), the last one per id."""
    by_id: dict[str, dict[str, Any]] = {}
    for e in page.get("entry") or []:
        res = e.get("resource") if isinstance(e, dict) else None
        search = e.get("search") if isinstance(e, dict) else None
        mode = search.get("mode") if isinstance(search, dict) else None
        if (
            not isinstance(res, dict)
            or res.get("resourceType") != rtype
            or mode not in (None, "match")
            or not isinstance(res.get("id"), str)
            or not res["id"]
        ):
            counts.skipped += 1
            continue
        by_id[res["id"]] = res
    return list(by_id.values())


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


def _store_page(
    page: dict[str, Any],
    rtype: str,
    base: str,
    actor: Actor,
    import_id: str,
    counts: TypeCounts,
    report: PullReport,
) -> None:
    resources = _matches(page, rtype, counts)
    counts.received += len(resources)
    if not resources:
        return
    org = actor.organization_id
    assert org is not None
    limit = get_settings().max_bundle_entries
    page_counts = TypeCounts()  # added to the report once the page is committed
    try:
        with transaction() as session:
            for chunk in _chunks(resources, limit):
                _, before = plan_ids(
                    session, org, [SourceRecord(str(r["id"]), dict(r)) for r in chunk]
                )
                bundle = {
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [
                        {
                            "fullUrl": f"{base}/{rtype}/{r['id']}",
                            "resource": _without_id(r),
                            "request": {"method": "PUT", "url": f"{rtype}/{r['id']}"},
                        }
                        for r in chunk
                    ],
                }
                out = process_bundle(session, bundle, actor=actor, import_id=import_id)
                for r, e in zip(chunk, out["entry"], strict=True):
                    _tally(page_counts, before.get((rtype, str(r["id"]))), e.get("response") or {})
    except PHRError as exc:
        where = "; ".join(
            str(i.get("expression") or "") + ": " + str(i.get("diagnostics") or "")
            for i in exc.issues[:5]
        )
        raise PullError(
            f"{rtype} page {counts.pages} was rejected by the gateway, nothing of it was "
            f"stored: {exc.message}" + (f" [{where}]" if where else ""),
            report=report,
        ) from exc
    for name in ("created", "updated", "unchanged", "merged"):
        setattr(counts, name, getattr(counts, name) + getattr(page_counts, name))


def _without_id(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource for the gateway, without the clinic's id except on a Patient.

    The clinic's id travels as the source key (``request.url``); the platform id must be
    the gateway's to mint. The gateway keeps a new record's own ``id`` as the platform id
    (``ingest.plan_ids``), so two clinics that both have an ``Observation/1`` would write
    to one platform resource — the second overwriting the first, across residents.
    Patients keep theirs: the master patient index links on it, and their platform id is
    the resident's, never the clinic's.
    """
    if resource.get("resourceType") == "Patient":
        return resource
    return {k: v for k, v in resource.items() if k != "id"}


def _tally(
    counts: TypeCounts, before: tuple[Any, str, int] | None, response: dict[str, Any]
) -> None:
    status = str(response.get("status") or "")
    location = str(response.get("location") or "")
    parts = location.split("/")
    version = int(parts[3]) if len(parts) == 4 and parts[3].isdigit() else None
    if before is None:
        if status.startswith("201"):
            counts.created += 1
        else:
            counts.merged += 1
    elif version == before[2] and parts[1] == before[1]:
        counts.unchanged += 1
    else:
        counts.updated += 1
