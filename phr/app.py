"""The web application: FHIR API, OAuth2, the resident web app (``phr.web``) at ``/``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from phr import __version__
from phr.errors import PHRError
from phr.settings import get_settings

log = logging.getLogger("phr")


def _is_fhir(request: Request) -> bool:
    return request.url.path.startswith("/fhir")


def _is_page(request: Request) -> bool:
    """A browser asking for a page (not an API or FHIR client): errors as an HTML page."""
    path = request.url.path
    if path.startswith(("/fhir", "/api/", "/oauth")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _render(request: Request, exc: PHRError) -> Response:
    if _is_fhir(request):
        return JSONResponse(
            exc.operation_outcome(),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type="application/fhir+json",
        )
    return JSONResponse(exc.json_body(), status_code=exc.status_code, headers=exc.headers)


def create_app() -> FastAPI:
    settings = get_settings()
    settings.check_production()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from consent.audit_chainer import AuditChainer
        from phr.bulk.worker import WORKER

        # Everything loaded by now (FHIR models, routes, templates) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise scan it all
        # and stall a request for a few hundred ms every so often (bench/web_pages.py).
        gc.collect()
        gc.freeze()
        chainer = AuditChainer(settings.audit_chain_interval)
        chainer.start()
        WORKER.start_up()
        try:
            yield
        finally:
            WORKER.stop()
            chainer.stop()

    app = FastAPI(
        title="Tsukuba PHR",
        version=__version__,
        description="Lifelong personal health record: FHIR gateway, PHR and trust service.",
        lifespan=lifespan,
    )

    from phr.security.middleware import SecurityMiddleware

    app.add_middleware(SecurityMiddleware)

    @app.exception_handler(PHRError)
    async def phr_error(request: Request, exc: PHRError) -> Response:
        return _render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        from phr.errors import InvalidInput, issue

        issues = [
            issue(str(e.get("msg")), expression=".".join(str(x) for x in e.get("loc", ())))
            for e in exc.errors()[:20]
        ]
        return _render(request, InvalidInput("invalid request", issues=issues))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        from phr.errors import PHRError as Base

        err = Base(str(exc.detail))
        err.status_code = exc.status_code
        err.code = "not-found" if exc.status_code == 404 else "exception"
        err.error = "not_found" if exc.status_code == 404 else "http_error"
        return _render(request, err)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def db_error(request: Request, exc: SQLAlchemyError) -> Response:
        from phr.db import database_fault

        fault = database_fault(exc)
        if fault is None:
            log.exception("database error")
            fault = PHRError("internal error")
            fault.status_code, fault.code, fault.error = 500, "exception", "internal_error"
        else:  # the error type only: the message may quote a statement's parameters
            orig = getattr(exc, "orig", None) or exc
            state = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", "")
            log.warning("database fault (%s): %s %s", fault.status_code, type(orig).__name__, state)
        if _is_page(request):
            from phr.web.render import error_page

            page = error_page(request, f"error.{fault.error}", status=fault.status_code)
            page.headers.update(fault.headers)
            return page
        return _render(request, fault)

    from consent.identity import oauth
    from fhir_gateway.api import endpoints
    from fhir_gateway.api.operations import everything

    app.include_router(oauth.router)
    for op in _operation_routers():
        app.include_router(op)
    app.include_router(everything.router)
    app.include_router(endpoints.router)
    from phr.modules.registry import mount_modules

    mount_modules(app)

    from phr.openapi import install as install_openapi

    install_openapi(app)

    @app.get("/health", tags=["platform"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


# Routers mounted before the generic FHIR routes, so that their fixed paths win.
ROUTERS = (
    "consent.identity.oidc",
    "consent.staff.endpoints",
    "consent.pia.endpoints",
    "consent.audit_endpoints",
    "consent.policy.endpoints",
    "fhir_gateway.api.operations.summary",
    "phr.triage.endpoints",
    "phr.biometrics.endpoints",
    "phr.web.endpoints",
    "phr.acp.endpoints",
    "phr.emergency.endpoints",
    "phr.polypharmacy.endpoints",
    "phr.acp.pages",
    "phr.acp.trusted_pages",
    "phr.emergency.pages",
    "phr.triage.pages",
    "phr.homecare.endpoints",
    "phr.homecare.pages",
    "phr.modules.endpoints",
    "phr.bulk.endpoints",
    "phr.analytics.endpoints",
    "phr.research.endpoints",
)


def _operation_routers() -> list[APIRouter]:
    import importlib

    out = []
    for name in ROUTERS:
        module = importlib.import_module(name)
        out.append(module.router)
    return out
