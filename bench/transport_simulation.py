"""Mass-casualty transport: the optimised assignment against a nearest-capable greedy.

Scenarios of 10 to 60 simultaneous patients across 8 to 15 hospitals around Tsukuba (the
demo registry's synthetic hospitals, plus generated ones for more than 12). Each scenario
has today's availability: free beds per hospital and capabilities temporarily out of
service (a CT down, the catheter lab busy). Patients come from one to three incident sites
and a few scattered calls, in random call order, with an FDMA-scale urgency and the
capabilities they need.

- greedy: in call order, the nearest hospital whose *registry entry* lists the needed
  capabilities and still has a bed; if none has a bed, the nearest listing them anyway;
  if none lists them, the nearest hospital (what a dispatcher with a static list does);
- greedy-now: the same greedy with today's availability (isolates what the optimisation
  adds beyond up-to-date availability);
- optimised: :func:`phr.triage.transport.assign` (urgency-weighted travel time,
  capacity and current capability, ``scipy.optimize.linear_sum_assignment``).

Printed per scenario: urgency-weighted travel minutes, patients sent where they cannot be
treated now (mismatches), hospitals over capacity, patients left unassigned, and the time
of one optimised assignment. A scenario is "crowded" when patients fill at least 70% of
the free beds. The travel model is the one of ``phr/triage/transport.py`` (haversine x 1.4
road factor at 40 km/h). Benchmarks print; they do not assert.

    python bench/transport_simulation.py [--seed 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phr.triage.demo import HOSPITALS
from phr.triage.schemas import CAPABILITIES
from phr.triage.transport import (
    Hospital,
    Patient,
    assign,
    greedy_nearest,
    measure,
)

# (name, patients, hospitals, incident sites, beds per hospital range)
SCENARIOS: tuple[tuple[str, int, int, int, tuple[int, int]], ...] = (
    ("small, roomy", 10, 8, 1, (3, 6)),
    ("medium, roomy", 20, 12, 1, (3, 6)),
    ("bus crash", 24, 10, 1, (2, 4)),
    ("two sites", 30, 12, 2, (2, 4)),
    ("chemical plant", 40, 12, 1, (3, 5)),
    ("earthquake", 50, 15, 3, (3, 5)),
    ("stadium crush", 60, 15, 1, (4, 6)),
    ("flood, 3 sites", 60, 14, 3, (4, 6)),
)
URGENCY_MIX = (("red", 0.2), ("orange", 0.25), ("yellow", 0.3), ("green", 0.25))
NEEDS = {
    "red": (
        ((), 0.25),
        (("trauma",), 0.3),
        (("stroke", "ct"), 0.15),
        (("cath_lab",), 0.15),
        (("burns",), 0.1),
        (("paediatrics",), 0.05),
    ),
    "orange": (
        ((), 0.4),
        (("trauma",), 0.25),
        (("ct",), 0.2),
        (("paediatrics",), 0.1),
        (("obstetrics",), 0.05),
    ),
    "yellow": (((), 0.6), (("ct",), 0.25), (("paediatrics",), 0.1), (("dialysis",), 0.05)),
    "green": (((), 0.85), (("ct",), 0.1), (("psychiatry",), 0.05)),
}
CENTRE = (36.083, 140.110)  # Tsukuba Centre (approximate)
OUT_OF_SERVICE = 0.15  # chance that a listed capability is unavailable right now


def _pick(rng: random.Random, options: tuple[tuple[object, float], ...]) -> object:
    r, acc = rng.random(), 0.0
    for value, p in options:
        acc += p
        if r < acc:
            return value
    return options[-1][0]


def make_hospitals(rng: random.Random, n: int, beds: tuple[int, int]) -> list[Hospital]:
    base = list(HOSPITALS)
    out = []
    for i in range(n):
        if i < len(base):
            h = base[i]
            hid, name, lat, lon, caps, h24 = (
                h.id,
                h.name,
                h.lat,
                h.lon,
                h.capabilities,
                h.accepts_24h,
            )
        else:
            hid, name = f"generated-{i}", f"generated hospital {i}"
            lat = CENTRE[0] + rng.uniform(-0.15, 0.15)
            lon = CENTRE[1] + rng.uniform(-0.15, 0.15)
            caps = tuple(c for c in CAPABILITIES if rng.random() < 0.4) or ("ct",)
            h24 = rng.random() < 0.7
        down = frozenset(c for c in caps if rng.random() < OUT_OF_SERVICE)
        out.append(
            Hospital(hid, name, lat, lon, frozenset(caps), down, True, rng.randint(*beds), h24)
        )
    return out


def make_patients(rng: random.Random, n: int, sites: int) -> list[Patient]:
    centres = [
        (CENTRE[0] + rng.uniform(-0.08, 0.08), CENTRE[1] + rng.uniform(-0.08, 0.08))
        for _ in range(sites)
    ]
    patients = []
    for i in range(n):
        if rng.random() < 0.85:
            lat, lon = rng.choice(centres)
            lat, lon = lat + rng.gauss(0, 0.003), lon + rng.gauss(0, 0.003)
        else:  # the usual calls of the day go on
            lat = CENTRE[0] + rng.uniform(-0.12, 0.12)
            lon = CENTRE[1] + rng.uniform(-0.12, 0.12)
        urgency = str(_pick(rng, URGENCY_MIX))
        needs = _pick(rng, NEEDS[urgency])  # type: ignore[arg-type]
        patients.append(Patient(f"p{i + 1:02d}", lat, lon, urgency, frozenset(needs)))  # type: ignore[arg-type]
    rng.shuffle(patients)  # call order
    return patients


@dataclass
class Row:
    scenario: str
    patients: int
    hospitals: int
    beds: int
    crowded: bool
    greedy_weighted_min: float
    greedy_now_weighted_min: float
    optimised_weighted_min: float
    reduction_pct: float
    reduction_vs_now_pct: float
    greedy_mismatches: int
    optimised_mismatches: int
    greedy_over_capacity: int
    optimised_over_capacity: int
    optimised_unassigned: int
    assign_ms: float


def run(seed: int) -> list[Row]:
    rows = []
    for k, (name, n_pat, n_hosp, sites, beds) in enumerate(SCENARIOS):
        rng = random.Random(seed * 1000 + k)
        hospitals = make_hospitals(rng, n_hosp, beds)
        patients = make_patients(rng, n_pat, sites)
        greedy = measure(greedy_nearest(patients, hospitals), patients, hospitals)
        now = measure(greedy_nearest(patients, hospitals, current=True), patients, hospitals)
        t0 = time.perf_counter()
        plan = assign(patients, hospitals)
        ms = (time.perf_counter() - t0) * 1000
        opt = measure(plan, patients, hospitals)
        total_beds = sum(h.capacity for h in hospitals)
        rows.append(
            Row(
                name,
                n_pat,
                n_hosp,
                total_beds,
                n_pat >= 0.7 * total_beds,
                round(greedy.weighted_minutes, 1),
                round(now.weighted_minutes, 1),
                round(opt.weighted_minutes, 1),
                round(100 * (1 - opt.weighted_minutes / greedy.weighted_minutes), 1),
                round(100 * (1 - opt.weighted_minutes / now.weighted_minutes), 1),
                greedy.mismatches,
                opt.mismatches,
                greedy.over_capacity,
                opt.over_capacity,
                opt.unassigned,
                round(ms, 1),
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--seeds", type=int, default=20, help="seeds for the summary")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = run(args.seed)
    print(
        f"# Transport simulation (seed {args.seed}; weighted minutes = sum of urgency "
        "weight x travel minutes; red 10, orange 5, yellow 2, green 1)\n"
    )
    print(
        "| scenario | patients | hospitals | free beds | crowded | greedy wmin | greedy-now "
        "wmin | optimised wmin | less than greedy | less than greedy-now | mismatches g/o "
        "| over capacity g/o | unassigned | assign ms |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.scenario} | {r.patients} | {r.hospitals} | {r.beds} | "
            f"{'yes' if r.crowded else 'no'} | {r.greedy_weighted_min} | "
            f"{r.greedy_now_weighted_min} | {r.optimised_weighted_min} | "
            f"{r.reduction_pct}% | {r.reduction_vs_now_pct}% | {r.greedy_mismatches}/"
            f"{r.optimised_mismatches} | {r.greedy_over_capacity}/"
            f"{r.optimised_over_capacity} | {r.optimised_unassigned} | {r.assign_ms} |"
        )
    crowded = [r for r in rows if r.crowded]
    if crowded:
        print(
            f"\ncrowded scenarios: {len(crowded)}, weighted time reduction "
            f"{min(r.reduction_pct for r in crowded)}%-{max(r.reduction_pct for r in crowded)}%"
            f"; slowest assignment {max(r.assign_ms for r in rows)} ms"
        )
    many = [r for seed in range(1, args.seeds + 1) for r in run(seed)]
    crowded_all = [r for r in many if r.crowded]
    if crowded_all:
        red = sorted(r.reduction_pct for r in crowded_all)
        red_now = sorted(r.reduction_vs_now_pct for r in crowded_all)
        print(
            f"\nover seeds 1-{args.seeds} ({len(many)} scenarios, {len(crowded_all)} crowded): "
            f"reduction vs greedy on crowded median {red[len(red) // 2]}%, min {red[0]}%, "
            f"share >= 20% {sum(x >= 20 for x in red) / len(red):.0%}; vs greedy-now median "
            f"{red_now[len(red_now) // 2]}%, min {red_now[0]}%; optimised mismatches "
            f"{sum(r.optimised_mismatches for r in many)}, over capacity "
            f"{sum(r.optimised_over_capacity for r in many)}, unassigned "
            f"{sum(r.optimised_unassigned for r in many)}; greedy mismatches "
            f"{sum(r.greedy_mismatches for r in many)}, over capacity "
            f"{sum(r.greedy_over_capacity for r in many)}; slowest assignment "
            f"{max(r.assign_ms for r in many)} ms"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
