"""Polypharmacy checks (多剤処方): one reconciled medicine list across clinics and
pharmacies, and the findings that matter (see docs/polypharmacy.md)."""
