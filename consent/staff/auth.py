"""The staff session cookie and the FastAPI dependencies built on it.

The cookie ``phr_staff`` carries a random session token (the table keeps only its hash).
It is httpOnly, ``SameSite=Lax`` (not sent with cross-site POSTs, which is what protects
the cookie-authenticated admin API from cross-site request forgery) and ``Secure`` when the
deployment's base URL is https. It has no Max-Age: closing the browser ends it, and the
server ends it after 30 idle minutes or 12 hours in any case.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from consent.staff import service
from consent.staff.models import StaffUser
from phr.db import SessionDep
from phr.errors import Forbidden, NotAuthenticated
from phr.settings import get_settings

__all__ = [
    "COOKIE_NAME",
    "AdministratorDep",
    "StaffDep",
    "clear_session_cookie",
    "current_staff",
    "require_administrator",
    "require_staff",
    "session_token",
    "set_session_cookie",
]

COOKIE_NAME = "phr_staff"
_COOKIE_CHALLENGE = {"WWW-Authenticate": 'Cookie realm="phr-staff"'}


def _secure() -> bool:
    return get_settings().base_url.lower().startswith("https://")


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE_NAME, token, httponly=True, secure=_secure(), samesite="lax", path="/"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, httponly=True, secure=_secure(), samesite="lax", path="/")


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE_NAME) or None


def current_staff(request: Request, session: Session) -> StaffUser | None:
    """The staff member signed in on this browser, or None.

    Also leaves ``request.state.staff`` and ``request.state.staff_signed_in_at`` (when
    this browser signed in, naive UTC) for later steps of the request.
    """
    found = service.staff_session(session, session_token(request))
    if found is None:
        return None
    user, row = found
    request.state.staff = user
    request.state.staff_signed_in_at = row.created_at
    return user


def require_staff(request: Request, session: SessionDep) -> StaffUser:
    """Dependency: the signed-in staff member (401 when there is none)."""
    user = current_staff(request, session)
    if user is None:
        raise NotAuthenticated("staff sign-in required", headers=_COOKIE_CHALLENGE)
    return user


def require_administrator(user: Annotated[StaffUser, Depends(require_staff)]) -> StaffUser:
    """Dependency: a signed-in administrator (of any organisation; routes narrow it)."""
    if user.role != "administrator":
        raise Forbidden("administrators only")
    return user


StaffDep = Annotated[StaffUser, Depends(require_staff)]
AdministratorDep = Annotated[StaffUser, Depends(require_administrator)]
