"""The module registry for administrators (staff session cookie, role administrator).

GET /api/modules      installed modules, their purposes, data categories, PIA status
GET /admin/modules    the same as an HTML page
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from consent.pia.endpoints import Admin
from phr.db import SessionDep
from phr.modules import service
from phr.modules.schemas import ModuleRead

__all__ = ["router"]

router = APIRouter(tags=["modules"])


@router.get("/api/modules", response_model=list[ModuleRead])
def list_modules(request: Request, session: SessionDep, _: Admin) -> list[ModuleRead]:
    return service.describe(session, getattr(request.app.state, "phr_modules", {}))


@router.get("/admin/modules", response_class=HTMLResponse)
def modules_page(request: Request, session: SessionDep, _: Admin) -> str:
    rows = service.describe(session, getattr(request.app.state, "phr_modules", {}))
    body = "".join(_row(m) for m in rows)
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8><title>Modules</title>"
        "<h1>モジュール登録簿 Module registry</h1>"
        "<table border=1><tr><th>Module</th><th>Operator</th><th>Purposes</th>"
        "<th>Data (resource types)</th><th>PIA</th></tr>"
        f"{body or '<tr><td colspan=5>No module installed.</td></tr>'}</table></html>"
    )


def _row(m: ModuleRead) -> str:
    gaps = ", ".join(m.undeclared_in_pia)
    return (
        "<tr>"
        f"<td><code>{escape(m.name)}</code><br>{escape(m.title)}</td>"
        f"<td>{escape(m.operator)}</td>"
        f"<td>{escape(', '.join(m.purposes))}</td>"
        f"<td>{escape(', '.join(m.resource_types))}</td>"
        f"<td>{escape(m.pia_status)}{'' if m.pia_in_force else ' — <b>not in force</b>'}"
        f"{'<br>not in the PIA: ' + escape(gaps) if gaps else ''}"
        "</td></tr>"
    )
