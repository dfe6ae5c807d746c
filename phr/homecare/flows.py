"""The state machines of a request and of its visit, with enforced transitions.

Request::

    open ──assign──► assigned ──dispatch──► dispatched ──arrive──► visiting ──outcome──► closed
      │  (triage urgency red: the caller is told to call 119 at once)
      └──────────► referred

Visit steps (the visit's ``step`` is the last one done)::

    measurements ─► consultation ─┬─(home)─► prescription ─► guidance ─► administration ─► outcome
                                  │            (optional: no prescription → outcome)
                                  └─(transport: handed over to the emergency flow)──────► outcome

Each transition is checked here and, where two people could race (two tablets giving the
same medicine, two dispatchers), again in the database by a compare-and-set on the row's
state (``repository.advance``): the state is part of the UPDATE's WHERE clause, and a
transition that found nothing to update was lost to the other.
"""

from __future__ import annotations

from phr.errors import Conflict

__all__ = [
    "REQUEST_TRANSITIONS",
    "VISIT_STEPS",
    "check_request",
    "check_step",
]

OPEN = "open"
ASSIGNED = "assigned"
DISPATCHED = "dispatched"
VISITING = "visiting"
CLOSED = "closed"
REFERRED = "referred"
REQUEST_STATES = (OPEN, ASSIGNED, DISPATCHED, VISITING, CLOSED, REFERRED)
ACTIVE = frozenset({OPEN, ASSIGNED, DISPATCHED, VISITING})

REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({ASSIGNED, REFERRED}),
    ASSIGNED: frozenset({ASSIGNED, DISPATCHED}),  # re-assigning another nurse is allowed
    DISPATCHED: frozenset({VISITING}),
    VISITING: frozenset({CLOSED}),
    CLOSED: frozenset(),
    REFERRED: frozenset(),
}

MEASUREMENTS = "measurements"
CONSULTATION = "consultation"
PRESCRIPTION = "prescription"
GUIDANCE = "guidance"
ADMINISTRATION = "administration"
OUTCOME = "outcome"
ARRIVED = "arrived"  # the visit exists, nothing recorded yet
VISIT_STEPS = (ARRIVED, MEASUREMENTS, CONSULTATION, PRESCRIPTION, GUIDANCE, ADMINISTRATION, OUTCOME)

# What may follow the last step done. Measurements may be repeated (a second set of vital
# signs before the doctor connects); administration may follow itself (several lines).
VISIT_TRANSITIONS: dict[str, frozenset[str]] = {
    ARRIVED: frozenset({MEASUREMENTS}),
    MEASUREMENTS: frozenset({MEASUREMENTS, CONSULTATION}),
    CONSULTATION: frozenset({PRESCRIPTION, OUTCOME}),
    PRESCRIPTION: frozenset({GUIDANCE}),
    GUIDANCE: frozenset({ADMINISTRATION, OUTCOME}),
    ADMINISTRATION: frozenset({ADMINISTRATION, OUTCOME}),
    OUTCOME: frozenset(),
}

OUTCOMES = ("treated_at_home", "transported", "follow_up")
DECISIONS = ("home", "transport")

# Order lines: prescribed -> guided -> administered; not_given when the visit closes first.
PRESCRIBED = "prescribed"
GUIDED = "guided"
ADMINISTERED = "administered"
NOT_GIVEN = "not_given"


def check_request(current: str, target: str) -> None:
    if target not in REQUEST_TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a request that is {current} cannot become {target}")


def check_step(current: str, target: str) -> None:
    if target not in VISIT_TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"the visit's step {target} cannot follow {current}")
