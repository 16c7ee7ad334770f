"""The web console end to end: ``cdchub console`` on the real stack, driven by headless Chromium like a person.

A material with a Chinese name is captured and synced to the CRM simulator; the test signs in (after a wrong
password is refused), searches the material's code and reads the timeline, replays a real dead letter from the
page, reads the flow health, and checks the refusals (no session, no CSRF token) and that no secret is in any page.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from connectors.kingdee.demo_data import insert_material
from infra.stack.browser import ensure_chromium
from tests.integration.harness import IsolatedEnv, wait_for

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900")


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_console_traces_a_synced_document_replays_a_dead_letter_and_shows_flow_health(
        env: IsolatedEnv, browser: webdriver.Chrome) -> None:
    mid = insert_material(env.kingdee, "1.31.0001", "一次性使用麻醉面罩", "成人 4#")
    env.capture()
    env.flow("materials")
    password = uuid.uuid4().hex
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env.env["CDCHUB_CONSOLE__PASSWORD"] = password
    env.spawn("console", "console", "--port", str(port))
    wait_for(lambda: str(mid) in env.zoho.by_kingdee_id(), 60, "the material in the CRM")
    crm_id = env.zoho.by_kingdee_id()[str(mid)]["id"]
    wait_for(lambda: console_up(url), 30, "the console listening")
    sources: list[str] = []

    def page(path: str) -> str:
        browser.get(url + path)
        sources.append(browser.page_source)
        return browser.find_element(By.TAG_NAME, "body").text

    def sign_in(pw: str) -> None:
        browser.find_element(By.ID, "user").send_keys("cdchub")
        browser.find_element(By.ID, "password").send_keys(pw)
        browser.find_element(By.ID, "sign-in").click()

    # no session: the page sends the browser to sign in; a wrong password is refused, the right one lets it in
    page("/trace")
    assert "/login" in browser.current_url
    sign_in("not-the-password")
    (refused,) = wait_for(lambda: browser.find_elements(By.ID, "login-error"), 10, "the refusal, once its page loads")
    assert "Wrong user or password" in refused.text
    sources.append(browser.page_source)
    sign_in(password)
    wait_for(lambda: browser.current_url.startswith(f"{url}/trace"), 10, "signed in, back on the trace page")
    cookie = browser.get_cookie("cdchub_console")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # search the material's code: its captured version and the CRM write, with the CRM id and the Chinese name
    browser.find_element(By.ID, "term").send_keys("1.31.0001")
    browser.find_element(By.ID, "search").click()
    wait_for(lambda: browser.find_elements(By.ID, "timeline"), 30, "the timeline")
    sources.append(browser.page_source)
    hops = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#timeline li.hop")]
    captured = [h for h in hops if "captured (r)" in h]
    assert captured and "一次性使用麻醉面罩" in captured[0] and "kingdee" in captured[0], hops
    writes = [h for h in hops if "materials: synced" in h]
    assert writes and crm_id in writes[-1] and "latency_ms" in writes[-1], hops
    assert [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#documents td.target-id")] == [crm_id]

    # a real dead letter (the CRM refuses one upsert), listed, replayed from the page, then marked replayed
    env.zoho.fault(path_regex=".*/Products/upsert", status=400, count=1,
                   body={"code": "INVALID_DATA", "details": {"api_name": "Product_Name"},
                         "message": "invalid data", "status": "error"})
    refused = insert_material(env.kingdee, "1.31.0002", "呼吸回路", "成人")
    wait_for(lambda: env.dead_letters("materials"), 60, "the refused material dead-lettered")
    text = page("/dead-letters?flow=materials")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#letters tr.letter")
    assert row.find_element(By.CSS_SELECTOR, "td.key").text == str(refused) and "INVALID_DATA" in row.text
    assert "1 dead letters" in text
    row.find_element(By.CSS_SELECTOR, "button.replay").click()
    wait_for(lambda: browser.find_elements(By.ID, "notice"), 30, "the replay's outcome")
    assert "replayed" in browser.find_element(By.ID, "notice").text
    sources.append(browser.page_source)
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#letters tr.letter")
    assert row.find_element(By.CSS_SELECTOR, ".mark").text == "replayed" and not row.find_elements(By.TAG_NAME,
                                                                                                    "button")
    wait_for(lambda: str(refused) in env.zoho.by_kingdee_id(), 60, "the replayed material in the CRM")

    # flow health: the materials flow with what it synced and its dead letter
    def synced() -> int:
        page("/flows")
        cells = browser.find_elements(By.CSS_SELECTOR, 'tr.flow[data-flow="materials"] td.synced')
        return int(cells[0].text) if cells else 0

    wait_for(lambda: synced() >= 2, 30, "both materials counted on the flow-health page")
    flow_row = browser.find_element(By.CSS_SELECTOR, 'tr.flow[data-flow="materials"]')
    assert flow_row.find_element(By.CSS_SELECTOR, "td.dead-letters").text == "1"

    # refusals: no session, and a session's POST without its CSRF token
    anonymous = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    assert anonymous.get("/api/flows").status_code == 401
    assert anonymous.get("/flows").headers["location"].startswith("/login")
    assert anonymous.post("/dead-letters/replay", data={"flow": "materials"}).status_code == 401
    signed_in = httpx.Client(base_url=url, follow_redirects=False, timeout=30,
                             cookies={"cdchub_console": cookie["value"]})
    assert signed_in.get("/api/flows").status_code == 200
    api_trace = signed_in.get("/api/trace", params={"term": "1.31.0001"})
    assert api_trace.headers["content-type"].startswith("application/json")
    assert "一次性使用麻醉面罩" in api_trace.text and crm_id in api_trace.text
    sources.append(api_trace.text)
    assert anonymous.get("/login").headers["content-type"] == "text/html; charset=utf-8"
    assert signed_in.post("/dead-letters/replay", data={"flow": "materials"}).status_code == 403
    assert signed_in.post("/dead-letters/replay", data={"flow": "materials", "csrf": "x"}).status_code == 403

    # no secret in any page it showed
    s = env.settings
    secrets = [password, s.zoho.client_secret.get_secret_value(), s.zoho.refresh_token.get_secret_value(),
               s.kingdee_db.password.get_secret_value()]
    assert all(secrets[:3]), "the stack's secrets are set (else this check would prove nothing)"
    assert len(sources) >= 5
    for source in sources:
        for secret in filter(None, secrets):
            assert secret not in source

    # signing out ends the session: the same cookie no longer opens a page
    page("/trace")
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_for(lambda: "/login" in browser.current_url, 10, "signed out")
    assert signed_in.get("/api/flows").status_code == 401
