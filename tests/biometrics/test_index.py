"""The in-memory index is exact: it returns what scoring every template would return."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from phr.biometrics.index import Narrowing, TemplateIndex, TemplateRow

DIM = 128


def gallery(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        v = rng.standard_normal((n, DIM))
    else:
        # Like face descriptors: a strong common direction, people spread around it
        # (impostor cosines around 0.85, as measured on ORL).
        common = rng.standard_normal(DIM)
        common /= np.linalg.norm(common)
        v = 2.4 * common + rng.standard_normal((n, DIM)) * np.linspace(0.5, 0.05, DIM)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def brute_force(
    vectors: np.ndarray, alive: np.ndarray, ok: np.ndarray, probe: np.ndarray, t: float
) -> dict[str, float]:
    scores = vectors @ probe
    return {f"r{i}": float(scores[i]) for i in np.flatnonzero(alive & ok & (scores >= t))}


@pytest.mark.parametrize("kind", ["random", "face-like"])
def test_pruned_search_finds_exactly_what_scoring_every_row_finds(kind: str) -> None:
    rng = np.random.default_rng(11)
    n = 3000
    vectors = gallery(kind, n, rng)
    sexes = rng.choice(["male", "female"], n)
    births = rng.integers(date(1930, 1, 1).toordinal(), date(2020, 1, 1).toordinal(), n)
    index = TemplateIndex(DIM)
    index.replace_all(
        (
            TemplateRow(
                f"t{i}", f"r{i}", vectors[i], str(sexes[i]), date.fromordinal(int(births[i]))
            )
            for i in range(n - 500)
        ),
        1,
    )
    # Later enrollments and deletions: the basis stays the one of the full load.
    index.apply(
        [
            TemplateRow(
                f"t{i}", f"r{i}", vectors[i], str(sexes[i]), date.fromordinal(int(births[i]))
            )
            for i in range(n - 500, n)
        ],
        removed=[f"t{i}" for i in range(0, n, 7)],
        generation=2,
    )
    alive = np.ones(n, dtype=bool)
    alive[::7] = False
    everyone = np.ones(n, dtype=bool)
    women_born_1950s = (sexes == "female") & (births > date(1949, 12, 31).toordinal())
    women_born_1950s &= births <= date(1959, 12, 31).toordinal()
    narrowings = [
        (Narrowing(), everyone),
        (Narrowing(sex="female"), sexes == "female"),
        (
            Narrowing(
                sex="female", born_after=date(1949, 12, 31), born_on_or_before=date(1959, 12, 31)
            ),
            women_born_1950s,
        ),
    ]
    for t in (0.943, 0.9, 0.8):
        for j in range(40):
            # probes: a template itself, one moved slightly, and a stranger
            base = vectors[rng.integers(n)]
            noise = rng.standard_normal(DIM).astype(np.float32) * (0.02 * (j % 3))
            probe = (base + noise) / np.linalg.norm(base + noise)
            for narrowing, ok in narrowings:
                want = brute_force(vectors, alive, ok, probe, t)
                hits, _ = index.search(probe, threshold=t, limit=n, narrowing=narrowing)
                got = {h.resident_id: h.score for h in hits}
                assert got.keys() == want.keys(), (kind, t, j, narrowing)
                for r, s in got.items():
                    assert s == pytest.approx(want[r], abs=1e-5)


def test_deleted_rows_are_wiped_and_compaction_keeps_the_rest() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    vectors = gallery("face-like", n, rng)
    index = TemplateIndex(DIM)
    index.replace_all((TemplateRow(f"t{i}", f"r{i}", vectors[i]) for i in range(n)), 1)
    index.apply([], removed=[f"t{i}" for i in range(2000)], generation=2)  # compacts
    assert len(index) == 3000
    assert not np.any(np.all(index._vec[: index._n] == 0.0, axis=1))
    hits, compared = index.search(vectors[10], threshold=0.99, limit=3)
    assert compared == 3000 and all(h.resident_id != "r10" for h in hits)
    hits, _ = index.search(vectors[4321], threshold=0.99, limit=3)
    assert hits[0].resident_id == "r4321" and hits[0].score == pytest.approx(1.0, abs=1e-5)
