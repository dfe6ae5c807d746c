"""Tables of the privacy impact assessment register (つくばPIA)."""

from __future__ import annotations
