"""The FHIR gateway: where records come in (clinics, municipalities, insurers) and go out."""
