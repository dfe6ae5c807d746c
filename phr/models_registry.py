"""Imports every package's tables so that Alembic and the tests see one MetaData."""

from __future__ import annotations

import consent.identity.models
import consent.models
import consent.pia.models
import consent.policy.models
import consent.staff.models  # noqa: F401
import fhir_gateway.models  # noqa: F401
import phr.acp.models
import phr.biometrics.models
import phr.bulk.models
import phr.emergency.models
import phr.homecare.models
import phr.polypharmacy.models
import phr.security.models
import phr.store.models
import phr.triage.models  # noqa: F401
import phr_modules.shelter.models  # noqa: F401
from phr.db import Base

metadata = Base.metadata
