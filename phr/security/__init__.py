"""Defences shared by every route: security headers, request-size and JSON-depth limits
(:mod:`phr.security.middleware`), and the DB-backed limiter of failed sign-ins and
lookups (:mod:`phr.security.limiter`). See ``docs/security.md``."""
