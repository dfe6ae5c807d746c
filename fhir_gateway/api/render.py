"""Building FHIR responses from stored JSON text without re-parsing it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import Response

from phr.settings import get_settings

FHIR_JSON = "application/fhir+json"


class FHIRResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode()
        return orjson.dumps(content)


def fhir_base(request: Request | None = None) -> str:
    return get_settings().base_url.rstrip("/") + "/fhir"


def raw(content: str) -> orjson.Fragment:
    return orjson.Fragment(content)


def bundle(
    *,
    btype: str,
    entries: Iterable[dict[str, Any]],
    total: int | None = None,
    links: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    from phr.store.indexer import iso_instant, utcnow

    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": btype,
        "meta": {"lastUpdated": iso_instant(utcnow())},
    }
    if total is not None:
        body["total"] = total
    if links:
        body["link"] = links
    body["entry"] = list(entries)
    if extra:
        body.update(extra)
    return orjson.dumps(body)


def entry(rtype: str, rid: str, content: str, mode: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"fullUrl": f"{fhir_base()}/{rtype}/{rid}", "resource": raw(content)}
    if mode:
        e["search"] = {"mode": mode}
    return e


def page_links(
    path: str,
    params: list[tuple[str, str]],
    offset: int,
    count: int,
    total: int | None,
    returned: int,
) -> list[dict[str, str]]:
    base = get_settings().base_url.rstrip("/") + path
    keep = [(k, v) for k, v in params if k not in ("_offset", "_count")]

    def url(off: int) -> str:
        return base + "?" + urlencode([*keep, ("_count", str(count)), ("_offset", str(off))])

    links = [{"relation": "self", "url": url(offset)}]
    if offset > 0:
        links.append({"relation": "first", "url": url(0)})
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    has_next = (offset + returned < total) if total is not None else returned == count
    if has_next and count > 0:
        links.append({"relation": "next", "url": url(offset + count)})
    if total is not None and count > 0 and total > 0:
        links.append({"relation": "last", "url": url(((total - 1) // count) * count)})
    return links
