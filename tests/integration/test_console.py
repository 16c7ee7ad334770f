"""The web console end to end: ``cdchub console`` on the real stack, driven by headless Chromium like a person.

A material with a Chinese name is captured and synced to the CRM simulator; the test signs in (after a wrong
password is refused), searches the material's code and reads the timeline and the picture of its path, checks on a
screenshot that the Chinese name is drawn in real glyphs (not empty boxes), replays one real dead letter from its row
and a flow's others through the dry-run preview and its confirmation, reads the flow health (every flow of the
runtime), and checks the refusals (no session, no CSRF token) and that no secret is in any page.
"""

from __future__ import annotations

import socket
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from cdchub.flow_status import status_report
from flows.dataflows import FLOWS
from infra.simulators.kingdee.erp import insert_material
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


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of a screenshot (8-bit RGB or RGBA, not interlaced: what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        chunk, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        if chunk == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 4 if color == 6 else 3
        elif chunk == b"IDAT":
            data += body
        pos += 12 + length
    raw, stride, rows = zlib.decompress(data), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        kind: int = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # the PNG filters
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line[j] for j in range(0, stride, channels)))  # the red channel is enough: dark ink
        previous = line
    return width, height, rows


def glyph_inks(png: bytes, characters: int) -> list[int]:
    """How many dark pixels each of ``characters`` equal-width cells of a screenshot holds (CJK glyphs are
    full-width, so a string of them splits into cells of one character each)."""
    width, _, rows = png_pixels(png)
    cell = width / characters
    return [sum(1 for row in rows for x in range(int(i * cell), int((i + 1) * cell)) if row[x] < 128)
            for i in range(characters)]


def real_glyphs(png: bytes, characters: int) -> bool:
    """Drawn in real glyphs, not as "tofu" (the same empty box for every character the fonts lack, or nothing):
    distinct characters leave very different amounts of ink (一 a stroke, 罩 a dense square)."""
    inks = glyph_inks(png, characters)
    return min(inks) > 0 and max(inks) >= 2 * min(inks) and len(set(inks)) >= characters - 1


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
    # the picture of its path: Kingdee → Kafka → the materials flow → the CRM, the write's latency on the last edge
    boxes = {str(g.get_attribute("data-node")) for g in
             browser.find_elements(By.CSS_SELECTOR, "#trace-picture g.node")}
    assert {f"topic:{env.topic('kingdee.material')}", "flow:materials", "target:materials:zoho"} <= boxes, boxes
    assert any(b.startswith("source:kingdee:") for b in boxes), boxes
    edge = browser.find_element(By.CSS_SELECTOR, '#trace-picture g.edge[data-to="target:materials:zoho"]')
    assert edge.text.endswith(" ms"), edge.text

    # the Chinese name is drawn in glyphs, not boxes: a screenshot of it against one of characters no font has
    name = browser.find_element(By.CSS_SELECTOR, '#timeline .kv[data-key="name"] .value')
    assert name.text == "一次性使用麻醉面罩"
    shot = name.screenshot_as_png
    assert real_glyphs(shot, len(name.text)), glyph_inks(shot, len(name.text))
    no_font = "".join(chr(0xE000 + i) for i in range(9))  # private use: tofu everywhere, the detector's control
    browser.get("data:text/html;charset=utf-8," + quote(f'<link rel="stylesheet" href="{url}/console.css">'
                                                        f'<span id="control">{no_font}</span>'))
    control = browser.find_element(By.ID, "control")
    assert not real_glyphs(control.screenshot_as_png, len(no_font)), "the check tells boxes from glyphs"

    # two real dead letters (the CRM refuses two upserts): one replayed from its row; the flow's others only after
    # the dry-run preview showed what would be written and its confirmation was posted
    env.zoho.fault(path_regex=".*/Products/upsert", status=400, count=2,
                   body={"code": "INVALID_DATA", "details": {"api_name": "Product_Name"},
                         "message": "invalid data", "status": "error"})
    first = insert_material(env.kingdee, "1.31.0002", "呼吸回路", "成人")
    wait_for(lambda: env.dead_letters("materials"), 60, "the refused material dead-lettered")
    second = insert_material(env.kingdee, "1.31.0003", "呼吸过滤器", "成人")
    wait_for(lambda: len(env.dead_letters("materials")) == 2, 60, "the second refused material dead-lettered")
    text = page("/dead-letters?flow=materials")
    rows = browser.find_elements(By.CSS_SELECTOR, "#letters tr.letter")
    row = next(r for r in rows if r.find_element(By.CSS_SELECTOR, "td.key").text == str(first))
    assert "INVALID_DATA" in row.text and "2 dead letters" in text
    row.find_element(By.CSS_SELECTOR, "button.replay").click()
    wait_for(lambda: browser.find_elements(By.ID, "notice"), 30, "the replay's outcome")
    assert "replayed" in browser.find_element(By.ID, "notice").text
    sources.append(browser.page_source)
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#letters tr.letter")
               if r.find_element(By.CSS_SELECTOR, "td.key").text == str(first))
    assert row.find_element(By.CSS_SELECTOR, ".mark").text == "replayed" and not row.find_elements(By.TAG_NAME,
                                                                                                    "button")
    wait_for(lambda: str(first) in env.zoho.by_kingdee_id(), 60, "the replayed material in the CRM")

    browser.find_element(By.CSS_SELECTOR, "button.replay-flow").click()  # "Replay all of materials…"
    wait_for(lambda: browser.find_elements(By.ID, "preview-summary"), 120, "the dry-run preview")
    sources.append(browser.page_source)
    assert browser.find_element(By.ID, "would-replay").text == "1", "the one letter not replayed yet"
    outcomes = {r.find_element(By.CSS_SELECTOR, "td.key").text: str(r.find_element(By.CSS_SELECTOR, "td.outcome").text)
                for r in browser.find_elements(By.CSS_SELECTOR, "tr.preview-letter")}
    assert outcomes[str(second)].startswith("would replay") and outcomes[str(first)].startswith("skipped")
    counts = browser.find_element(By.ID, "dry-run-counts").text
    assert "1 would change" in counts, counts
    diff = browser.find_element(By.ID, "dry-run-diff").text
    assert "create" in diff and "呼吸过滤器" in diff, diff
    assert str(second) not in env.zoho.by_kingdee_id(), "a preview writes nothing"
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: browser.find_elements(By.ID, "notice"), 30, "the confirmed replay's outcome")
    assert "replayed" in browser.find_element(By.ID, "notice").text
    wait_for(lambda: str(second) in env.zoho.by_kingdee_id(), 60, "the confirmed material in the CRM")

    # flow health: every flow of the runtime; the materials flow with its process, what it synced, its dead letters
    def synced() -> int:
        page("/flows")
        cells = browser.find_elements(By.CSS_SELECTOR, 'tr.flow[data-flow="materials"] td.synced')
        return int(cells[0].text) if cells else 0

    wait_for(lambda: synced() >= 3, 30, "the three materials counted on the flow-health page")
    shown = [r.get_attribute("data-flow") for r in browser.find_elements(By.CSS_SELECTOR, "#flows tr.flow")]
    assert shown == list(FLOWS), shown
    flow_row = browser.find_element(By.CSS_SELECTOR, 'tr.flow[data-flow="materials"]')
    assert flow_row.find_element(By.CSS_SELECTOR, "td.dead-letters").text == "2"
    assert flow_row.find_element(By.CSS_SELECTOR, "td.liveness").text == "alive"
    assert flow_row.find_element(By.CSS_SELECTOR, "td.process").text.isdigit()
    assert flow_row.find_elements(By.CSS_SELECTOR, "td.rate svg.spark polyline"), "writes over the last hour"
    assert flow_row.find_elements(By.CSS_SELECTOR, "td.lag svg.spark polyline"), "lag over the last hour"
    assert browser.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    report = status_report(env.settings)  # what `cdchub status` prints below the stack
    for flow in FLOWS:
        assert any(line.startswith(f"{flow} ") for line in report), (flow, report)
    (materials,) = [line for line in report if line.startswith("materials ")]
    assert " alive " in materials and "synced      3" in materials and "dead letters 2" in materials, materials

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
