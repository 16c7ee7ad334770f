"""The ZOHO CRM simulator, run as a real process and driven over HTTP the way a connector drives the real API.

One simulator process serves the module (state reset before each test); the restart test runs its own pair of
processes on a shared state dir.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.simulators.common.process import SimulatorProcess

pytestmark = pytest.mark.integration

CLIENT_ID = "1000.TESTCLIENT"
CLIENT_SECRET = "test-secret"
REFRESH_TOKEN = "1000.refresh.token"
ORG_TZ = timezone(timedelta(hours=8))
INVALID_TOKEN_BODY = {
    "code": "INVALID_TOKEN",
    "details": {},
    "message": "invalid oauth token",
    "status": "error",
}


# -- fixtures and helpers ------------------------------------------------------------------------------------
def _write_secrets(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in (
        ("zoho_client_id", CLIENT_ID),
        ("zoho_client_secret", CLIENT_SECRET),
        ("zoho_refresh_token", REFRESH_TOKEN),
    ):
        (folder / name).write_text(value + "\n")
    return folder


def _start(state_dir: Path, secrets_dir: Path, *extra: str) -> SimulatorProcess:
    args = ["--state-dir", str(state_dir), "--secrets-dir", str(secrets_dir), *extra]
    return SimulatorProcess(
        "infra.simulators.zoho", args=args, log_path=state_dir.parent / "zoho-sim.log"
    ).start()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    root = tmp_path_factory.mktemp("zoho-sim")
    process = _start(root / "state", _write_secrets(root / "secrets"))
    yield process
    process.stop()


@pytest.fixture
def admin(sim: SimulatorProcess) -> Iterator[httpx.Client]:
    """The ``/__sim/`` control API, after a reset: no records, tokens, faults or log; configured limits."""
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        assert client.post("/__sim/reset").status_code == 200
        yield client


def mint(base_url: str, **overrides: str) -> httpx.Response:
    params = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        **overrides,
    }
    return httpx.post(f"{base_url}/oauth/v2/token", data=params, timeout=10)


def access_token(base_url: str) -> str:
    response = mint(base_url)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def api(sim: SimulatorProcess, admin: httpx.Client) -> Iterator[httpx.Client]:
    """A client of ``/crm/v8`` holding a fresh access token, like a connector after its first refresh."""
    headers = {"Authorization": f"Zoho-oauthtoken {access_token(sim.base_url)}"}
    with httpx.Client(base_url=f"{sim.base_url}/crm/v8", headers=headers, timeout=10) as client:
        yield client


def product(kingdee_id: str, **fields: Any) -> dict[str, Any]:
    return {"Product_Name": f"Product {kingdee_id}", "Kingdee_ID": kingdee_id, **fields}


def upsert(api: httpx.Client, records: list[dict[str, Any]]) -> httpx.Response:
    return api.post("/Products/upsert", json={"data": records, "duplicate_check_fields": ["Kingdee_ID"]})


def stored(admin: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = admin.get("/__sim/records/Products", params=params)
    assert response.status_code == 200
    return list(response.json()["records"])


def wait_until_idle(admin: httpx.Client, timeout_s: float = 10.0) -> None:
    """Wait until no API call is in flight (a held-back response would take a concurrency slot)."""
    deadline = time.monotonic() + timeout_s
    while admin.get("/__sim/limits").json()["in_flight"]:
        assert time.monotonic() < deadline, "simulator still busy"
        time.sleep(0.05)


def zoho_time(moment: datetime) -> str:
    return moment.astimezone(ORG_TZ).isoformat(timespec="seconds")


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# -- OAuth ---------------------------------------------------------------------------------------------------
def test_token_refresh_answers_like_the_accounts_server(sim: SimulatorProcess, admin: httpx.Client) -> None:
    response = mint(sim.base_url)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["api_domain"] == sim.base_url
    assert body["access_token"].startswith("1000.")
    # Query parameters work as well as a form body.
    by_query = httpx.post(
        f"{sim.base_url}/oauth/v2/token",
        params={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
    )
    assert by_query.status_code == 200 and by_query.json()["access_token"] != body["access_token"]


def test_wrong_credentials_are_refused_with_http_200(sim: SimulatorProcess, admin: httpx.Client) -> None:
    assert mint(sim.base_url, client_secret="wrong").json() == {"error": "invalid_client"}
    assert mint(sim.base_url, client_id="1000.UNKNOWN").json() == {"error": "invalid_client"}
    wrong_refresh = mint(sim.base_url, refresh_token="1000.nope")
    assert (wrong_refresh.status_code, wrong_refresh.json()) == (200, {"error": "invalid_code"})


def test_a_refresh_token_mints_at_most_ten_tokens_per_ten_minutes(
    sim: SimulatorProcess, admin: httpx.Client
) -> None:
    statuses = [mint(sim.base_url).status_code for _ in range(10)]
    eleventh = mint(sim.base_url)

    assert statuses == [200] * 10
    assert eleventh.status_code == 400
    assert eleventh.json() == {
        "error": "Access Denied",
        "error_description": (
            "You have made too many requests continuously. Please try again after some time."
        ),
    }
    # Expiring tokens does not give mints back.
    admin.post("/__sim/expire-tokens")
    assert mint(sim.base_url).status_code == 400


def test_api_calls_need_a_valid_unexpired_token(sim: SimulatorProcess, admin: httpx.Client) -> None:
    url = f"{sim.base_url}/crm/v8/Products?fields=Product_Name"
    token = access_token(sim.base_url)

    missing = httpx.get(url)
    wrong = httpx.get(url, headers={"Authorization": "Zoho-oauthtoken 1000.not.a.token"})
    bearer = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    valid = httpx.get(url, headers={"Authorization": f"Zoho-oauthtoken {token}"})
    assert admin.post("/__sim/expire-tokens").json() == {"expired": 1}
    expired = httpx.get(url, headers={"Authorization": f"Zoho-oauthtoken {token}"})

    for refused in (missing, wrong, bearer, expired):
        assert (refused.status_code, refused.json()) == (401, INVALID_TOKEN_BODY)
    assert valid.status_code == 204


# -- writes --------------------------------------------------------------------------------------------------
def test_upsert_inserts_then_updates_by_kingdee_id(api: httpx.Client, admin: httpx.Client) -> None:
    first = upsert(api, [product("K-100", Unit_Price=12.5, Product_Active=True)])
    second = upsert(api, [product("K-100", Unit_Price=13.75, Product_Name="Renamed")])

    assert first.status_code == 201
    inserted = first.json()["data"][0]
    assert inserted["code"] == "SUCCESS" and inserted["status"] == "success"
    assert (inserted["action"], inserted["duplicate_field"], inserted["message"]) == (
        "insert",
        None,
        "record added",
    )
    details = inserted["details"]
    assert set(details) == {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By"}
    assert details["Modified_By"]["name"] == "CDC Hub Integration"
    assert details["Created_Time"].endswith("+08:00")

    assert second.status_code == 200
    updated = second.json()["data"][0]
    assert (updated["action"], updated["duplicate_field"], updated["message"]) == (
        "update",
        "Kingdee_ID",
        "record updated",
    )
    assert updated["details"]["id"] == details["id"]

    record = api.get(f"/Products/{details['id']}").json()["data"][0]
    assert (record["Product_Name"], record["Unit_Price"], record["Product_Active"]) == (
        "Renamed",
        13.75,
        True,
    )
    assert record["Modified_By"] == details["Modified_By"]
    assert len(stored(admin)) == 1


def test_insert_and_update_by_id(api: httpx.Client) -> None:
    created = api.post("/Products", json={"data": [product("K-1"), product("K-2")]})
    ids = [r["details"]["id"] for r in created.json()["data"]]
    by_body = api.put("/Products", json={"data": [{"id": ids[0], "Qty_in_Stock": 4.5}, {"id": "123"}]})
    by_path = api.put(f"/Products/{ids[1]}", json={"data": [{"Description": "long text " * 100}]})

    assert created.status_code == 201
    assert by_body.status_code == 207
    ok, unknown = by_body.json()["data"]
    assert ok["message"] == "record updated" and "action" not in ok
    assert unknown["code"] == "INVALID_DATA" and unknown["details"]["api_name"] == "id"
    assert by_path.status_code == 200
    assert api.get(f"/Products/{ids[0]}").json()["data"][0]["Qty_in_Stock"] == 4.5


def test_more_than_100_records_per_call_is_limit_exceeded(api: httpx.Client, admin: httpx.Client) -> None:
    too_many = upsert(api, [product(f"K-{i}") for i in range(101)])
    inserted = api.post("/Products", json={"data": [product(f"K-{i}") for i in range(101)]})
    exactly_100 = upsert(api, [product(f"K-{i}") for i in range(100)])

    for refused in (too_many, inserted):
        assert refused.status_code == 400
        assert refused.json()["code"] == "LIMIT_EXCEEDED"
        assert refused.json()["status"] == "error"
    assert exactly_100.status_code == 201
    assert len(stored(admin)) == 100


def test_per_record_errors_come_back_in_input_order(api: httpx.Client, admin: httpx.Client) -> None:
    records = [
        product("K-ok"),
        {"Kingdee_ID": "K-no-name"},
        product("K-long", Specification="x" * 256),
        product("K-bool", Product_Active="true"),
        product("K-price", Unit_Price="twelve"),
        product("K-255", Specification="x" * 255, Unknown_Field="ignored"),
    ]
    mixed = upsert(api, records)
    all_bad = api.post("/Products", json={"data": [{"Kingdee_ID": "K-x"}]})

    assert mixed.status_code == 207
    results = mixed.json()["data"]
    assert [r["status"] for r in results] == ["success", "error", "error", "error", "error", "success"]
    assert results[1] == {
        "code": "MANDATORY_NOT_FOUND",
        "details": {"api_name": "Product_Name", "json_path": "$.data[1].Product_Name"},
        "message": "required field not found",
        "status": "error",
    }
    assert results[2]["code"] == "INVALID_DATA"
    assert results[2]["details"]["api_name"] == "Specification"
    assert results[2]["details"]["json_path"] == "$.data[2].Specification"
    assert results[2]["details"]["maximum_length"] == 255
    assert (results[3]["code"], results[3]["details"]["api_name"]) == ("INVALID_DATA", "Product_Active")
    assert (results[4]["code"], results[4]["details"]["api_name"]) == ("INVALID_DATA", "Unit_Price")
    assert all_bad.status_code == 400
    assert all_bad.json()["data"][0]["code"] == "MANDATORY_NOT_FOUND"
    kept = {r["Kingdee_ID"]: r for r in stored(admin)}
    assert set(kept) == {"K-ok", "K-255"}
    assert "Unknown_Field" not in kept["K-255"]


def test_unique_external_key_rejects_a_duplicate_insert(api: httpx.Client) -> None:
    first = api.post("/Products", json={"data": [product("K-dup")]})
    second = api.post("/Products", json={"data": [product("k-DUP", Product_Name="Other")]})

    assert first.status_code == 201
    assert second.status_code == 400
    error = second.json()["data"][0]
    assert error["code"] == "DUPLICATE_DATA"
    assert error["details"]["api_name"] == "Kingdee_ID"
    assert error["details"]["id"] == first.json()["data"][0]["details"]["id"]


def test_upsert_matches_only_the_given_duplicate_check_fields(api: httpx.Client) -> None:
    """With duplicate_check_fields, a new external key inserts even when the name exists; without them the
    system duplicate field (Product_Name) matches first (ZOHO's documented order)."""
    original = upsert(api, [product("K-A", Product_Name="Same name")]).json()["data"][0]
    other = upsert(api, [product("K-B", Product_Name="same NAME")]).json()["data"][0]
    assert other["action"] == "insert"
    assert other["details"]["id"] != original["details"]["id"]

    plain = api.post("/Products/upsert", json={"data": [product("K-C", Product_Name="Unique name")]})
    again = api.post("/Products/upsert", json={"data": [product("K-D", Product_Name="unique NAME")]})
    (first,), (second,) = plain.json()["data"], again.json()["data"]
    assert (second["action"], second["duplicate_field"]) == ("update", "Product_Name")
    assert second["details"]["id"] == first["details"]["id"]


# -- reads ---------------------------------------------------------------------------------------------------
def test_list_needs_fields_from_v3_and_returns_204_when_empty(
    api: httpx.Client, sim: SimulatorProcess
) -> None:
    empty = api.get("/Products", params={"fields": "Product_Name"})
    no_fields = api.get("/Products")
    v2_no_fields = httpx.get(f"{sim.base_url}/crm/v2/Products", headers=api.headers)

    assert (empty.status_code, empty.content) == (204, b"")
    assert no_fields.status_code == 400
    assert no_fields.json() == {
        "code": "REQUIRED_PARAM_MISSING",
        "details": {"param": "fields"},
        "message": "One of the expected parameter is missing",
        "status": "error",
    }
    assert v2_no_fields.status_code == 204


def test_if_modified_since_filters_at_millisecond_precision(api: httpx.Client, admin: httpx.Client) -> None:
    upsert(api, [product("K-1")])
    modified_ms = stored(admin)[0]["$modified_at_ms"]
    second = from_ms(modified_ms).replace(microsecond=0)
    params = {"fields": "Kingdee_ID,Modified_Time", "sort_by": "Modified_Time", "sort_order": "asc"}

    before = api.get(
        "/Products", params=params, headers={"If-Modified-Since": zoho_time(second - timedelta(seconds=1))}
    )
    after = api.get(
        "/Products", params=params, headers={"If-Modified-Since": zoho_time(second + timedelta(seconds=1))}
    )
    bad = api.get("/Products", params=params, headers={"If-Modified-Since": "yesterday"})

    assert before.status_code == 200
    row = before.json()["data"][0]
    assert row["Kingdee_ID"] == "K-1"
    assert row["Modified_Time"] == zoho_time(second)  # shown to the second, with the org's offset
    assert (after.status_code, after.content) == (304, b""), "nothing modified after the header's time: 304"
    assert bad.status_code == 400 and bad.json()["status"] == "error"


def test_pages_and_page_tokens_cover_every_record_once(api: httpx.Client) -> None:
    upsert(api, [product(f"K-{i}") for i in range(7)])
    params = {"fields": "Kingdee_ID", "per_page": "3", "sort_by": "Modified_Time", "sort_order": "asc"}

    seen: list[str] = []
    response = api.get("/Products", params=params)
    pages = 0
    while True:
        body = response.json()
        pages += 1
        seen += [r["Kingdee_ID"] for r in body["data"]]
        assert body["info"]["per_page"] == 3 and body["info"]["count"] == len(body["data"])
        if not body["info"]["more_records"]:
            assert body["info"]["next_page_token"] is None
            break
        response = api.get("/Products", params={"per_page": "3", "fields": "Kingdee_ID",
                                               "page_token": body["info"]["next_page_token"]})  # fmt: skip
    too_deep = api.get("/Products", params={"fields": "Kingdee_ID", "per_page": "200", "page": "11"})

    assert pages == 3
    assert sorted(seen) == sorted(f"K-{i}" for i in range(7))
    assert too_deep.status_code == 400 and too_deep.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
    assert api.get("/Products", params={"fields": "Kingdee_ID", "per_page": "201"}).status_code == 400


def test_deleted_records_are_listed_with_their_deletion_time(api: httpx.Client, admin: httpx.Client) -> None:
    ids = [
        r["details"]["id"]
        for r in upsert(api, [product("K-1"), product("K-2"), product("K-3")]).json()["data"]
    ]
    by_query = api.delete("/Products", params={"ids": f"{ids[0]},{ids[1]},999"})
    by_path = api.delete(f"/Products/{ids[2]}")
    deleted = api.get("/Products/deleted", params={"type": "all"})
    future = zoho_time(datetime.now(UTC) + timedelta(minutes=1))
    none_since = api.get("/Products/deleted", params={"type": "all"}, headers={"If-Modified-Since": future})
    admin.post("/__sim/records/Products/purge")
    permanent = api.get("/Products/deleted", params={"type": "permanent"})
    too_many = api.delete("/Products", params={"ids": ",".join(str(10**18 + i) for i in range(101))})

    assert by_query.status_code == 207
    assert [r["status"] for r in by_query.json()["data"]] == ["success", "success", "error"]
    assert by_query.json()["data"][0] == {
        "code": "SUCCESS",
        "details": {"id": ids[0]},
        "message": "record deleted",
        "status": "success",
    }
    assert by_path.status_code == 200
    rows = {r["id"]: r for r in deleted.json()["data"]}
    assert set(rows) == set(ids)
    assert rows[ids[0]]["type"] == "recycle"
    assert rows[ids[0]]["display_name"] == "Product K-1"
    assert rows[ids[0]]["deleted_by"]["name"] == "CDC Hub Integration"
    assert rows[ids[0]]["deleted_time"].endswith("+08:00")
    assert (none_since.status_code, none_since.content) == (304, b""), "nothing deleted after the header's time"
    assert {r["type"] for r in permanent.json()["data"]} == {"permanent"}
    assert api.get("/Products", params={"fields": "Kingdee_ID"}).status_code == 204
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"


def test_search_criteria_with_escaped_characters(api: httpx.Client) -> None:
    upsert(
        api,
        [
            product("K-1", Product_Name="Bolt (M6, zinc)", Product_Active=True, Unit_Price=3),
            product("K-2", Product_Name="Nut M6", Product_Active=False, Unit_Price=1),
        ],
    )

    def search(criteria: str) -> httpx.Response:
        return api.get("/Products/search", params={"criteria": criteria})

    escaped = search(r"(Product_Name:equals:Bolt \(M6\, zinc\))")
    combined = search("((Kingdee_ID:equals:k-2)and(Product_Active:equals:false))")
    either = search("((Kingdee_ID:equals:K-1)or(Unit_Price:less_than:2))")
    starts = search("(Product_Name:starts_with:nut)")
    nothing = search("(Kingdee_ID:equals:K-404)")
    malformed = search("(Product_Name:equals:Bolt (M6))")
    unknown_field = search("(Colour:equals:red)")

    assert escaped.status_code == 200
    assert [r["Kingdee_ID"] for r in escaped.json()["data"]] == ["K-1"]
    assert [r["Kingdee_ID"] for r in combined.json()["data"]] == ["K-2"]
    assert sorted(r["Kingdee_ID"] for r in either.json()["data"]) == ["K-1", "K-2"]
    assert [r["Kingdee_ID"] for r in starts.json()["data"]] == ["K-2"]
    assert (nothing.status_code, nothing.content) == (204, b"")
    for refused in (malformed, unknown_field):
        assert refused.status_code == 400 and refused.json()["code"] == "INVALID_QUERY"


# -- faults and limits ---------------------------------------------------------------------------------------
def test_injected_500_for_n_calls_then_ok(api: httpx.Client, admin: httpx.Client) -> None:
    rule = {"path_regex": "/crm/.*/Products/upsert", "status": 500, "count": 2}
    assert admin.post("/__sim/faults", json=rule).status_code == 201

    statuses = [upsert(api, [product("K-1")]) for _ in range(3)]

    assert [r.status_code for r in statuses] == [500, 500, 201]
    assert statuses[0].json() == {
        "code": "INTERNAL_ERROR",
        "details": {},
        "message": "Internal Server Error",
        "status": "error",
    }
    assert len(stored(admin)) == 1  # rejected calls changed nothing
    (listed,) = admin.get("/__sim/faults").json()["rules"]
    assert (listed["remaining"], listed["hits"]) == (0, 2)


def test_injected_429_and_write_applied_behind_an_error(api: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/__sim/faults", json={"path_regex": "/Products/upsert$", "status": 429, "count": 1})
    throttled = upsert(api, [product("K-1")])
    admin.post(
        "/__sim/faults", json={"path_regex": "/Products/upsert$", "status": 502, "count": 1, "apply": True}
    )
    failed_but_applied = upsert(api, [product("K-2")])

    assert throttled.status_code == 429
    assert throttled.json()["code"] == "TOO_MANY_REQUESTS"
    assert failed_but_applied.status_code == 502
    assert [r["Kingdee_ID"] for r in stored(admin)] == ["K-2"]


def test_injected_malformed_body_and_timeout(
    sim: SimulatorProcess, api: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/__sim/faults", json={"path_regex": "/Products/upsert$", "malformed": True, "count": 1})
    malformed = upsert(api, [product("K-1")])
    admin.post(
        "/__sim/faults",
        json={"path_regex": "/Products/upsert$", "timeout": True, "timeout_s": 1.5, "count": 1},
    )
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            "/Products/upsert",
            json={"data": [product("K-2")], "duplicate_check_fields": ["Kingdee_ID"]},
            timeout=0.3,
        )

    assert malformed.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)
    # Both writes happened although the client never saw a usable answer.
    assert sorted(r["Kingdee_ID"] for r in stored(admin)) == ["K-1", "K-2"]
    wait_until_idle(admin)


def test_concurrent_calls_beyond_the_limit_get_429(
    sim: SimulatorProcess, api: httpx.Client, admin: httpx.Client
) -> None:
    admin.post(
        "/__sim/faults", json={"path_regex": "^/crm/v8/Products$", "method": "GET", "latency_ms": 1500}
    )

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.base_url), headers=api.headers, timeout=10) as client:
            calls = [client.get("/Products", params={"fields": "Kingdee_ID"}) for _ in range(8)]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(burst())

    refused = [r for r in responses if r.status_code == 429]
    assert sum(r.status_code == 204 for r in responses) == 5
    assert len(refused) == 3
    assert refused[0].json()["code"] == "TOO_MANY_REQUESTS"
    assert refused[0].json()["details"]["reason"] == "concurrency"


def test_credit_budget_header_and_exhaustion(api: httpx.Client, admin: httpx.Client) -> None:
    assert admin.put("/__sim/limits", json={"daily_credits": 40}).status_code == 200
    upsert(api, [product(f"K-{i}") for i in range(100)])  # a 100-record write costs 10 credits
    assert admin.get("/__sim/limits").json()["credits_used"] == 10

    headers: list[str | None] = []
    for _ in range(40):
        response = api.get("/Products", params={"fields": "Kingdee_ID", "per_page": "1"})
        headers.append(response.headers.get("X-API-CREDITS-REMAINING"))
        if response.status_code == 429:
            break

    assert response.status_code == 429
    assert response.json()["details"]["reason"] == "credits"
    assert headers[0] is None  # 11 of 40 used: under half
    assert "19" in headers  # 21 used: past half, the header appears
    assert len(headers) == 31  # 30 calls spend credits 11 … 40, the 31st is refused


# -- state and logs ------------------------------------------------------------------------------------------
def test_state_survives_a_restart(tmp_path: Path) -> None:
    secrets = _write_secrets(tmp_path / "secrets")
    state = tmp_path / "state"
    first = _start(state, secrets)
    try:
        token = access_token(first.base_url)
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        written = httpx.post(
            f"{first.base_url}/crm/v8/Products/upsert",
            headers=headers,
            json={"data": [product("K-keep", Unit_Price=9.99)], "duplicate_check_fields": ["Kingdee_ID"]},
        ).json()["data"][0]["details"]
    finally:
        first.stop()

    second = _start(state, secrets)
    try:
        record = httpx.get(f"{second.base_url}/crm/v8/Products/{written['id']}", headers=headers)
        later = httpx.post(
            f"{second.base_url}/crm/v8/Products", headers=headers, json={"data": [product("K-new")]}
        )
    finally:
        second.stop()

    assert record.status_code == 200  # the token minted before the restart is still valid
    kept = record.json()["data"][0]
    assert (kept["Kingdee_ID"], kept["Unit_Price"]) == ("K-keep", 9.99)
    assert kept["Modified_Time"] == written["Modified_Time"]
    assert int(later.json()["data"][0]["details"]["id"]) > int(written["id"])  # ids are never reused


def test_request_log_proves_batch_sizes_and_a_single_refresh(
    sim: SimulatorProcess, admin: httpx.Client
) -> None:
    """A connector-like loop: batches of ≤ 100, refresh on 401 once, retry the refused batch."""
    tokens = [access_token(sim.base_url)]
    records = [product(f"K-{i}") for i in range(250)]
    with httpx.Client(base_url=f"{sim.base_url}/crm/v8", timeout=10) as client:
        for start in range(0, len(records), 100):
            if start == 100:
                admin.post("/__sim/expire-tokens")
            body = {"data": records[start : start + 100], "duplicate_check_fields": ["Kingdee_ID"]}
            response = client.post(
                "/Products/upsert", json=body, headers={"Authorization": f"Zoho-oauthtoken {tokens[-1]}"}
            )
            if response.status_code == 401:
                tokens.append(access_token(sim.base_url))
                response = client.post(
                    "/Products/upsert", json=body, headers={"Authorization": f"Zoho-oauthtoken {tokens[-1]}"}
                )
            assert response.status_code == 201

    log = admin.get("/__sim/requests").json()["requests"]
    token_calls = [e for e in log if e["path"] == "/oauth/v2/token"]
    upserts = [e for e in log if e["path"].endswith("/Products/upsert")]

    assert len(token_calls) == 2
    assert token_calls[0]["query"] == {}  # form body, not logged; secrets never appear
    assert [e["records"] for e in upserts if e["status"] == 201] == [100, 100, 50]
    assert all(e["records"] is None or e["records"] <= 100 for e in upserts)
    assert [e["status"] for e in upserts] == [201, 401, 201, 201]
    fingerprints = [hashlib.sha256(t.encode()).hexdigest()[:12] for t in tokens]
    assert [e["token"] for e in upserts] == [fingerprints[0], None, fingerprints[1], fingerprints[1]]
    assert len(stored(admin)) == 250


def test_human_edit_shows_another_user_and_apply_times(api: httpx.Client, admin: httpx.Client) -> None:
    record_id = upsert(api, [product("K-1")]).json()["data"][0]["details"]["id"]
    edited = admin.patch(f"/__sim/records/Products/{record_id}", json={"data": {"Unit_Price": 5}})
    record = api.get(f"/Products/{record_id}").json()["data"][0]
    history = admin.get("/__sim/writes/Products").json()["writes"]
    (as_stored,) = stored(admin)

    assert edited.status_code == 200
    assert record["Modified_By"]["name"] == "Sales Rep"
    assert record["Created_By"]["name"] == "CDC Hub Integration"
    assert [(w["action"], w["user"]["name"]) for w in history] == [
        ("insert", "CDC Hub Integration"),
        ("update", "Sales Rep"),
    ]
    assert as_stored["$applied_at_ms"] == history[-1]["applied_at_ms"] >= history[0]["applied_at_ms"]
    assert as_stored["Unit_Price"] == 5


def test_bad_requests_get_zoho_error_shapes(api: httpx.Client) -> None:
    not_json = api.post("/Products", content=b"{not json", headers={"Content-Type": "application/json"})
    no_data = api.post("/Products", json={"records": []})
    unknown_module = api.get("/Widgets", params={"fields": "Name"})
    unknown_path = api.get("/Products/1/Attachments/2/extra")
    bad_check_field = api.post(
        "/Products/upsert", json={"data": [product("K")], "duplicate_check_fields": ["Description"]}
    )

    assert (not_json.status_code, not_json.json()["code"]) == (400, "INVALID_DATA")
    assert no_data.json() == {
        "code": "REQUIRED_PARAM_MISSING",
        "details": {"param": "data"},
        "message": "One of the expected parameter is missing",
        "status": "error",
    }
    assert (unknown_module.status_code, unknown_module.json()["code"]) == (400, "INVALID_MODULE")
    assert (unknown_path.status_code, unknown_path.json()["code"]) == (404, "INVALID_URL_PATTERN")
    assert (bad_check_field.status_code, bad_check_field.json()["code"]) == (400, "INVALID_DATA")
