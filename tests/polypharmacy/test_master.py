"""The national drug master: the real MHLW list imported, every product recognised."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phr.errors import InvalidInput
from phr.polypharmacy import repository
from phr.polypharmacy.kb import knowledge_base
from phr.polypharmacy.master import components, form_of, import_drug_list
from phr.polypharmacy.models import DrugProduct
from tests.polypharmacy.helpers import DRUG_LIST, catalogue

LIST_SIZE = 12_434


class TestImport:
    def test_every_product_of_the_real_list_is_recognised_afterwards(
        self, session: Session
    ) -> None:
        report = import_drug_list(session, DRUG_LIST)
        assert (report.rows, report.products, report.created) == (LIST_SIZE,) * 3
        with open(DRUG_LIST, encoding="utf-8-sig", newline="") as fh:
            codes = [r["薬価基準収載医薬品コード"] for r in csv.DictReader(fh)]
        found = repository.products_by_codes(session, codes)
        assert len(found) == LIST_SIZE == len(set(codes))
        loxo = next(p for p in found.values() if p.ingredient == "ロキソプロフェンナトリウム水和物")
        assert loxo.category == loxo.code[:4] == "1149"

    def test_fields_are_normalised(self, session: Session) -> None:
        import_drug_list(session, DRUG_LIST)
        p = session.get(DrugProduct, "1124001F1022")  # ユーロジン1mg錠
        assert p is not None
        assert (p.ingredient, p.strength, p.form, p.route, p.category, p.brand) == (
            "エスタゾラム",
            "1mg1錠",
            "錠",
            "内用薬",
            "1124",
            "brand",
        )
        brands = dict(
            session.execute(
                select(DrugProduct.brand, func.count()).group_by(DrugProduct.brand)
            ).all()
        )
        assert brands["brand"] == 4151 and brands["quasi-brand"] == 88
        assert brands["generic"] == 4375 + 405
        assert sum(brands.values()) == LIST_SIZE

    def test_a_second_import_updates_in_place(self, session: Session) -> None:
        import_drug_list(session, DRUG_LIST)
        again = import_drug_list(session, DRUG_LIST)
        assert (again.created, again.updated) == (0, LIST_SIZE)
        assert repository.product_count(session) == LIST_SIZE

    def test_a_file_that_is_not_the_list_is_refused(self, session: Session, tmp_path: Path) -> None:
        bad = tmp_path / "x.csv"
        bad.write_text("a,b\n1,2\n", encoding="utf-8")
        with pytest.raises(InvalidInput):
            import_drug_list(session, bad)
        assert repository.product_count(session) == 0

    def test_the_command(self, session: Session) -> None:
        from phr.cli import main

        result = CliRunner().invoke(main, ["drugs", "import", str(DRUG_LIST)])
        assert result.exit_code == 0, result.output
        assert f'"products": {LIST_SIZE}' in result.output


class TestParsing:
    def test_form_is_the_unit_at_the_end_of_the_strength(self) -> None:
        assert [form_of(s) for s in ("5mg1錠", "1%1g", "10mg1カプセル", "0.5mL1管")] == [
            "錠",
            "g",
            "カプセル",
            "管",
        ]

    def test_combination_products_have_each_component(self) -> None:
        assert components("ロサルタンカリウム・ヒドロクロロチアジド") == (
            "ロサルタンカリウム",
            "ヒドロクロロチアジド",
        )


class TestKnowledgeBase:
    def test_every_ingredient_the_knowledge_base_names_is_on_the_list(self) -> None:
        on_list = {c for p in catalogue().values() for c in components(p.ingredient)}
        missing = knowledge_base().ingredient_names() - on_list
        # Kept on purpose for records coded otherwise (the ONC list names it).
        assert missing == {"アタザナビル硫酸塩"}

    def test_every_row_has_a_source(self) -> None:
        kb = knowledge_base()
        rows = [*kb.interactions, *kb.elderly, *kb.renal, *kb.classes.values()]
        assert all(r.source for r in rows)

    def test_the_onc_high_priority_list_is_covered(self) -> None:
        onc = [r for r in knowledge_base().interactions if "Phansalkar 2012" in r.source]
        assert len(onc) >= 12  # 15 pairs; some merged where Japan lacks a member
