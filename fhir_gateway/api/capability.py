"""A truthful CapabilityStatement, generated from what the server really supports."""

from __future__ import annotations

from typing import Any

from phr import __version__
from phr.settings import get_settings
from phr.store.params import DEFINITIONS, params_for

SEARCH_TYPE_URL = "http://hl7.org/fhir/ValueSet/search-param-type"
COMMON_SEARCH = [
    {"name": "_id", "type": "token"},
    {"name": "_lastUpdated", "type": "date"},
    {"name": "_count", "type": "number"},
    {"name": "_offset", "type": "number"},
    {"name": "_sort", "type": "string"},
    {"name": "_include", "type": "string"},
    {"name": "_revinclude", "type": "string"},
    {"name": "_total", "type": "token"},
    {"name": "_summary", "type": "token", "documentation": "only _summary=count"},
]


# FHIR Bulk Data Access IG (phr/bulk): $export at system, Patient and Group level.
BULK = "http://hl7.org/fhir/uv/bulkdata"


def capability_statement() -> dict[str, Any]:
    s = get_settings()
    base = s.base_url.rstrip("/")
    resources = []
    for rtype in sorted(DEFINITIONS):
        params = [{"name": p.name, "type": p.kind} for p in params_for(rtype).values()]
        entry: dict[str, Any] = {
            "type": rtype,
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "interaction": [
                {"code": c}
                for c in (
                    "read",
                    "vread",
                    "update",
                    "delete",
                    "history-instance",
                    "history-type",
                    "create",
                    "search-type",
                )
            ],
            "searchParam": COMMON_SEARCH + params,
            "searchInclude": [
                f"{rtype}:{p.name}" for p in params_for(rtype).values() if p.kind == "reference"
            ],
        }
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "summary",
                    "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary",
                },
                {"name": "export", "definition": f"{BULK}/OperationDefinition/patient-export"},
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "publisher": "Tsukuba PHR project",
        "kind": "instance",
        "instantiates": [f"{BULK}/CapabilityStatement/bulk-data"],
        "software": {"name": "tsukuba-phr", "version": __version__},
        "implementation": {
            "description": "Tsukuba lifelong PHR FHIR gateway",
            "url": f"{base}/fhir",
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth2 client credentials (SMART Backend Services style) with "
                    "SMART v2 scopes; every read is filtered by the resident's "
                    "consent and recorded in the access log.",
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": f"{base}/oauth/token"}],
                        }
                    ],
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {"name": "export", "definition": f"{BULK}/OperationDefinition/export"}
                ],
            }
        ],
    }
