"""In a real browser (Chromium driven by Playwright, the server of ``test_browser``'s
fixture): the paramedic identifies a resident by a photo of their face — the ORL faces,
the real dlib extractor — compares the reference photo side by side and confirms; then
the shelter desk checks the same resident in and sees the medicines to continue.

Hanako enrols two ORL photos of subject 1 and a reference photo (as the resident's API
would, here through the service in a process with the server's settings); the crew's
photo is another photo of subject 1. Without the face extra or the ORL images the test
is skipped on a developer's machine and fails in CI (tests/conftest.py ``needs``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from phr.biometrics.extractor import available
from tests.biometrics.conftest import orl_image
from tests.conftest import needs
from tests.e2e.server import ROOT, phr
from tests.e2e.web import test_browser as browser
from tests.e2e.web.test_browser import App, check_accessibility, no_csp_violations, shoot
from tests.web import story

app = browser.app  # a server of its own for this module (module scope)
web = browser.web

pytestmark = [
    pytest.mark.e2e,
    needs(available(), "the optional face extra (dlib-bin, ...) is not installed"),
    needs(orl_image(1, 1).exists(), f"the ORL faces are not at {orl_image(1, 1).parent}"),
]

SETUP = """
import io, sys
from PIL import Image
from consent.actors import Actor
from consent.policy import schemas, service as policy
from phr.biometrics import service
from phr.db import transaction
rid, enrol1, enrol2, ref = sys.argv[1:5]
png = io.BytesIO()
Image.open(ref).save(png, "PNG")
resident = Actor(kind="resident", resident_id=rid, client_id="e2e")
with transaction() as s:
    service.enroll(s, resident, consent=True,
                   images=[open(enrol1, "rb").read(), open(enrol2, "rb").read()],
                   photo=png.getvalue(), photo_consent=True)
    policy.set_emergency_consent(s, resident, schemas.EmergencyConsentIn(enabled=True))
    policy.set_disaster_consent(s, resident, schemas.EmergencyConsentIn(enabled=True))
"""


def _run(web: App, code: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=web.env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _account(web: App, org: str, username: str, role: str) -> tuple[str, bytes]:
    account = json.loads(phr(web.env, "staff", "add", org, username, "--role", role,
                             "--name", username))  # fmt: skip
    b32 = parse_qs(urlsplit(account["totp_uri"]).query)["secret"][0]
    return account["initial_password"], base64.b32decode(b32 + "=" * (-len(b32) % 8))


def _sign_in(web: App, path: str, org: str, username: str, role: str) -> None:
    from consent.staff import totp

    password, secret = _account(web, org, username, role)
    p = web.page
    p.goto(web.url + path)
    p.wait_for_url("**/auth/staff/login?return_to=**")
    p.get_by_label("機関ID Organisation").fill(org)
    p.get_by_label("ユーザー名 Username").fill(username)
    p.get_by_label("パスワード Password").fill(password)
    p.get_by_label("確認コード One-time code").fill(totp.totp(secret, time.time()))
    p.get_by_role("button", name="ログイン Sign in").click()
    p.wait_for_url(f"**{path}")


def _images_shown(web: App) -> int:
    return int(
        web.page.evaluate(
            "[...document.querySelectorAll('.face-compare img')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length"
        )
    )


class TestFaceAndShelter:
    def test_the_paramedic_identifies_by_face_and_confirms_by_photo(self, web: App) -> None:
        phr(web.env, "pia", "seed")
        phr(web.env, "org", "add", "tsukuba-fire", "--name", "つくば消防", "--kind", "ems")
        _run(web, SETUP, web.resident_id, *(str(orl_image(1, i)) for i in (1, 5, 4)))
        _sign_in(web, "/ems", "tsukuba-fire", "medic", "paramedic")
        p = web.page
        p.get_by_role("button", name="事案を開く").click()
        p.wait_for_url("**/ems/incidents/*")
        taken: Path = orl_image(1, 2)
        p.get_by_label("顔写真（撮影または選択）").set_input_files(str(taken))
        p.get_by_label("見た目の年齢：下限（任意）").fill("60")
        p.get_by_label("見た目の年齢：上限（任意）").fill("90")
        p.get_by_role("button", name="顔で検索").click()
        p.wait_for_url("**done=searched")
        assert story.HANAKO.given not in p.locator("main").inner_text()
        assert "一致度 0.9" in p.locator("main").inner_text()
        p.wait_for_function(
            "[...document.querySelectorAll('.face-compare img')].every(i => i.complete)"
        )
        assert _images_shown(web) == 2  # the taken photo and the reference photo
        shoot(web, "20-ems-face-candidates")
        check_accessibility(web, "20-ems-face-candidates")
        p.get_by_label("2枚の写真を見比べ、同じ人であると確認しました").check()
        p.get_by_role("button", name="写真で確認").click()
        p.wait_for_url("**done=confirmed")
        summary = p.locator(".ems-summary").inner_text()
        assert f"{story.HANAKO.family} {story.HANAKO.given}" in summary
        assert p.locator(".face-compare").count() == 0
        shoot(web, "21-ems-face-confirmed")
        p.get_by_role("button", name="終了する（救急時の情報は見られなくなります）").click()
        p.wait_for_url("**done=closed")
        p.get_by_role("button", name="サインアウト").click()
        p.wait_for_url("**/auth/staff/login*")

    def test_the_shelter_desk_checks_the_resident_in(self, web: App) -> None:
        _run(
            web,
            "from phr.db import transaction\n"
            "from consent.identity.clients import register_organization\n"
            "from phr_modules.shelter.demo import seed_pia\n"
            "with transaction() as s:\n"
            "    register_organization(s, id='shelter-1', name='第1避難所', kind='shelter')\n"
            "    seed_pia(s)\n",
        )
        _sign_in(web, "/modules/shelter/", "shelter-1", "desk", "shelter_staff")
        p = web.page
        shoot(web, "22-shelter-home")
        check_accessibility(web, "22-shelter-home")
        p.get_by_role("button", name="新しい受付を始める").click()
        p.wait_for_url("**/modules/shelter/intakes/*")
        p.get_by_label("姓", exact=True).fill(story.HANAKO.family)
        p.get_by_label("名", exact=True).fill(story.HANAKO.given)
        p.get_by_label("生年月日", exact=True).fill(story.HANAKO.birth)
        p.get_by_label("性別", exact=True).select_option("female")
        p.get_by_role("button", name="検索", exact=True).click()
        p.wait_for_url("**done=searched")
        assert story.HANAKO.given not in p.locator("main").inner_text()
        p.get_by_label("本人・同行者から聞いた生年月日").fill(story.HANAKO.birth)
        p.get_by_role("button", name="生年月日で確認して受付").click()
        p.wait_for_url("**done=checked_in")
        view = p.locator(".ems-summary").inner_text()
        assert f"{story.HANAKO.family} {story.HANAKO.given}" in view
        assert "継続すべき薬" in view and "アムロジピン" in view
        shoot(web, "23-shelter-evacuee")
        check_accessibility(web, "23-shelter-evacuee")
        p.get_by_role("link", name="避難所の一覧").click()
        p.wait_for_url("**/modules/shelter/")
        assert f"{story.HANAKO.family} {story.HANAKO.given}" in p.locator("table").inner_text()
        shoot(web, "24-shelter-list")
        check_accessibility(web, "24-shelter-list")
        no_csp_violations(web)
