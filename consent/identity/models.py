"""Tables of resident sign-in and the OpenID Connect provider (digital ID, つくパス)."""

from __future__ import annotations
