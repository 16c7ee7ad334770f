"""The ZOHO client on a missing OAuth scope: one clear error naming the scope and the URL, never retried."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from connectors.common.retry import RetryPolicy, call_with_retry
from connectors.zoho.client import ZohoClient
from connectors.zoho.scopes import REQUIRED_SCOPES, scope_for
from connectors.zoho.settings import ZohoSettings
from core.errors import MissingScope, PermanentError

MISMATCH = {"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message": "invalid oauth scope to access this URL",
            "status": "error"}


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "users", "ZohoCRM.users.READ"),
        ("GET", "settings/fields", "ZohoCRM.settings.fields.READ"),
        ("POST", "Products/upsert", "ZohoCRM.modules.products.CREATE"),
        ("PUT", "Sales_Orders", "ZohoCRM.modules.salesorders.UPDATE"),
        ("GET", "Payments/search?criteria=x", "ZohoCRM.modules.custom.READ"),
        ("POST", "Deals/1/Notes", "ZohoCRM.modules.notes.CREATE"),
        ("GET", "Deals/1/Attachments", "ZohoCRM.modules.deals.READ"),
        ("POST", "actions/watch", "ZohoCRM.notifications.CREATE"),
    ],
)
def test_the_scope_a_call_needs(method: str, path: str, scope: str) -> None:
    assert scope_for(method, path) == scope


def test_the_required_scopes_are_zoho_scopes() -> None:
    assert all(s.startswith("ZohoCRM.") and s.split(".")[-1] in ("ALL", "READ") for s in REQUIRED_SCOPES)


def test_a_scope_mismatch_names_the_scope_and_url_and_is_not_retried() -> None:
    calls: list[str] = []

    def crm(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(401, json=MISMATCH)

    settings = ZohoSettings(accounts_url="http://crm", api_domain="http://crm", client_secret=SecretStr("s"),
                            refresh_token=SecretStr("r"))
    client = ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))
    with pytest.raises(MissingScope) as caught:
        call_with_retry(client.current_user_id, "who am I", RetryPolicy(first_delay_s=0.001, give_up_after_s=5))
    error = caught.value
    assert isinstance(error, PermanentError) and error.code == "OAUTH_SCOPE_MISMATCH"
    assert error.scope == "ZohoCRM.users.READ" and error.url == "http://crm/crm/v8/users"
    assert "ZohoCRM.users.READ" in str(error) and "http://crm/crm/v8/users" in str(error)
    assert calls == ["/oauth/v2/token", "/crm/v8/users"], "one call, no retry, no second token"
