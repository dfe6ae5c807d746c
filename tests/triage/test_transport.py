"""The travel model, the ranking and the assignment, without the database."""

from __future__ import annotations

import random

import pytest

from phr.triage.transport import (
    Hospital,
    Patient,
    assign,
    greedy_nearest,
    haversine_km,
    measure,
    rank_hospitals,
    travel_minutes,
)

CAPS = ("ct", "mri", "cath_lab", "trauma", "burns", "paediatrics")


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert haversine_km(0, 0, 1, 0) == pytest.approx(111.19, abs=0.01)
    assert haversine_km(36.08, 140.11, 36.08, 140.11) == 0


def test_ten_km_straight_line_take_21_minutes() -> None:
    # 10 km x 1.4 road factor at 40 km/h.
    assert travel_minutes(10) == pytest.approx(21.0)


def test_stale_availability_is_flagged_in_the_ranking() -> None:
    p = Patient("p", 36.08, 140.11, "yellow", frozenset({"ct"}))
    fresh = Hospital(
        "a", "A", 36.09, 140.11, frozenset({"ct"}), capacity=2, reported_minutes_ago=30
    )
    stale = Hospital(
        "b", "B", 36.10, 140.11, frozenset({"ct"}), capacity=2, reported_minutes_ago=60 * 30
    )
    ranked = rank_hospitals(p, [stale, fresh])
    assert [h.id for h, *_ in ranked] == ["a", "b"]
    assert "call ahead" in ranked[1][3] and "call ahead" not in ranked[0][3]


def test_a_red_patient_goes_only_to_a_24_hour_hospital() -> None:
    p = Patient("p", 36.08, 140.11, "red")
    day = Hospital("day", "Day", 36.081, 140.11, frozenset(), capacity=5, accepts_24h=False)
    night = Hospital("night", "Night", 36.2, 140.11, frozenset(), capacity=5)
    assert [h.id for h, *_ in rank_hospitals(p, [day, night])] == ["night"]
    assert assign([p], [day, night]).assignments[0].hospital == "night"


@pytest.mark.parametrize("seed", range(25))
def test_the_assignment_never_breaks_capacity_or_capability(seed: int) -> None:
    rng = random.Random(seed)
    hospitals = [
        Hospital(
            f"h{i}",
            f"H{i}",
            36 + rng.random() / 5,
            140 + rng.random() / 5,
            frozenset(c for c in CAPS if rng.random() < 0.5),
            frozenset(c for c in CAPS if rng.random() < 0.1),
            rng.random() < 0.9,
            rng.randint(0, 4),
            rng.random() < 0.8,
        )
        for i in range(rng.randint(8, 15))
    ]
    patients = [
        Patient(
            f"p{i}",
            36 + rng.random() / 5,
            140 + rng.random() / 5,
            rng.choice(["red", "orange", "yellow", "green"]),
            frozenset(rng.sample(CAPS, rng.randint(0, 2))),
        )
        for i in range(rng.randint(10, 60))
    ]
    plan = assign(patients, hospitals)
    m = measure(plan, patients, hospitals)
    assert (m.mismatches, m.over_capacity) == (0, 0)
    assert len(plan.assignments) == len(patients)
    assert all(a.reason for a in plan.assignments)
    # Nobody waits while a bed that could take them is free.
    used: dict[str, int] = {}
    for a in plan.assignments:
        if a.hospital:
            used[a.hospital] = used.get(a.hospital, 0) + 1
    from phr.triage.transport import can_treat

    by_id = {p.id: p for p in patients}
    for a in plan.assignments:
        if a.hospital is None:
            assert not any(
                can_treat(h, by_id[a.patient]) and used.get(h.id, 0) < h.capacity for h in hospitals
            )
    # And it is never worse than the greedy on the same constraints when greedy keeps them.
    g = greedy_nearest(patients, hospitals, current=True)
    gm = measure(g, patients, hospitals)
    if (gm.mismatches, gm.over_capacity, m.unassigned) == (0, 0, 0):
        assert plan.weighted_minutes <= g.weighted_minutes + 1e-6
