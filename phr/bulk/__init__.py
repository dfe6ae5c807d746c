"""FHIR Bulk Data export (``$export``): kick-off, background jobs, status, NDJSON files."""
