"""The shelter module's manifest: the object its ``phr.modules`` entry point names."""

from __future__ import annotations

from fastapi import APIRouter

from phr.modules import PhrModule
from phr_modules.shelter import NAME, PURPOSE, RESOURCE_TYPES, endpoints, pages

__all__ = ["MODULE"]

router = APIRouter()
router.include_router(endpoints.router)
router.include_router(pages.router)

MODULE = PhrModule(
    name=NAME,
    title="避難所での医療の継続 Shelter: continuing care",
    description=(
        "避難所の職員が避難者を本人確認し、継続すべき薬・アレルギー・病名を見る。支援が必要な"
        "避難者の一覧。Shelter staff identify an evacuee and see the medicines to continue, "
        "allergies and problems; the list of evacuees who need support."
    ),
    purposes=frozenset({PURPOSE}),
    resource_types=RESOURCE_TYPES,
    router=router,
    operator="tsukuba-city",
    version="1.0",
)
