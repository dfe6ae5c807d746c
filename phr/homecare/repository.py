"""SQL of the home-care tables. Authorization is part of the query: a station finds only
its own requests; a care-team organisation only the enrolments naming it. The
compare-and-set updates (:func:`advance_request`, :func:`advance_visit`,
:func:`advance_order`, :func:`take_stock`) are where concurrent submissions are decided."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from phr.errors import Conflict
from phr.homecare.models import Enrolment, Order, Request, Step, Stock, Visit

__all__ = [
    "active_enrolment",
    "advance_order",
    "advance_request",
    "advance_visit",
    "board",
    "board_version",
    "enrolment_for_org",
    "figures_rows",
    "orders",
    "request_for_org",
    "requests_of_resident",
    "steps",
    "stock",
    "take_stock",
    "visit_of_request",
]


def active_enrolment(session: Session, resident_id: str) -> Enrolment | None:
    return session.scalars(
        select(Enrolment)
        .where(Enrolment.resident_id == resident_id, Enrolment.active.is_(True))
        .order_by(Enrolment.enrolled_at.desc())
    ).first()


def _member(org: str) -> Any:
    return or_(
        Enrolment.station_id == org, Enrolment.clinic_id == org, Enrolment.pharmacy_id == org
    )


def enrolment_for_org(session: Session, enrolment_id: str, org: str) -> Enrolment | None:
    return session.scalars(
        select(Enrolment).where(Enrolment.id == enrolment_id, _member(org))
    ).first()


def enrolments_for_org(session: Session, org: str) -> list[Enrolment]:
    return list(
        session.scalars(
            select(Enrolment)
            .where(Enrolment.active.is_(True), _member(org))
            .order_by(Enrolment.enrolled_at)
        )
    )


def request_for_org(session: Session, request_id: str, org: str) -> Request | None:
    """The request, if ``org`` is in the care team of its enrolment."""
    return session.scalars(
        select(Request)
        .join(Enrolment, Enrolment.id == Request.enrolment_id)
        .where(Request.id == request_id, _member(org))
    ).first()


def requests_for_org(
    session: Session, org: str, statuses: Sequence[str], limit: int = 100
) -> list[Request]:
    return list(
        session.scalars(
            select(Request)
            .join(Enrolment, Enrolment.id == Request.enrolment_id)
            .where(_member(org), Request.status.in_(list(statuses)))
            .order_by(Request.created_at)
            .limit(limit)
        )
    )


def requests_of_resident(session: Session, resident_id: str, limit: int = 20) -> list[Request]:
    return list(
        session.scalars(
            select(Request)
            .where(Request.resident_id == resident_id)
            .order_by(Request.created_at.desc())
            .limit(limit)
        )
    )


def board(session: Session, station_id: str, statuses: Sequence[str]) -> list[Request]:
    return list(
        session.scalars(
            select(Request)
            .where(Request.station_id == station_id, Request.status.in_(list(statuses)))
            .order_by(Request.created_at)
        )
    )


def board_version(session: Session, station_id: str) -> str:
    """Changes whenever a request of the station changes (the board's SSE poll)."""
    n, last = session.execute(
        select(func.count(), func.max(Request.updated_at)).where(Request.station_id == station_id)
    ).one()
    return f"{n}:{last.isoformat() if last else ''}"


def visit_of_request(session: Session, request_id: str) -> Visit | None:
    return session.scalars(select(Visit).where(Visit.request_id == request_id)).first()


def stock(session: Session, enrolment_id: str) -> list[Stock]:
    return list(
        session.scalars(
            select(Stock)
            .where(Stock.enrolment_id == enrolment_id)
            .order_by(Stock.drug_name, Stock.expiry)
        )
    )


def orders(session: Session, visit_id: str) -> list[Order]:
    return list(
        session.scalars(
            select(Order).where(Order.visit_id == visit_id).order_by(Order.prescribed_at, Order.id)
        )
    )


def pending_quantity(session: Session, stock_id: str) -> int:
    """Prescribed or guided but not yet given (reserved from the lot)."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Order.quantity), 0)).where(
                Order.stock_id == stock_id, Order.status.in_(("prescribed", "guided"))
            )
        )
        or 0
    )


def steps(session: Session, request_id: str) -> list[Step]:
    return list(
        session.scalars(select(Step).where(Step.request_id == request_id).order_by(Step.pk))
    )


def begin_write(session: Session) -> None:
    """On SQLite, end what the request has done so far and take the database's write lock
    now, with a write that changes nothing: a step reads, then writes (and every read
    through the choke point writes the access log), and SQLite refuses at once — without
    waiting — a deferred transaction that read and then writes after another connection
    committed in between (SQLITE_BUSY_SNAPSHOT). Taken first, the lock is waited for
    (busy_timeout) and the step runs as one serial unit. PostgreSQL needs none of this."""
    if session.get_bind().dialect.name != "sqlite":
        return
    session.commit()
    session.execute(update(Request).where(false()).values(status=Request.status))


def _cas(session: Session, stmt: Any, what: str) -> None:
    """Run a compare-and-set UPDATE; nothing updated means another submission won.

    On SQLite a writer waiting for another's lock may be refused outright (busy); that
    too means the other one is writing this very row, and is the same refusal."""
    try:
        result = session.execute(stmt)
    except OperationalError as exc:
        if "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower():
            raise Conflict(f"{what}: another submission is being recorded; reload") from exc
        raise
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"{what}: already done by another submission; reload")


def advance(
    session: Session,
    row: type[Request | Visit | Order],
    row_id: str,
    expected: str,
    target: str,
    **values: Any,
) -> None:
    """Move a request (``status``), a visit (``step``) or an order line (``status``) from
    ``expected`` to ``target`` — only if it is still ``expected`` in the database."""
    column = row.step if row is Visit else row.status  # type: ignore[union-attr]
    field = "step" if row is Visit else "status"
    _cas(
        session,
        update(row)
        .where(row.id == row_id, column == expected)
        .values({field: target, **values})
        .execution_options(synchronize_session="fetch"),
        f"{row.__tablename__.removeprefix('homecare_')} {expected} -> {target}",
    )


def advance_request(
    session: Session, request_id: str, expected: str, target: str, **values: Any
) -> None:
    advance(session, Request, request_id, expected, target, **values)


def advance_visit(
    session: Session, visit_id: str, expected: str, target: str, **values: Any
) -> None:
    advance(session, Visit, visit_id, expected, target, **values)


def advance_order(
    session: Session, order_id: str, expected: str, target: str, **values: Any
) -> None:
    advance(session, Order, order_id, expected, target, **values)


def take_stock(session: Session, stock_id: str, quantity: int) -> None:
    """Stock down by ``quantity``, never below zero (the CHECK constraint agrees)."""
    _cas(
        session,
        update(Stock)
        .where(Stock.id == stock_id, Stock.quantity >= quantity)
        .values(quantity=Stock.quantity - quantity)
        .execution_options(synchronize_session="fetch"),
        "deposited stock",
    )


def figures_rows(
    session: Session, station_id: str | None, since: datetime | None = None
) -> list[tuple[str, datetime, datetime | None, str, str | None]]:
    """(station, created, arrived, status, outcome) of every request (no personal data)."""
    stmt = select(
        Request.station_id, Request.created_at, Request.arrived_at, Request.status, Request.outcome
    )
    if station_id:
        stmt = stmt.where(Request.station_id == station_id)
    if since:
        stmt = stmt.where(Request.created_at >= since)
    return [tuple(r) for r in session.execute(stmt.order_by(Request.created_at))]  # type: ignore[misc]


def expired(s: Stock, today: date) -> bool:
    return s.expiry < today
