"""Fixtures shared with other test packages."""

from tests.consent.audit.conftest import resident_token  # noqa: F401 (a real resident token)
