"""OAuth scopes of the ZOHO simulator: the scope each URL needs, what a grant's scopes cover, the refusal."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from infra.simulators.zoho.app import create_app
from infra.simulators.zoho.catalog import MODULES
from infra.simulators.zoho.config import ZohoCredentials, ZohoSimConfig
from infra.simulators.zoho.scopes import Need, grants, parse_scopes, required_scope

MISMATCH = {"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message": "invalid oauth scope to access this URL",
            "status": "error"}


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/crm/v8/Products", "ZohoCRM.modules.products.READ"),
        ("GET", "/crm/v2/Sales_Orders/4876876000000000001", "ZohoCRM.modules.salesorders.READ"),
        ("POST", "/crm/v8/Accounts/upsert", "ZohoCRM.modules.accounts.CREATE"),
        ("PUT", "/crm/v8/Products", "ZohoCRM.modules.products.UPDATE"),
        ("DELETE", "/crm/v8/Leads/1", "ZohoCRM.modules.leads.DELETE"),
        ("GET", "/crm/v8/Products/search", "ZohoCRM.modules.products.READ"),
        ("GET", "/crm/v8/Campaigns/deleted", "ZohoCRM.modules.campaigns.READ"),
        ("POST", "/crm/v8/Deliveries", "ZohoCRM.modules.custom.CREATE"),
        ("POST", "/crm/v8/Deals/1/Notes", "ZohoCRM.modules.notes.CREATE"),
        ("POST", "/crm/v8/Deals/1/Attachments", "ZohoCRM.modules.deals.CREATE"),
        ("POST", "/crm/v8/Leads/1/actions/convert", "ZohoCRM.modules.leads.CREATE"),
        ("GET", "/crm/v8/settings/fields", "ZohoCRM.settings.fields.READ"),
        ("GET", "/crm/v8/settings/modules/Products", "ZohoCRM.settings.modules.READ"),
        ("GET", "/crm/v8/users", "ZohoCRM.users.READ"),
        ("GET", "/crm/v8/org", "ZohoCRM.org.READ"),
        ("POST", "/crm/v8/actions/watch", "ZohoCRM.notifications.CREATE"),
        ("PATCH", "/crm/v8/actions/watch", "ZohoCRM.notifications.UPDATE"),
    ],
)
def test_each_url_needs_its_scope(method: str, path: str, needed: str) -> None:
    assert str(required_scope(method, path, MODULES)) == needed


def test_unknown_modules_and_paths_are_left_to_the_routes() -> None:
    assert required_scope("GET", "/crm/v8/Nope", MODULES) is None
    assert required_scope("GET", "/oauth/v2/token", MODULES) is None


@pytest.mark.parametrize(
    ("scopes", "need", "granted"),
    [
        ("ZohoCRM.modules.ALL", Need("modules", "products", "UPDATE"), True),
        ("zohocrm.modules.all", Need("modules", "custom", "DELETE"), True),  # case does not matter
        ("ZohoCRM.modules.READ", Need("modules", "leads", "READ"), True),  # the family, every module
        ("ZohoCRM.modules.READ", Need("modules", "leads", "CREATE"), False),
        ("ZohoCRM.modules.leads.READ", Need("modules", "leads", "READ"), True),
        ("ZohoCRM.modules.leads.READ", Need("modules", "accounts", "READ"), False),
        ("ZohoCRM.modules.products.WRITE", Need("modules", "products", "UPDATE"), True),
        ("ZohoCRM.modules.products.WRITE", Need("modules", "products", "READ"), False),
        ("ZohoCRM.settings.ALL", Need("settings", "fields", "READ"), True),
        ("ZohoCRM.settings.modules.READ", Need("settings", "fields", "READ"), False),
        ("ZohoCRM.users.ALL", Need("users", None, "READ"), True),
        ("ZohoCRM.modules.ALL ZohoCRM.org.READ", Need("users", None, "READ"), False),
    ],
)
def test_what_a_grant_covers(scopes: str, need: Need, granted: bool) -> None:
    assert grants(parse_scopes(scopes), need) is granted


def test_scopes_are_read_from_commas_or_spaces_and_checked() -> None:
    assert parse_scopes("ZohoCRM.modules.ALL, ZohoCRM.users.READ ZohoCRM.modules.ALL") == (
        "ZohoCRM.modules.ALL", "ZohoCRM.users.READ")
    with pytest.raises(ValueError, match="ZohoBooks.invoices.READ"):
        parse_scopes("ZohoCRM.modules.ALL,ZohoBooks.invoices.READ")


def test_a_token_carries_its_grants_scopes_and_a_call_outside_them_is_refused() -> None:
    config = ZohoSimConfig(ZohoCredentials("1000.NARROW", "secret", "1000.narrow.refresh"), None,
                           scopes=("ZohoCRM.modules.products.ALL", "ZohoCRM.users.READ"))
    with TestClient(create_app(config)) as sim:
        minted = sim.post("/oauth/v2/token", data={"grant_type": "refresh_token", "client_id": "1000.NARROW",
                                                   "client_secret": "secret", "refresh_token": "1000.narrow.refresh"})
        assert minted.json()["scope"] == "ZohoCRM.modules.products.ALL ZohoCRM.users.READ"
        auth = {"Authorization": f"Zoho-oauthtoken {minted.json()['access_token']}"}
        assert sim.post("/crm/v8/Products", headers=auth,
                        json={"data": [{"Product_Name": "喉罩", "Kingdee_ID": "K-1"}]}).status_code == 201
        assert sim.get("/crm/v8/users", params={"type": "CurrentUser"}, headers=auth).status_code == 200
        before = sim.get("/__sim/limits").json()["credits_used"]
        for method, path in (("GET", "/crm/v8/Accounts"), ("GET", "/crm/v8/org"),
                             ("GET", "/crm/v8/settings/fields?module=Products")):
            refused = sim.request(method, path, headers=auth)
            assert (refused.status_code, refused.json()) == (401, MISMATCH)
        assert sim.get("/__sim/limits").json()["credits_used"] == before, "a refused call costs no credit"
        log = sim.get("/__sim/requests", params={"path_regex": "/org$"}).json()["requests"]
        assert log[-1]["scope_needed"] == "ZohoCRM.org.READ"
