"""The incident's state machine.

    open ──(a candidate confirmed)──► identified ──(status report)──► reported
      │                                  │                               │ (more reports)
      └──────────────────────────────────┴───────────(close)─────────────┴──► closed

Identification methods (face, card, demographic search) only add candidates; only the
confirmation step moves ``open`` to ``identified``, and only an identified incident
unlocks the emergency summary (and opens the emergency episode the consent engine
requires for the emergency pre-consent to apply).
"""

from __future__ import annotations

from phr.errors import Conflict

OPEN = "open"
IDENTIFIED = "identified"
REPORTED = "reported"
CLOSED = "closed"

TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({IDENTIFIED, CLOSED}),
    IDENTIFIED: frozenset({REPORTED, CLOSED}),
    REPORTED: frozenset({REPORTED, CLOSED}),
    CLOSED: frozenset(),
}
UNLOCKED = frozenset({IDENTIFIED, REPORTED})


def check(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"an incident that is {current} cannot become {target}")


def require(current: str, allowed: frozenset[str], what: str) -> None:
    if current not in allowed:
        raise Conflict(f"{what} is not possible while the incident is {current}")
