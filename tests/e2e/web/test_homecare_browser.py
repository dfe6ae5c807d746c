"""The whole home-care visit in a real browser (Debian's Chromium, Playwright) across the
roles, against a real server: the family asks from the resident web app → the station's
board shows it live (server-sent events) → assign, dispatch → the nurse records vital
signs (NEWS2 shown) → the doctor consults and prescribes from the deposited stock (the
expired lot cannot be chosen) → the pharmacist's guidance → the nurse gives the medicine
(the stock goes down) → the outcome. Each role signs in on its own browser context with
password + TOTP. Uses the server fixture of ``test_browser.py``."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import create_engine, text

from consent.staff import totp
from tests.conftest import DRUGS_CSV, needs
from tests.e2e.server import phr
from tests.e2e.web import test_browser
from tests.e2e.web.test_browser import App, check_accessibility, no_csp_violations, shoot
from tests.web import story

# The server fixtures of the resident app's browser tests, used here as they are.
app = test_browser.app
web = test_browser.web

pytestmark = [pytest.mark.e2e, needs(DRUGS_CSV.is_file(), f"{DRUGS_CSV} not found")]

STATION = ("tsukuba-home-nursing", "つくば在宅訪問看護ステーション", "nurse_station")
PHARMACY = ("gakuen-sakura-pharmacy", "学園さくら薬局", "pharmacy")
CODES = ("1141007F1063", "2233002F1018", "1149019F1560")  # the demo's deposited medicines


def _drug_list(tmp: Path) -> Path:
    """The three products of the demo stock, in the ministry's own CSV format."""
    lines = DRUGS_CSV.read_text(encoding="utf-8-sig").splitlines()
    keep = [lines[0], *(line for line in lines[1:] if line.split(",")[1] in CODES)]
    out = tmp / "drugs.csv"
    out.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return out


def _sign_in(web: App, account: dict[str, Any], landing: str) -> Any:
    """A browser context of its own for one staff member (password + TOTP)."""
    ctx = web.page.context.browser.new_context(viewport={"width": 1024, "height": 900})
    p = ctx.new_page()
    p.set_default_timeout(20_000)
    p.on("console", lambda m: web.console.append(f"{m.type}: {m.text}"))
    p.goto(web.url + "/homecare")
    p.wait_for_url("**/auth/staff/login?return_to=/homecare*")
    b32 = parse_qs(urlsplit(account["totp_uri"]).query)["secret"][0]
    secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    p.get_by_label("機関ID Organisation").fill(account["organization"])
    p.get_by_label("ユーザー名 Username").fill(account["username"])
    p.get_by_label("パスワード Password").fill(account["password"])
    p.get_by_label("確認コード One-time code").fill(totp.totp(secret, time.time()))
    p.get_by_role("button", name="ログイン Sign in").click()
    p.wait_for_url(f"**{landing}")
    return p


def test_the_whole_home_care_visit_across_the_roles(web: App, tmp_path: Path) -> None:
    started = time.monotonic()
    env = web.env
    phr(env, "pia", "seed")
    for org_id, name, kind in (STATION, PHARMACY):
        phr(env, "org", "add", org_id, "--name", name, "--kind", kind)
    phr(env, "drugs", "import", str(_drug_list(tmp_path)))
    staff = {a["username"]: a for a in json.loads(phr(env, "homecare", "demo", web.resident_id))}

    clerk = _sign_in(web, staff["clerk"], "/homecare/station")
    clerk.wait_for_selector("#hc-board[data-live=yes]")  # the event stream is open
    shoot(web, "hc-01-board-empty")

    # The family asks for help from the resident web app.
    fam = web.page
    fam.goto(web.url + "/me/signin")
    fam.get_by_role(
        "button", name=f"{story.HANAKO.family} {story.HANAKO.given} さんのカードでサインイン"
    ).click()
    fam.wait_for_url("**/me")
    fam.goto(web.url + "/me/homecare")
    fam.get_by_label("どんな症状ですか").select_option("fever")
    fam.get_by_role("button", name="選ぶ").click()
    fam.wait_for_url("**complaint=fever")
    fam.get_by_label("どうしましたか").fill("熱が38度台でぐったりしている")
    fam.get_by_label("いつから").fill("昨夜から")
    shoot(web, "hc-02-family-request")
    check_accessibility(web, "hc-02-family-request")
    fam.get_by_role("button", name="依頼を送る").click()
    fam.wait_for_url("**done=open")
    assert "受付済み" in fam.locator("main").inner_text()

    # The station's board shows it without a reload; assign and dispatch.
    row = clerk.locator("#hc-board-table tbody tr", has_text="ぐったり")
    row.wait_for(timeout=15_000)
    assert f"{story.HANAKO.family} {story.HANAKO.given}" in row.inner_text()
    web.page = clerk
    shoot(web, "hc-03-board-live")
    row.get_by_label("担当看護師").select_option(label="訪問看護師 一美")
    row.get_by_role("button", name="担当にする").click()
    clerk.wait_for_url("**done=assigned")
    clerk.locator("#hc-board-table tbody tr", has_text="ぐったり").get_by_role(
        "button", name="出動"
    ).click()
    clerk.wait_for_url("**done=dispatched")
    # The clerk's part is done: the board stops listening (on SQLite, every background
    # refresh is one more writer — the staff session's last use — beside the others).
    clerk.goto("about:blank")

    # The nurse arrives and records the vital signs: NEWS2 on the screen.
    nurse = _sign_in(web, staff["nurse1"], "/homecare/nurse")
    nurse.get_by_role("button", name="到着（訪問開始）").click()
    nurse.wait_for_url("**/homecare/visits/*")
    visit_url = nurse.url
    for label, value in (
        ("呼吸数 /分", "20"),
        ("SpO2 %", "95"),
        ("収縮期血圧 mmHg", "112"),
        ("拡張期血圧 mmHg", "70"),
        ("脈拍 /分", "96"),
        ("体温 ℃", "38.6"),
    ):
        nurse.get_by_label(label, exact=True).fill(value)
    nurse.get_by_role("button", name="記録してNEWS2を計算").click()
    nurse.wait_for_url("**done=vitals")
    assert "NEWS2 3点（低リスク）" in nurse.locator(".hc-news2").inner_text()
    web.page = nurse
    shoot(web, "hc-04-nurse-vitals")
    check_accessibility(web, "hc-04-nurse-vitals")

    # The doctor consults online and prescribes from the deposited stock.
    doctor = _sign_in(web, staff["doctor"], "/homecare/doctor")
    doctor.get_by_role("link", name="訪問を開く").click()
    doctor.wait_for_url("**/homecare/visits/*")
    doctor.get_by_label("所見").fill("咽頭発赤あり、肺音清、脱水なし")
    doctor.get_by_label("指示").fill("解熱薬1錠、水分を十分に")
    doctor.get_by_role("button", name="診療を記録").click()
    doctor.wait_for_url("**done=consulted")
    assert doctor.get_by_label(re.compile(r"^数量 ロキソニン.* LOX-2510$")).is_disabled()
    doctor.get_by_label(re.compile(r"^数量 カロナール.* CAL-2611$")).fill("1")
    doctor.get_by_label(re.compile(r"^用法・用量 カロナール.* CAL-2611$")).fill("1回1錠 頓用")
    web.page = doctor
    shoot(web, "hc-05-doctor-prescribe")
    doctor.get_by_role("button", name="処方する").click()
    doctor.wait_for_url("**done=prescribed")

    # The pharmacist's online guidance.
    pharmacist = _sign_in(web, staff["pharmacist"], "/homecare/pharmacist")
    pharmacist.get_by_role("link", name="訪問を開く").click()
    pharmacist.get_by_label("指導の内容").fill("4時間以上あけて服用。眠気・発疹があれば連絡")
    pharmacist.get_by_role("button", name="服薬指導を記録").click()
    pharmacist.wait_for_url("**done=guided")

    # The nurse gives the medicine (the stock goes down) and closes the visit.
    nurse.goto(visit_url)
    nurse.get_by_role("button", name=re.compile(r"^投与した: カロナール.* 1錠$")).click()
    nurse.wait_for_url("**done=given")
    assert "投与済み" in nurse.locator("#hc-orders-h + table").inner_text()
    nurse.locator("select#outcome").select_option("treated_at_home")
    nurse.get_by_role("button", name="訪問を終える").click()
    nurse.wait_for_url("**done=closed")
    assert "在宅で治療" in nurse.locator("main").inner_text()
    web.page = nurse
    shoot(web, "hc-06-visit-closed")
    engine = create_engine(env["PHR_DATABASE_URL"])
    with engine.connect() as conn:
        left = conn.execute(text("SELECT lot, quantity FROM homecare_stock ORDER BY lot")).all()
    engine.dispose()
    assert dict(left) == {"CAL-2611": 19, "CBS-2604": 15, "LOX-2510": 10}
    web.page = fam
    no_csp_violations(web)
    for p in (clerk, nurse, doctor, pharmacist):
        p.context.close()
    print(f"the visit took {time.monotonic() - started:.1f} s in the browser")
