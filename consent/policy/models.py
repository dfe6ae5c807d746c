"""Tables of the consent engine (rules extracted from Consent resources)."""

from __future__ import annotations
