"""A worked case per rule, on real products of the national list."""

from __future__ import annotations

from typing import Any

import pytest

from phr.polypharmacy.kb import knowledge_base
from phr.polypharmacy.reconcile import reconcile
from phr.polypharmacy.rules import Finding, KidneyFunction, Patient, jsn_egfr, run_checks
from phr.polypharmacy.service import condition_facts
from tests.polypharmacy.helpers import TODAY, dispense, products_of, request, sig, statement


def check(
    bodies: list[dict[str, Any]],
    *,
    age: int | None = 60,
    egfr: float | None = None,
    conditions: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> list[Finding]:
    kb = knowledge_base()
    meds = reconcile(bodies, products_of(bodies), kb, today=TODAY)
    kidney = KidneyFunction(egfr, "measured", "2026-11-01", "Observation/o1") if egfr else None
    facts = condition_facts((f"c{i}", c) for i, c in enumerate(conditions))
    return run_checks(meds, Patient("p1", age, "female", kidney, facts), kb)


def condition(
    code: str, system: str = "http://hl7.org/fhir/sid/icd-10", status: str = "active", **more: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}], "text": code},
        "onsetDateTime": "2024-04-01",
        **more,
    }


def only(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


class TestInteractions:
    def test_warfarin_from_one_clinic_and_loxoprofen_from_another_is_a_bleeding_risk(
        self,
    ) -> None:
        found = check(
            [
                request("ワルファリンカリウム", "つくば循環器クリニック"),
                request("ロキソプロフェンナトリウム水和物", "さくら整形外科"),
            ]
        )
        (f,) = [f for f in found if f.rule_id == "anticoag-nsaid"]
        assert (f.code, f.severity) == ("DRG", "high")
        assert f.prescribers == ["さくら整形外科", "つくば循環器クリニック"]
        assert "Beers" in f.source and "出血" in f.reason_ja
        assert "アセトアミノフェン" in f.action_ja

    def test_simvastatin_with_clarithromycin_is_contraindicated(self) -> None:
        found = check(
            [request("シンバスタチン", "A内科"), request("クラリスロマイシン", "B耳鼻科")]
        )
        assert [f.rule_id for f in found if f.code == "DRG"] == ["statin-cyp3a4"]

    def test_two_qt_prolonging_drugs(self) -> None:
        found = check([request("アミオダロン塩酸塩", "A"), request("クラリスロマイシン", "B")])
        assert "qt-qt" in {f.rule_id for f in found}

    def test_ace_inhibitor_with_spironolactone_risks_hyperkalaemia(self) -> None:
        found = check([request("エナラプリルマレイン酸塩", "A"), request("スピロノラクトン", "B")])
        assert "ras-ksparing" in {f.rule_id for f in found}


class TestDuplicates:
    def test_two_benzodiazepine_hypnotics_from_two_clinics(self) -> None:
        found = check(
            [request("トリアゾラム", "A心療内科"), request("ブロチゾラム", "B内科")], age=50
        )
        (f,) = only(found, "same-class")
        assert (f.code, f.rule_id, f.severity) == ("DUPTHPY", "bzd", "high")
        assert {m.name for m in f.medicines} == {"トリアゾラム", "ブロチゾラム"}

    def test_the_same_ingredient_from_two_clinics(self) -> None:
        found = check(
            [request("アムロジピンベシル酸塩", "A内科"), request("アムロジピンベシル酸塩", "B内科")]
        )
        (f,) = only(found, "same-ingredient")
        assert f.code == "DUPTHPY" and f.prescribers == ["A内科", "B内科"]

    def test_the_same_ingredient_from_two_pharmacies(self) -> None:
        found = check(
            [
                dispense("アムロジピンベシル酸塩", "駅前薬局", "A内科"),
                dispense("アムロジピンベシル酸塩", "病院前薬局", "A内科"),
            ]
        )
        assert only(found, "same-ingredient")[0].pharmacies == ["病院前薬局", "駅前薬局"]

    def test_a_refill_at_another_pharmacy_after_the_supply_ran_out_is_not_a_duplicate(
        self,
    ) -> None:
        found = check(
            [
                dispense("アムロジピンベシル酸塩", "駅前薬局", "A内科", days=28, ago=31),
                dispense("アムロジピンベシル酸塩", "病院前薬局", "A内科", days=28, ago=2),
            ]
        )
        assert only(found, "same-ingredient") == []

    def test_a_prescription_and_its_own_dispensing_are_not_a_duplicate(self) -> None:
        found = check(
            [
                request("アムロジピンベシル酸塩", "A内科"),
                dispense("アムロジピンベシル酸塩", "駅前薬局", "A内科"),
            ]
        )
        assert only(found, "same-ingredient") == []

    def test_ace_inhibitor_plus_arb(self) -> None:
        found = check(
            [request("エナラプリルマレイン酸塩", "A"), request("カンデサルタンシレキセチル", "B")]
        )
        assert ("same-class", "ras") in {(f.rule, f.rule_id) for f in found}

    def test_two_ppis(self) -> None:
        found = check([request("ランソプラゾール", "A"), request("ボノプラザンフマル酸塩", "B")])
        assert ("same-class", "ppi") in {(f.rule, f.rule_id) for f in found}


class TestCountAgeAndBurden:
    NINE = (
        "アムロジピンベシル酸塩",
        "カンデサルタンシレキセチル",
        "メトホルミン塩酸塩",
        "シタグリプチンリン酸塩水和物",
        "アトルバスタチンカルシウム水和物",
        "ランソプラゾール",
        "アスピリン",
        "ゾルピデム酒石酸塩",
        "酸化マグネシウム",
    )

    def test_nine_drugs_in_an_85_year_old(self) -> None:
        found = check(
            [request(i, "A内科" if n % 2 else "B医院") for n, i in enumerate(self.NINE)], age=85
        )
        (count,) = only(found, "polypharmacy")
        assert (count.code, count.severity, count.facts["count"]) == ("DACT", "moderate", 9)
        assert "転倒" in count.reason_ja and "有害事象" in count.reason_ja
        pims = {f.medicines[0].name: f for f in only(found, "older-adult")}
        assert pims["ゾルピデム酒石酸塩"].code == "AGE"
        assert "jgs-bzd" in pims["ゾルピデム酒石酸塩"].rule_id  # 75+: the JGS 2015 list
        assert "アスピリン" in pims

    def test_a_ppi_beyond_8_weeks_of_uninterrupted_use(self) -> None:
        # Beers 2023 Table 2: avoid scheduled PPI use beyond 8 weeks. Three 28-day
        # prescriptions back to back: 80 days today.
        course = [request("ランソプラゾール", "A", days=28, ago=a) for a in (80, 52, 24)]
        (f,) = only(check(course, age=70), "older-adult")
        assert f.rule_id == "beers-ppi" and f.facts["continuous_days"] == 80
        # One month of it is not long-term use.
        assert only(check(course[2:], age=70), "older-adult") == []

    def test_a_break_in_supply_starts_a_new_course(self) -> None:
        # 200 days ago for 28 days, then nothing until a new course 30 days ago.
        found = check(
            [
                request("ランソプラゾール", "A", days=28, ago=200, status="completed"),
                request("ランソプラゾール", "A", days=60, ago=30),
            ],
            age=70,
        )
        assert only(found, "older-adult") == []

    def test_five_drugs_is_the_falls_threshold(self) -> None:
        found = check([request(i, "A") for i in self.NINE[:5]], age=70)
        (count,) = only(found, "polypharmacy")
        assert (count.rule_id, count.severity) == ("falls", "low")
        assert only(check([request(i, "A") for i in self.NINE[:4]]), "polypharmacy") == []

    def test_beers_applies_from_65_and_the_japanese_list_from_75(self) -> None:
        at_70 = only(check([request("ゾルピデム酒石酸塩", "A")], age=70), "older-adult")
        assert at_70[0].rule_id == "beers-bzd"
        at_80 = only(check([request("ゾルピデム酒石酸塩", "A")], age=80), "older-adult")
        assert set(at_80[0].rule_id.split("+")) == {"jgs-bzd", "beers-bzd"}
        assert only(check([request("ゾルピデム酒石酸塩", "A")], age=50), "older-adult") == []

    def test_anticholinergic_burden_of_three(self) -> None:
        found = check([request("アミトリプチリン塩酸塩", "A")], age=50)
        (f,) = only(found, "anticholinergic")
        assert f.facts["total"] == 3 and f.code == "DACT"
        low = check([request("フロセミド", "A"), request("ワルファリンカリウム", "B")], age=50)
        assert only(low, "anticholinergic") == []  # 1 + 1


class TestKidney:
    def test_metformin_at_egfr_25_is_contraindicated(self) -> None:
        (f,) = only(check([request("メトホルミン塩酸塩", "A")], egfr=25), "kidney")
        assert (f.code, f.severity, f.rule_id) == ("DOSECOND", "high", "metformin-30")
        assert "日本糖尿病学会" in f.source

    def test_metformin_at_egfr_40_needs_a_careful_decision(self) -> None:
        (f,) = only(check([request("メトホルミン塩酸塩", "A")], egfr=40), "kidney")
        assert (f.severity, f.rule_id) == ("moderate", "metformin-45")

    def test_metformin_at_egfr_60_is_fine(self) -> None:
        assert only(check([request("メトホルミン塩酸塩", "A")], egfr=60), "kidney") == []

    # Dose limits by band (メトグルコ package insert): 45 <= eGFR < 60 up to 1,500 mg a day,
    # 30 <= eGFR < 45 up to 750 mg; below 30 contraindicated whatever the dose.
    def test_metformin_1500_mg_a_day_at_egfr_38_is_above_the_750_mg_limit(self) -> None:
        mr = request("メトホルミン塩酸塩", "A", strength="500mg1錠", dosage=sig(1, 3))
        (f,) = only(check([mr], egfr=38), "kidney")
        assert (f.rule_id, f.severity) == ("metformin-45", "moderate")
        assert (f.facts["daily_mg"], f.facts["max_daily_mg"]) == (1500, 750)
        assert "1500 mg" in f.reason_en and "750 mg" in f.reason_en

    def test_metformin_750_mg_a_day_at_egfr_38_fits_its_band(self) -> None:
        mr = request("メトホルミン塩酸塩", "A", strength="250mg1錠", dosage=sig(1, 3))
        assert only(check([mr], egfr=38), "kidney") == []

    def test_metformin_1500_mg_at_egfr_50_fits_but_2250_mg_does_not(self) -> None:
        fits = request("メトホルミン塩酸塩", "A", strength="500mg1錠", dosage=sig(1, 3))
        assert only(check([fits], egfr=50), "kidney") == []
        above = request("メトホルミン塩酸塩", "A", strength="250mg1錠", dosage=sig(3, 3))
        (f,) = only(check([above], egfr=50), "kidney")
        assert (f.rule_id, f.facts["daily_mg"]) == ("metformin-60", 2250)

    def test_a_low_dose_does_not_lift_a_contraindication(self) -> None:
        mr = request("メトホルミン塩酸塩", "A", strength="250mg1錠", dosage=sig(1, 1))
        (f,) = only(check([mr], egfr=25), "kidney")
        assert (f.rule_id, f.severity) == ("metformin-30", "high")

    def test_an_unrecorded_dose_is_reported_with_the_limit(self) -> None:
        (f,) = only(check([request("メトホルミン塩酸塩", "A")], egfr=38), "kidney")
        assert f.facts["daily_mg"] is None and f.facts["max_daily_mg"] == 750
        assert "not recorded" in f.reason_en

    def test_pregabalin_bands(self) -> None:
        # リリカ: Ccr 30-60 up to 300 mg a day; 15-30 up to 150 mg; below 15 up to 75 mg
        mr = request("プレガバリン", "A", strength="75mg1カプセル", dosage=sig(1, 2, "カプセル"))
        assert only(check([mr], egfr=45), "kidney") == []  # 150 mg <= 300
        assert only(check([mr], egfr=20), "kidney") == []  # 150 mg <= 150
        (f,) = only(check([mr], egfr=10), "kidney")  # 150 mg > 75
        assert (f.rule_id, f.facts["daily_mg"], f.facts["max_daily_mg"]) == (
            "pregabalin-15",
            150,
            75,
        )

    def test_jsn_equation(self) -> None:
        # 194 × 1.0^-1.094 × 60^-0.287 = 59.9 (male); × 0.739 = 44.3 (female)
        assert jsn_egfr(1.0, 60, female=False) == pytest.approx(59.9, abs=0.1)
        assert jsn_egfr(1.0, 60, female=True) == pytest.approx(44.3, abs=0.1)


class TestDrugDisease:
    """AGS Beers 2023 Table 3: medicines to avoid with a condition (65 and over)."""

    def test_a_z_drug_in_an_80_year_old_with_dementia(self) -> None:
        found = check([request("ゾルピデム酒石酸塩", "A")], age=80, conditions=[condition("F03")])
        (f,) = only(found, "drug-disease")
        assert (f.rule_id, f.code, f.severity) == ("beers3-dementia", "COND", "high")
        assert f.facts["condition"] == "Condition/c0" and "Beers" in f.source

    def test_an_nsaid_in_heart_failure(self) -> None:
        found = check(
            [request("ロキソプロフェンナトリウム水和物", "A")],
            age=78,
            conditions=[condition("I50.9")],
        )
        assert [f.rule_id for f in only(found, "drug-disease")] == ["beers3-hf-nsaid"]

    def test_alzheimer_coded_in_snomed_and_a_strongly_anticholinergic_drug(self) -> None:
        found = check(
            [request("アミトリプチリン塩酸塩", "A")],
            age=70,
            conditions=[condition("26929004", "http://snomed.info/sct")],
        )
        assert [f.rule_id for f in only(found, "drug-disease")] == ["beers3-dementia"]

    def test_parkinson_disease_quetiapine_is_the_exception_metoclopramide_is_not(self) -> None:
        pd = [condition("G20")]
        assert (
            only(
                check([request("クエチアピンフマル酸塩", "A")], age=75, conditions=pd),
                "drug-disease",
            )
            == []
        )
        (f,) = only(
            check([request("メトクロプラミド", "A")], age=75, conditions=pd), "drug-disease"
        )
        assert f.rule_id == "beers3-parkinson"

    def test_a_healed_hip_fracture_still_counts_as_history_of_falls(self) -> None:
        healed = condition("S72.0", status="resolved", abatementDateTime="2024-09-01")
        found = check([request("ブロチゾラム", "A")], age=82, conditions=[healed])
        assert "beers3-falls" in [f.rule_id for f in only(found, "drug-disease")]

    def test_a_resolved_heart_failure_does_not_count(self) -> None:
        gone = condition("I50.9", status="resolved")
        found = check([request("ロキソプロフェンナトリウム水和物", "A")], age=78, conditions=[gone])
        assert only(found, "drug-disease") == []

    def test_a_refuted_diagnosis_does_not_count(self) -> None:
        refuted = condition(
            "F03",
            verificationStatus={
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "refuted",
                    }
                ]
            },
        )
        found = check([request("ゾルピデム酒石酸塩", "A")], age=80, conditions=[refuted])
        assert only(found, "drug-disease") == []

    def test_the_criteria_apply_from_65(self) -> None:
        hf = [condition("I50.9")]
        nsaid = [request("ロキソプロフェンナトリウム水和物", "A")]
        assert only(check(nsaid, age=64, conditions=hf), "drug-disease") == []
        assert only(check(nsaid, age=65, conditions=hf), "drug-disease") != []

    def test_icd10_categories_do_not_match_a_neighbour(self) -> None:
        # I50 covers I50.x, not I51 (complications of heart disease)
        found = check(
            [request("ロキソプロフェンナトリウム水和物", "A")],
            age=78,
            conditions=[condition("I51.7")],
        )
        assert only(found, "drug-disease") == []


class TestReconciliation:
    def test_a_dispensing_whose_supply_ran_out_long_ago_is_not_current(self) -> None:
        found = check(
            [
                dispense("ワルファリンカリウム", "駅前薬局", "A", days=30, ago=200),
                request("ロキソプロフェンナトリウム水和物", "B"),
            ]
        )
        assert not [f for f in found if f.code == "DRG"]

    def test_the_grace_period_keeps_a_late_refill_current(self) -> None:
        found = check(
            [
                dispense("ワルファリンカリウム", "駅前薬局", "A", days=28, ago=35),
                request("ロキソプロフェンナトリウム水和物", "B"),
            ]
        )
        assert [f.rule_id for f in found if f.code == "DRG"] == ["anticoag-nsaid"]

    def test_an_unrecognised_self_reported_medicine_is_listed_not_dropped(self) -> None:
        kb = knowledge_base()
        bodies = [statement("近所で買った漢方薬")]
        (m,) = reconcile(bodies, {}, kb, today=TODAY)
        assert (m.recognised, m.how, m.active) == (False, "unrecognised", True)
