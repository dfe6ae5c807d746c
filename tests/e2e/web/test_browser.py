"""The resident web app in a real browser: Debian's Chromium driven by Playwright against a
real uvicorn server on loopback.

The server gets its own data directory and SQLite file (or the PostgreSQL database of
``PHR_TEST_E2E_DATABASE_URL``, whose ``public`` schema is dropped and rebuilt); three
organisations send a resident's records through ``POST /fhir`` (two clinics and the
city), a hospital has a client of its own, and the resident gets a demo card (``phr card
issue``). The tests then sign in with the demo card and walk through the app as the
resident would; each page is checked with axe-core (bundled in the
``axe-playwright-python`` package, run inside the page) and saved as a screenshot under
``<pytest's temporary directory>/web-screenshots`` (or ``$PHR_TEST_OUTPUT_DIR``).

No browser is downloaded: Chromium must be at ``/usr/bin/chromium`` (``.ci/run`` installs
Debian's ``chromium``). Without it the tests are skipped on a developer's machine and fail
in CI (``CI=true``), so that they are never silently left out there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require
from tests.e2e.server import (
    ROOT,
    LiveServer,
    free_port,
    fresh_postgres,
    phr,
    stop,
    wait_healthy,
)
from tests.web import story

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("PHR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _require_browser() -> Any:
    """Playwright's sync API, or a skip (a failure in CI) when the browser is missing."""
    problem = None
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        problem = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    require(problem is None, f"browser tests: {problem}")
    return sync_playwright


@dataclass
class App:
    server: LiveServer
    resident_id: str
    hospital_token: str
    shots: Path
    env: dict[str, str]
    page: Any = None
    console: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.base_url

    def hospital(self, path: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}/fhir/{path}",
            headers={
                "Authorization": f"Bearer {self.hospital_token}",
                "X-Purpose-Of-Use": "TREAT",
            },
            timeout=30,
        )


def _token(base: str, creds: dict[str, Any]) -> str:
    r = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("PHR_TEST_OUTPUT_DIR")
    out = (
        Path(configured) / "web-screenshots"
        if configured
        else tmp_path_factory.getbasetemp() / "web-screenshots"
    )
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    sync_playwright = _require_browser()
    tmp = tmp_path_factory.mktemp("web-e2e")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = os.environ.get("PHR_TEST_E2E_DATABASE_URL")  # its public schema is rebuilt
    if url:
        fresh_postgres(url)
    env = {
        **os.environ,
        "PHR_DATA_DIR": str(tmp),
        "PHR_BASE_URL": base,
        "PHR_ENV": "test",
        "PHR_DATABASE_URL": url or f"sqlite:///{(tmp / 'phr.db').as_posix()}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    phr(env, "db", "upgrade")
    creds = {}
    for org_id, name, kind in (story.CITY, story.CLINIC_A, story.CLINIC_B, story.HOSPITAL):
        creds[org_id] = json.loads(phr(env, "org", "add", org_id, "--name", name, "--kind", kind))
    srv = LiveServer(base_url=base, log_path=tmp / "server.log")
    with srv.log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "phr.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(proc, srv)
        resident = ""
        for (org_id, _, _), bundle in story.bundles(story.HANAKO):
            r = httpx.post(
                f"{base}/fhir",
                json=bundle,
                headers={
                    "Authorization": f"Bearer {_token(base, creds[org_id])}",
                    "Content-Type": "application/fhir+json",
                },
                timeout=60,
            )
            assert r.status_code == 200, r.text[:2000]
            resident = r.json()["entry"][0]["response"]["location"].split("/")[1]
        phr(env, "card", "issue", resident)
        state = App(
            server=srv,
            resident_id=resident,
            hospital_token=_token(base, creds[story.HOSPITAL[0]]),
            shots=_screenshot_dir(tmp_path_factory),
            env=env,
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(
                viewport={"width": 1024, "height": 900}, accept_downloads=True
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.on("console", lambda m: state.console.append(f"{m.type}: {m.text}"))
            state.page = page
            try:
                yield state
            finally:
                context.close()
                browser.close()
    finally:
        stop(proc)
        if os.environ.get("PHR_TEST_KEEP_SERVER_LOG"):
            shutil.copy(srv.log_path, tmp_path_factory.getbasetemp() / "web-server.log")


@pytest.fixture
def web(app: App) -> Iterator[App]:
    """The shared app; the server's log is printed if the test fails."""
    yield app
    print(f"---- server log ----\n{app.server.log()[-10_000:]}")
    print("---- browser console ----\n" + "\n".join(app.console[-50:]))


def shoot(app: App, name: str) -> None:
    app.page.screenshot(path=str(app.shots / f"{name}.png"), full_page=True)


def check_accessibility(app: App, name: str) -> None:
    """axe-core in the page: no serious or critical WCAG 2.1 A/AA violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        app.page,
        options={
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
        },
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    (app.shots / f"{name}.axe.json").write_text(
        json.dumps(results.response["violations"], ensure_ascii=False, indent=1)
    )
    assert bad == [], f"{name}: {bad}"


def visit(app: App, path: str, name: str) -> None:
    app.page.goto(app.url + path)
    shoot(app, name)
    check_accessibility(app, name)


def no_csp_violations(app: App) -> None:
    blocked = [m for m in app.console if "Content Security Policy" in m]
    assert blocked == []


class TestResidentInTheBrowser:
    """In order: each test continues where the previous one left the browser."""

    def test_sign_in_with_a_demo_card(self, web: App) -> None:
        p = web.page
        p.goto(web.url + "/")
        shoot(web, "01-landing")
        check_accessibility(web, "01-landing")
        p.get_by_role("link", name="マイナンバーカードでサインイン").click()
        p.wait_for_url("**/me/signin")
        shoot(web, "02-signin")
        check_accessibility(web, "02-signin")
        p.get_by_role(
            "button", name=f"{story.HANAKO.family} {story.HANAKO.given} さんのカードでサインイン"
        ).click()
        p.wait_for_url("**/me")
        assert p.get_by_role("heading", level=1).inner_text().startswith(story.HANAKO.family)
        shoot(web, "03-home")
        check_accessibility(web, "03-home")

    def test_medicines_from_two_clinics_are_shown_together(self, web: App) -> None:
        p = web.page
        p.get_by_role("link", name="お薬", exact=True).click()
        p.wait_for_url("**/me/medicines")
        warning = p.locator(".warning")
        assert "同じ種類のお薬が複数の医療機関から出ています" in warning.inner_text()
        group = p.locator("section.med-group", has_text="アムロジピン").first
        text = group.inner_text()
        assert story.CLINIC_A[1] in text and story.CLINIC_B[1] in text
        shoot(web, "04-medicines")
        check_accessibility(web, "04-medicines")

    def test_checkup_trend_charts_are_drawn(self, web: App) -> None:
        p = web.page
        p.get_by_role("link", name="検査・健診結果").click()
        p.wait_for_url("**/me/results")
        charts = p.locator("svg.trend")
        assert charts.count() == 6
        hba1c = p.locator("figure.chart", has_text="HbA1c").locator("svg.trend")
        assert hba1c.locator("circle").count() >= 10
        assert hba1c.locator("rect.band").count() == 1
        box = hba1c.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80
        # The stylesheet applied (no inline styles are allowed): the line is drawn in colour.
        stroke = hba1c.locator("polyline").first.evaluate("e => getComputedStyle(e).stroke")
        assert stroke not in ("none", "")
        shoot(web, "05-results")
        check_accessibility(web, "05-results")

    def test_other_record_pages_pass_the_accessibility_check(self, web: App) -> None:
        for path, name in (
            ("/me/record", "06-record"),
            ("/me/visits", "07-visits"),
            ("/me/download", "08-download"),
            ("/me/print", "09-print"),
            ("/me/emergency", "10-emergency"),
            ("/me/notifications", "11-notifications"),
        ):
            visit(web, path, name)

    def test_revoking_a_consent_makes_the_clinicians_next_read_fail(self, web: App) -> None:
        p = web.page
        rid = web.resident_id
        assert web.hospital(f"Patient/{rid}").status_code == 404  # nothing shared yet
        p.goto(web.url + "/me/sharing")
        form = p.locator("form.consent-form")
        form.get_by_label("誰に見せますか").select_option(f"organization:{story.HOSPITAL[0]}")
        form.get_by_label("診療", exact=True).check()
        form.get_by_role("button", name="この内容で同意する").click()
        p.wait_for_url("**/me/sharing?done=added")
        assert story.HOSPITAL[1] in p.locator("ul.consents").inner_text()
        shoot(web, "12-sharing")
        check_accessibility(web, "12-sharing")
        read = web.hospital(f"Patient/{rid}")
        assert read.status_code == 200, read.text
        found = web.hospital(f"Observation?patient={rid}&code=http://loinc.org|4548-4")
        assert found.json()["total"] > 0
        p.get_by_role("button", name=f"{story.HOSPITAL[1]} への同意を取り消す").click()
        p.wait_for_url("**/me/sharing?done=revoked")
        assert "取り消し済み" in p.locator("ul.consents").inner_text()
        assert web.hospital(f"Patient/{rid}").status_code == 404
        after = web.hospital(f"Observation?patient={rid}&code=http://loinc.org|4548-4")
        assert after.status_code == 200 and after.json()["total"] == 0

    def test_the_clinicians_read_is_in_the_access_log(self, web: App) -> None:
        p = web.page
        p.get_by_role("link", name="閲覧の記録").click()
        p.wait_for_url("**/me/access-log")
        rows = p.locator("table.log tbody tr")
        texts = [rows.nth(i).inner_text() for i in range(rows.count())]
        hospital_rows = [t for t in texts if story.HOSPITAL[1] in t]
        # the read under the consent, and the refused reads before and after it
        assert any("診療" in t and "閲覧" in t for t in hospital_rows), texts[:10]
        assert any("拒否" in t for t in hospital_rows), texts[:10]
        shoot(web, "13-access-log")
        check_accessibility(web, "13-access-log")

    def test_the_downloaded_record_is_valid_fhir(self, web: App) -> None:
        from fhir.resources.R4B.bundle import Bundle

        p = web.page
        p.goto(web.url + "/me/download")
        for label, kind in (
            ("すべての記録（FHIR JSON）", "searchset"),
            ("患者サマリー（IPS, FHIR JSON）", "document"),
        ):
            with p.expect_download() as info:
                p.get_by_role("link", name=label).click()
            path = info.value.path()
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            bundle = Bundle.model_validate(data)
            assert bundle.type == kind
            assert bundle.entry, label
        types = {e["resource"]["resourceType"] for e in data["entry"]}
        assert {"Composition", "Patient", "AllergyIntolerance"} <= types

    def test_writing_the_acp_and_its_pages(self, web: App) -> None:
        p = web.page
        p.goto(web.url + "/me")
        p.get_by_role("link", name="もしもの時", exact=True).click()
        p.wait_for_url("**/me/acp")
        visit(web, "/me/acp", "14a-acp-empty")
        p.get_by_role("link", name="書き始める").click()
        p.wait_for_url("**/me/acp/edit")
        shoot(web, "14b-acp-edit")
        check_accessibility(web, "14b-acp-edit")
        p.get_by_role("group", name="心肺蘇生").get_by_label("希望しない").check()
        p.get_by_role("group", name="輸血", exact=True).get_by_label("希望する", exact=True).check()
        p.get_by_label("あなたの言葉で").fill("家で穏やかに過ごしたい")
        p.locator("#contact-0-name").fill("筑波 一郎")
        p.locator("#contact-0-relationship").fill("長男")
        p.get_by_role("button", name="新しい版として保存").click()
        p.wait_for_url("**/me/acp?done=saved")
        assert "心肺蘇生" in p.locator(".acp-do_not_want").inner_text()
        assert "輸血" in p.locator(".acp-want").inner_text()
        assert "いまの内容（第1版）" in p.locator(".acp-stamp").inner_text()
        shoot(web, "14c-acp")
        check_accessibility(web, "14c-acp")
        visit(web, "/me/acp/versions", "14d-acp-versions")
        visit(web, "/me/acp/conversations", "14e-acp-conversations")
        visit(web, "/me/acp/trusted", "14f-acp-trusted")
        p.get_by_label("その人の呼び名").fill("長女 桜")
        p.get_by_role("button", name="招待コードを作る").click()
        code = p.locator(".code-box code").inner_text()
        assert len(code) >= 8
        shoot(web, "14g-acp-code")
        check_accessibility(web, "14g-acp-code")
        p.goto(web.url + "/me/acp/trusted")
        assert code not in p.content()
        visit(web, "/acp/trusted/signin", "14g2-trusted-signin")

    def test_the_paramedic_tablet_shows_the_acp_under_emergency_consent(self, web: App) -> None:
        import base64
        import time
        from urllib.parse import parse_qs, urlsplit

        from consent.staff import totp

        p = web.page
        p.goto(web.url + "/me/emergency")
        p.get_by_label("はい、救急時は見せる").check()
        p.get_by_role("button", name="保存").click()
        p.wait_for_url("**/me/emergency?done=on")
        phr(web.env, "pia", "seed")
        phr(web.env, "org", "add", "tsukuba-fire", "--name", "つくば消防", "--kind", "ems")
        account = json.loads(
            phr(
                web.env,
                "staff",
                "add",
                "tsukuba-fire",
                "para",
                "--role",
                "paramedic",
                "--name",
                "救急 一郎",
            )
        )
        b32 = parse_qs(urlsplit(account["totp_uri"]).query)["secret"][0]
        secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
        p.goto(web.url + "/ems")
        p.wait_for_url("**/auth/staff/login?return_to=/ems*")
        p.get_by_label("機関ID Organisation").fill("tsukuba-fire")
        p.get_by_label("ユーザー名 Username").fill("para")
        p.get_by_label("パスワード Password").fill(account["initial_password"])
        p.get_by_label("確認コード One-time code").fill(totp.totp(secret, time.time()))
        p.get_by_role("button", name="ログイン Sign in").click()
        p.wait_for_url("**/ems")
        shoot(web, "14h-ems")
        check_accessibility(web, "14h-ems")
        p.get_by_role("button", name="事案を開く").click()
        p.wait_for_url("**/ems/incidents/*")
        p.get_by_label("姓", exact=True).fill(story.HANAKO.family)
        p.get_by_label("名", exact=True).fill(story.HANAKO.given)
        p.get_by_label("生年月日", exact=True).fill(story.HANAKO.birth)
        p.get_by_label("性別", exact=True).select_option("female")
        p.get_by_role("button", name="検索", exact=True).click()
        p.wait_for_url("**done=searched")
        assert story.HANAKO.given not in p.locator("main").inner_text()
        shoot(web, "14i-ems-candidate")
        check_accessibility(web, "14i-ems-candidate")
        p.get_by_label("居合わせた人から聞いた生年月日").fill(story.HANAKO.birth)
        p.get_by_role("button", name="生年月日で確認").click()
        p.wait_for_url("**done=confirmed")
        summary = p.locator(".ems-summary").inner_text()
        assert f"{story.HANAKO.family} {story.HANAKO.given}" in summary
        assert "心肺蘇生" in p.locator(".ems-acp .acp-do_not_want").inner_text()
        assert "第1版" in p.locator(".ems-acp .acp-stamp").inner_text()
        shoot(web, "14j-ems-summary")
        check_accessibility(web, "14j-ems-summary")
        p.get_by_role("button", name="終了する（救急時の情報は見られなくなります）").click()
        p.wait_for_url("**done=closed")
        assert p.locator(".ems-summary").count() == 0

    def test_switching_to_english(self, web: App) -> None:
        p = web.page
        p.goto(web.url + "/me/medicines")
        p.get_by_role("link", name="English").click()
        p.wait_for_url("**/me/medicines")
        assert p.locator("html").get_attribute("lang") == "en"
        assert p.get_by_role("heading", level=1).inner_text() == "My medicines"
        shoot(web, "14-medicines-en")
        check_accessibility(web, "14-medicines-en")
        visit(web, "/me/results", "15-results-en")
        visit(web, "/me/sharing", "16-sharing-en")
        p.get_by_role("link", name="日本語").click()
        assert p.locator("html").get_attribute("lang") == "ja"

    def test_large_text_and_a_phone_screen_keep_the_page_usable(self, web: App) -> None:
        p = web.page
        p.set_viewport_size({"width": 375, "height": 800})
        p.goto(web.url + "/me")
        p.evaluate("document.documentElement.style.fontSize = '200%'")
        width = p.evaluate("document.documentElement.scrollWidth")
        wide = p.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
            ".right > 376).map(e => e.tagName + '.' + e.className).slice(0, 5)"
        )
        assert width <= 375 + 1, f"the page scrolls sideways on a phone with large text: {wide}"
        shoot(web, "17-home-phone-large-text")
        # keyboard: the first Tab lands on the skip link, which moves focus to the content
        p.keyboard.press("Tab")
        assert p.evaluate("document.activeElement.className") == "skip"
        p.keyboard.press("Enter")
        assert p.evaluate("document.activeElement.id") == "main"
        p.set_viewport_size({"width": 1024, "height": 900})

    def test_self_triage_leads_with_119_on_a_red_flag(self, web: App) -> None:
        p = web.page
        p.goto(web.url + "/me")
        p.get_by_role("link", name="具合が悪いとき").click()
        p.wait_for_url("**/triage")
        shoot(web, "18-triage")
        check_accessibility(web, "18-triage")
        p.get_by_role("link", name="胸の痛み").click()
        p.wait_for_url("**/triage/chest_pain")
        shoot(web, "19-triage-questions")
        check_accessibility(web, "19-triage-questions")
        p.locator("#q_fainted-yes").check()
        p.get_by_role("button", name="緊急度を見る").click()
        level = p.locator("#level")
        assert level.get_attribute("data-urgency") == "red"
        call = p.get_by_role("link", name="119番に電話する")
        assert call.get_attribute("href") == "tel:119"
        shoot(web, "20-triage-red")
        check_accessibility(web, "20-triage-red")

    def test_signing_out_and_no_policy_violations(self, web: App) -> None:
        p = web.page
        p.goto(web.url + "/me")
        p.get_by_role("button", name="サインアウト").click()
        p.wait_for_url("**/me/signin?signed_out=1")
        p.goto(web.url + "/me/medicines")
        assert "/me/signin" in p.url
        no_csp_violations(web)
