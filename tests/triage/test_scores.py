"""NEWS2 against the RCP 2017 chart (both sides of every band edge), its risk bands,
qSOFA boundaries, shock index and the JTAS-style level."""

from __future__ import annotations

from typing import Any

import pytest

from phr.triage.scores import jtas_level, news2, qsofa, shock_index

NORMAL: dict[str, Any] = {
    "respiratory_rate": 16,
    "spo2": 97,
    "spo2_scale": 1,
    "on_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": "A",
    "temperature": 37.0,
}


def points(**change: Any) -> dict[str, int]:
    return news2(**{**NORMAL, **change}).points


class TestNews2Chart:
    def test_a_healthy_adult_scores_zero(self) -> None:
        r = news2(**NORMAL)
        assert r.score == 0 and r.risk == "low"
        assert set(r.points.values()) == {0}

    @pytest.mark.parametrize(
        ("rr", "expected"),
        [(5, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (40, 3)],
    )
    def test_respiration_rate_bands(self, rr: int, expected: int) -> None:
        assert points(respiratory_rate=rr)["respiratory_rate"] == expected

    @pytest.mark.parametrize(
        ("spo2", "expected"), [(85, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)]
    )
    def test_spo2_scale_1_bands_on_air_and_on_oxygen(self, spo2: int, expected: int) -> None:
        assert points(spo2=spo2)["spo2"] == expected
        assert points(spo2=spo2, on_oxygen=True)["spo2"] == expected

    @pytest.mark.parametrize(
        ("spo2", "expected"),
        [(80, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0)],
    )
    def test_spo2_scale_2_below_93_whatever_the_oxygen(self, spo2: int, expected: int) -> None:
        assert points(spo2=spo2, spo2_scale=2)["spo2"] == expected
        assert points(spo2=spo2, spo2_scale=2, on_oxygen=True)["spo2"] == expected

    @pytest.mark.parametrize(
        ("spo2", "on_air", "on_oxygen"),
        [(93, 0, 1), (94, 0, 1), (95, 0, 2), (96, 0, 2), (97, 0, 3), (100, 0, 3)],
    )
    def test_spo2_scale_2_at_93_or_more_scores_only_on_oxygen(
        self, spo2: int, on_air: int, on_oxygen: int
    ) -> None:
        assert points(spo2=spo2, spo2_scale=2)["spo2"] == on_air
        assert points(spo2=spo2, spo2_scale=2, on_oxygen=True)["spo2"] == on_oxygen

    def test_air_or_oxygen(self) -> None:
        assert points()["on_oxygen"] == 0
        assert points(on_oxygen=True)["on_oxygen"] == 2

    @pytest.mark.parametrize(
        ("sbp", "expected"),
        [(70, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    )
    def test_systolic_bands(self, sbp: int, expected: int) -> None:
        assert points(systolic_bp=sbp)["systolic_bp"] == expected

    @pytest.mark.parametrize(
        ("pulse", "expected"),
        [
            (30, 3),
            (40, 3),
            (41, 1),
            (50, 1),
            (51, 0),
            (90, 0),
            (91, 1),
            (110, 1),
            (111, 2),
            (130, 2),
            (131, 3),
            (180, 3),
        ],
    )
    def test_pulse_bands(self, pulse: int, expected: int) -> None:
        assert points(pulse=pulse)["pulse"] == expected

    @pytest.mark.parametrize(
        ("level", "expected"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)]
    )
    def test_acvpu(self, level: str, expected: int) -> None:
        assert points(consciousness=level)["consciousness"] == expected

    @pytest.mark.parametrize(
        ("temp", "expected"),
        [
            (34.0, 3),
            (35.0, 3),
            (35.1, 1),
            (36.0, 1),
            (36.1, 0),
            (38.0, 0),
            (38.1, 1),
            (39.0, 1),
            (39.1, 2),
            (41.0, 2),
        ],
    )
    def test_temperature_bands(self, temp: float, expected: int) -> None:
        assert points(temperature=temp)["temperature"] == expected

    def test_bad_scale_or_consciousness_is_refused(self) -> None:
        with pytest.raises(ValueError):
            news2(**{**NORMAL, "spo2_scale": 3})
        with pytest.raises(ValueError):
            news2(**{**NORMAL, "consciousness": "X"})


class TestNews2RiskBands:
    def test_four_is_low(self) -> None:
        r = news2(**{**NORMAL, "respiratory_rate": 22, "pulse": 95, "temperature": 38.5})
        assert r.score == 4 and r.risk == "low"

    def test_a_single_three_with_a_total_under_five_is_low_medium(self) -> None:
        r = news2(**{**NORMAL, "consciousness": "C"})
        assert r.score == 3 and r.risk == "low-medium"
        r = news2(**{**NORMAL, "consciousness": "V", "pulse": 95})
        assert r.score == 4 and r.risk == "low-medium"

    def test_five_and_six_are_medium_even_with_a_three(self) -> None:
        assert news2(**{**NORMAL, "consciousness": "C", "systolic_bp": 95}).risk == "medium"
        r = news2(**{**NORMAL, "on_oxygen": True, "systolic_bp": 95, "pulse": 120})
        assert r.score == 6 and r.risk == "medium"

    def test_seven_or_more_is_high(self) -> None:
        r = news2(**{**NORMAL, "respiratory_rate": 25, "spo2": 91, "pulse": 115})
        assert r.score == 8 and r.risk == "high"
        r = news2(
            **{**NORMAL, "respiratory_rate": 25, "systolic_bp": 105, "on_oxygen": True, "pulse": 95}
        )
        assert r.score == 7 and r.risk == "high"


class TestQsofa:
    @pytest.mark.parametrize(("rr", "hit"), [(21, False), (22, True)])
    def test_respiratory_rate_boundary(self, rr: int, hit: bool) -> None:
        assert (
            qsofa(respiratory_rate=rr, systolic_bp=120, gcs=15).criteria["respiratory_rate_ge_22"]
            is hit
        )

    @pytest.mark.parametrize(("sbp", "hit"), [(100, True), (101, False)])
    def test_systolic_boundary(self, sbp: int, hit: bool) -> None:
        assert (
            qsofa(respiratory_rate=16, systolic_bp=sbp, gcs=15).criteria["systolic_bp_le_100"]
            is hit
        )

    @pytest.mark.parametrize(("gcs", "hit"), [(14, True), (15, False)])
    def test_mentation_boundary(self, gcs: int, hit: bool) -> None:
        assert (
            qsofa(respiratory_rate=16, systolic_bp=120, gcs=gcs).criteria["altered_mentation"]
            is hit
        )

    def test_two_criteria_are_positive_one_is_not(self) -> None:
        assert not qsofa(respiratory_rate=22, systolic_bp=101, gcs=15).positive
        r = qsofa(respiratory_rate=22, systolic_bp=100, gcs=15)
        assert r.score == 2 and r.positive
        assert qsofa(respiratory_rate=30, systolic_bp=80, altered_mentation=True).score == 3

    def test_needs_mentation(self) -> None:
        with pytest.raises(ValueError):
            qsofa(respiratory_rate=22, systolic_bp=100)


class TestShockIndex:
    @pytest.mark.parametrize(
        ("pulse", "sbp", "value", "band"),
        [
            (70, 140, 0.5, "normal"),
            (84, 120, 0.7, "normal"),
            (85, 120, 0.71, "elevated"),
            (99, 100, 0.99, "elevated"),
            (100, 100, 1.0, "shock"),
            (130, 80, 1.62, "shock"),
        ],
    )
    def test_bands(self, pulse: int, sbp: int, value: float, band: str) -> None:
        r = shock_index(pulse=pulse, systolic_bp=sbp)
        assert (r.value, r.band) == (value, band)


class TestJtas:
    def test_normal_vitals_keep_the_complaint_level(self) -> None:
        r = jtas_level(
            complaint_level=4,
            respiratory_rate=16,
            spo2=98,
            systolic_bp=130,
            pulse=72,
            gcs=15,
            temperature=36.8,
        )
        assert r.level == 4

    @pytest.mark.parametrize(
        ("spo2", "level"), [(89, 1), (90, 2), (91, 2), (92, 3), (94, 3), (95, 5)]
    )
    def test_oxygen_saturation_modifier(self, spo2: int, level: int) -> None:
        assert jtas_level(spo2=spo2).level == level

    @pytest.mark.parametrize(("gcs", "level"), [(9, 1), (10, 2), (13, 2), (14, 5)])
    def test_consciousness_modifier(self, gcs: int, level: int) -> None:
        assert jtas_level(gcs=gcs).level == level

    def test_shock_is_level_1_and_compromise_level_2(self) -> None:
        assert jtas_level(systolic_bp=75, pulse=120).level == 1
        assert jtas_level(systolic_bp=110, pulse=115).level == 2
        assert jtas_level(systolic_bp=120, pulse=80).level == 5

    def test_fever_in_an_immunocompromised_patient_is_level_2(self) -> None:
        assert jtas_level(temperature=38.6).level == 3
        assert jtas_level(temperature=38.6, immunocompromised=True).level == 2
        r = jtas_level(temperature=39.0, pulse=110, respiratory_rate=24)
        assert r.level == 2 and "SIRS" in r.reasons[0]
