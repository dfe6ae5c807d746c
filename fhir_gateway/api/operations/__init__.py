"""FHIR operations: one file per ``$operation``."""
