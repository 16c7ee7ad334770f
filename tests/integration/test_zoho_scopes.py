"""cdchub's OAuth scopes against the strict ZOHO simulator: the grant it is given (README, "ZOHO OAuth scopes") is
what the session's simulator gives its client, and a call outside a grant fails once, clearly, without retries."""

from __future__ import annotations

import httpx
import pytest

from connectors.common.retry import RetryPolicy, call_with_retry
from connectors.settings import Settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.scopes import REQUIRED_SCOPES
from connectors.zoho.settings import ZohoSettings
from core.errors import MissingScope
from tests.integration.harness import ZohoSim

pytestmark = pytest.mark.integration


def test_cdchubs_client_is_granted_exactly_the_scopes_it_needs(stack: Settings, zoho_sim: tuple[ZohoSim, str]) -> None:
    _, base = zoho_sim
    z = stack.zoho
    minted = httpx.post(f"{base}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": z.client_id, "client_secret": z.client_secret.get_secret_value(),
        "refresh_token": z.refresh_token.get_secret_value()}).json()  # fmt: skip
    assert minted["scope"].split() == list(REQUIRED_SCOPES)


def test_a_missing_scope_is_one_clear_error_and_no_retry(stack: Settings, zoho_sim: tuple[ZohoSim, str]) -> None:
    sim, base = zoho_sim
    sim.reset()
    grant = {"client_id": "1000.NOUSERS", "client_secret": "no-users", "refresh_token": "1000.no.users",
             "scopes": [s for s in REQUIRED_SCOPES if s != "ZohoCRM.users.READ"]}
    sim.http.post("/__sim/clients", json=grant).raise_for_status()
    settings = ZohoSettings(**{**stack.zoho.model_dump(), "accounts_url": base, "api_domain": base,
                               "client_id": grant["client_id"], "client_secret": grant["client_secret"],
                               "refresh_token": grant["refresh_token"]})
    client = ZohoClient(settings)
    try:
        assert list(client.list_records("Products", ["Product_Name"])) == []  # within the grant: answered
        with pytest.raises(MissingScope) as caught:
            call_with_retry(client.current_user_id, "who am I", RetryPolicy(first_delay_s=0.01, give_up_after_s=5))
    finally:
        client.close()
    assert caught.value.scope == "ZohoCRM.users.READ"
    assert caught.value.url == f"{base}/crm/v8/users"
    assert "ZohoCRM.users.READ" in str(caught.value) and f"{base}/crm/v8/users" in str(caught.value)
    log = sim.requests()
    assert [(r["path"], r["status"]) for r in log if r["path"].endswith("/users")] == [("/crm/v8/users", 401)]
    assert sum(r["path"] == "/oauth/v2/token" for r in log) == 1, "no new token for a scope refusal"
