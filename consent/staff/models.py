"""Tables of organisations' staff accounts and roles."""

from __future__ import annotations
