"""The analytics tests' small city, reused for research extracts."""

from tests.analytics.conftest import city  # noqa: F401
from tests.consent.pia.conftest import orgs  # noqa: F401
from tests.consent.pia.test_api import cookie  # noqa: F401
