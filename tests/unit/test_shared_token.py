"""The access token store: one token and one refresh budget for every process of an installation."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.common import shared_state
from connectors.common.token_cache import TokenUnavailable, token_stats
from connectors.zoho.client import ZohoClient
from connectors.zoho.settings import ZohoSettings


class Accounts:
    """ZOHO's accounts server: mints tokens, refuses past ``allow`` mints like ZOHO does (HTTP 400)."""

    def __init__(self, allow: int = 100) -> None:
        self.allow = allow
        self.asked = 0
        self.minted = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            self.asked += 1
            if self.minted >= self.allow:
                return httpx.Response(400, json={"error": "Access Denied", "error_description":
                                                 "You have made too many requests continuously."})
            self.minted += 1
            return httpx.Response(200, json={"access_token": f"t{self.minted}", "expires_in": 3600,
                                             "api_domain": "http://crm.example"})
        if request.headers["Authorization"] == "Zoho-oauthtoken expired":
            return httpx.Response(401, json={"code": "INVALID_TOKEN"})
        return httpx.Response(200, json={"users": [{"id": "1"}]})


SETTINGS = ZohoSettings(accounts_url="http://accounts.example", api_domain="http://crm.example", client_id="c",
                        client_secret=SecretStr("s"), refresh_token=SecretStr("r"))


def client(accounts: Accounts) -> ZohoClient:
    return ZohoClient(SETTINGS, httpx.Client(transport=httpx.MockTransport(accounts)))


@pytest.fixture()
def shared(tmp_path: Path):  # type: ignore[no-untyped-def]
    shared_state.share(tmp_path)
    yield tmp_path
    shared_state.unshare()


def test_processes_share_one_token_through_the_state_dir(shared: Path) -> None:
    accounts = Accounts()
    first, second = client(accounts), client(accounts)  # two processes' clients: nothing shared in memory
    assert first.tokens.token() == second.tokens.token() == "t1"
    assert accounts.asked == 1
    path = next((shared / "tokens").glob("*.json"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the token file is the installation's secret"
    assert "t1" not in str(token_stats(shared)), "status never shows the token"
    assert second.tokens.api_domain == "http://crm.example"


def test_a_refused_refresh_is_not_a_mint_and_no_process_asks_again_before_its_time(shared: Path) -> None:
    accounts = Accounts(allow=0)
    first, second = client(accounts), client(accounts)
    with pytest.raises(TokenUnavailable) as refused:
        first.tokens.token()
    assert refused.value.retry_after and refused.value.retry_after >= 30
    with pytest.raises(TokenUnavailable):
        second.tokens.token()
    assert accounts.asked == 1, "the second process waits for the refusal's time instead of asking"
    (state,) = token_stats(shared).values()
    assert state["mints"] == [] and state["refusals"] == 1


def test_the_budget_of_ten_mints_per_ten_minutes_is_the_installations(shared: Path) -> None:
    accounts = Accounts()
    clients = [client(accounts) for _ in range(12)]
    for c in clients[:10]:
        token = c.tokens.token()
        c.tokens.invalidate(token)  # every one refused by the CRM: each needs a new token
    with pytest.raises(TokenUnavailable) as info:
        clients[10].tokens.token()
    assert accounts.asked == 10, "the 11th mint is not even asked for"
    assert 590 <= (info.value.retry_after or 0) <= 600


def test_a_token_refused_by_the_crm_is_replaced_once_for_everyone(shared: Path) -> None:
    accounts = Accounts()
    a, b = client(accounts), client(accounts)
    assert a.tokens.token() == "t1"
    a.tokens.invalidate("t1")
    assert b.tokens.token() == "t2", "the other process sees the invalidation through the store"
    assert a.tokens.token() == "t2" and accounts.asked == 2


def _mint_in_another_process(state_dir: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    shared_state.share(Path(state_dir))
    out.put(client(Accounts()).tokens.token())


def test_a_token_minted_by_another_process_is_used(shared: Path) -> None:
    out: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    proc = multiprocessing.get_context("fork").Process(target=_mint_in_another_process, args=(str(shared), out))
    proc.start()
    proc.join(30)
    assert out.get(timeout=5) == "t1"
    accounts = Accounts()
    assert client(accounts).tokens.token() == "t1" and accounts.asked == 0
    assert time.time() < next(iter(token_stats(shared).values()))["mints"][0] + 600
