"""Where to take patients: travel-time model, hospital ranking for one patient, and the
assignment of many patients at once (mass-casualty incident, 同時多発的な搬送要請).

Travel model (stated, not measured): great-circle (haversine) distance × a road factor of
1.4, driven at 40 km/h.
- The road factor: Boscoe FP, Henry KA, Zdeb MS (A nationwide comparison of driving
  distance versus straight-line distance to hospitals. Prof Geogr 2012;64(2))
  found road and straight-line distances to hospitals very highly correlated (r² > 0.9),
  which is what makes a constant factor reasonable; the value 1.4 is a commonly used
  circuity ratio and an assumption here, not a figure taken from that paper.
- 40 km/h is an assumption for an ambulance on Tsukuba's mixed urban and suburban roads,
  not a measured figure; replace it with a road-network router when one is available.

Urgency weights (red 10, orange 5, yellow 2, green 1, white 1) express that a minute
matters more for a more urgent patient; they are a planning choice, not a clinical source.

The assignment minimises the sum of urgency-weighted travel minutes subject to capacity
(each hospital's free beds are expanded into slots) and capability (a hospital must have
every capability the patient needs, available now, and be accepting), with
``scipy.optimize.linear_sum_assignment``. Each patient also has a "no hospital" column whose
cost is far above any journey, weighted by urgency, so that when slots run short the least
urgent patients are the ones left for a second wave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "ROAD_FACTOR",
    "SPEED_KMH",
    "URGENCY_WEIGHT",
    "Hospital",
    "Patient",
    "Plan",
    "assign",
    "greedy_nearest",
    "haversine_km",
    "measure",
    "rank_hospitals",
    "travel_minutes",
]

ROAD_FACTOR = 1.4
SPEED_KMH = 40.0
URGENCY_WEIGHT = {"red": 10.0, "orange": 5.0, "yellow": 2.0, "green": 1.0, "white": 1.0}
EARTH_RADIUS_KM = 6371.0088
_UNSERVED_MINUTES = 10_000.0  # the cost of leaving a patient without a hospital, per weight
_INFEASIBLE = 1e12


@dataclass(frozen=True)
class Hospital:
    id: str
    name: str
    lat: float
    lon: float
    capabilities: frozenset[str]
    unavailable: frozenset[str] = frozenset()
    accepting: bool = True
    capacity: int = 0
    accepts_24h: bool = True
    reported_minutes_ago: float | None = None  # when the availability was last reported

    @property
    def available(self) -> frozenset[str]:
        return self.capabilities - self.unavailable


# Availability reported longer ago than this is flagged in the ranking's reasons.
STALE_AFTER_MINUTES = 12 * 60


@dataclass(frozen=True)
class Patient:
    id: str
    lat: float
    lon: float
    urgency: str
    needs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Assigned:
    patient: str
    hospital: str | None
    minutes: float | None
    reason: str


@dataclass
class Plan:
    assignments: list[Assigned] = field(default_factory=list)
    weighted_minutes: float = 0.0
    unassigned: int = 0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def travel_minutes(km: float) -> float:
    return km * ROAD_FACTOR / SPEED_KMH * 60.0


def can_treat(h: Hospital, p: Patient) -> bool:
    """Now: accepting, every need available, and a 24-hour hospital for red patients."""
    if not h.accepting or not p.needs <= h.available:
        return False
    return h.accepts_24h or p.urgency != "red"


def _why_not(h: Hospital, p: Patient) -> str:
    if not h.accepting:
        return "not accepting"
    missing = p.needs - h.available
    if missing:
        return "cannot provide " + ", ".join(sorted(missing)) + " now"
    return "not a 24-hour emergency hospital"


def rank_hospitals(
    p: Patient, hospitals: Sequence[Hospital]
) -> list[tuple[Hospital, float, float, str]]:
    """Hospitals that can treat the patient now and have a free bed, fastest first."""
    out = []
    for h in hospitals:
        if not can_treat(h, p) or h.capacity <= 0:
            continue
        km = haversine_km(p.lat, p.lon, h.lat, h.lon)
        minutes = travel_minutes(km)
        needs = ", ".join(sorted(p.needs)) or "no special equipment"
        reason = (
            f"{minutes:.1f} min ({km:.1f} km straight line); provides {needs}; "
            f"{h.capacity} free bed(s){'; 24-hour' if h.accepts_24h else ''}"
        )
        ago = h.reported_minutes_ago
        if ago is not None and ago > STALE_AFTER_MINUTES:
            reason += f"; availability last reported {ago / 60:.0f} h ago: call ahead"
        out.append((h, minutes, km, reason))
    out.sort(key=lambda t: (t[1], t[0].id))
    return out


def assign(patients: Sequence[Patient], hospitals: Sequence[Hospital]) -> Plan:
    """Urgency-weighted minimum-travel assignment respecting capacity and capability."""
    slots: list[int] = []  # hospital index per slot
    for j, h in enumerate(hospitals):
        if h.accepting:
            slots += [j] * max(h.capacity, 0)
    n, m = len(patients), len(slots)
    minutes = np.array(
        [
            [travel_minutes(haversine_km(p.lat, p.lon, h.lat, h.lon)) for h in hospitals]
            for p in patients
        ]
    ).reshape(n, len(hospitals))
    weights = np.array([URGENCY_WEIGHT[p.urgency] for p in patients])
    feasible = np.array([[can_treat(h, p) for h in hospitals] for p in patients]).reshape(
        n, len(hospitals)
    )
    cost = np.full((n, m + n), _INFEASIBLE)
    if m:
        slot_h = np.array(slots)
        cost[:, :m] = np.where(
            feasible[:, slot_h], weights[:, None] * minutes[:, slot_h], _INFEASIBLE
        )
    cost[np.arange(n), m + np.arange(n)] = weights * _UNSERVED_MINUTES
    rows, cols = linear_sum_assignment(cost)
    chosen: dict[int, int | None] = {
        int(r): (slots[int(c)] if c < m else None) for r, c in zip(rows, cols, strict=True)
    }
    plan = Plan()
    for i, p in enumerate(patients):
        chosen_j = chosen.get(i)
        if chosen_j is None:
            plan.unassigned += 1
            capable = [h for h in hospitals if can_treat(h, p)]
            why = (
                "no hospital can provide " + (", ".join(sorted(p.needs)) or "care") + " now"
                if not capable
                else "every capable hospital's free beds went to more urgent patients"
            )
            plan.assignments.append(Assigned(p.id, None, None, f"not assigned: {why}"))
            continue
        j = chosen_j
        h = hospitals[j]
        mins = float(minutes[i, j])
        plan.weighted_minutes += float(weights[i]) * mins
        nearest = min(
            (k for k in range(len(hospitals)) if feasible[i, k] and hospitals[k].capacity > 0),
            key=lambda k: minutes[i, k],
        )
        needs = ", ".join(sorted(p.needs)) or "no special equipment"
        if nearest == j:
            reason = f"nearest hospital that provides {needs} now and has a free bed"
        else:
            taken = [patients[k].id for k, jj in chosen.items() if jj == nearest and k != i]
            reason = (
                f"{mins - float(minutes[i, nearest]):.1f} min farther than "
                f"{hospitals[nearest].name}, whose free beds went to "
                f"{', '.join(taken[:5])}{'…' if len(taken) > 5 else ''} "
                "(lower total urgency-weighted travel time)"
            )
        plan.assignments.append(Assigned(p.id, h.id, mins, f"{h.name}, {mins:.1f} min: {reason}"))
    return plan


def greedy_nearest(
    patients: Sequence[Patient], hospitals: Sequence[Hospital], *, current: bool = False
) -> Plan:
    """The baseline: in call order, the nearest hospital listing the needed capabilities
    (the static registry, or with ``current`` today's availability) with a bed left; when
    none has one, the nearest listing them anyway; when none lists them, the nearest."""
    load = {h.id: 0 for h in hospitals}
    plan = Plan()
    for p in patients:
        by_time = sorted(hospitals, key=lambda h: (haversine_km(p.lat, p.lon, h.lat, h.lon), h.id))
        listed = [h for h in by_time if (can_treat(h, p) if current else p.needs <= h.capabilities)]
        free = [h for h in listed if load[h.id] < h.capacity and h.accepting]
        h = (free or listed or by_time)[0]
        load[h.id] += 1
        mins = travel_minutes(haversine_km(p.lat, p.lon, h.lat, h.lon))
        plan.weighted_minutes += URGENCY_WEIGHT[p.urgency] * mins
        plan.assignments.append(Assigned(p.id, h.id, mins, "nearest listed hospital"))
    return plan


@dataclass(frozen=True)
class Measures:
    weighted_minutes: float
    mismatches: int  # patients sent where their needs cannot be met now
    over_capacity: int  # hospitals given more patients than free beds
    unassigned: int


def measure(plan: Plan, patients: Sequence[Patient], hospitals: Sequence[Hospital]) -> Measures:
    by_id = {h.id: h for h in hospitals}
    pats = {p.id: p for p in patients}
    load: dict[str, int] = {}
    mismatches = 0
    for a in plan.assignments:
        if a.hospital is None:
            continue
        load[a.hospital] = load.get(a.hospital, 0) + 1
        if not can_treat(by_id[a.hospital], pats[a.patient]):
            mismatches += 1
    over = sum(1 for hid, n in load.items() if n > max(by_id[hid].capacity, 0))
    return Measures(plan.weighted_minutes, mismatches, over, plan.unassigned)
