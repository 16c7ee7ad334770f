"""The company's people, acting through the systems' own APIs as their tools do: a sales rep through the ZOHO CRM REST
API with her own OAuth client, the ERP clerk through the Kingdee WebAPI, approvers in the OA, employees in
Huilianyi.  Nothing here writes a database or calls a flow."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class CrmPerson:
    id: str
    name: str
    email: str


class CrmUser:
    """A CRM user's own app: OAuth refresh-token grant on the accounts server, then ``/crm/v8`` calls."""

    def __init__(self, base_url: str, person: CrmPerson) -> None:
        self.base_url = base_url
        self.person = person
        self.client_id = f"1000.REP{uuid.uuid4().hex[:24].upper()}"
        self.client_secret = uuid.uuid4().hex
        self.refresh_token = f"1000.{uuid.uuid4().hex}.{uuid.uuid4().hex}"
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self._token: tuple[str, float] | None = None

    def register(self) -> CrmUser:
        """The org admin registers the rep's app (the simulator's stand-in for ZOHO's API console)."""
        self.http.post("/__sim/clients", json={
            "client_id": self.client_id, "client_secret": self.client_secret, "refresh_token": self.refresh_token,
            "user_name": self.person.name, "user_id": self.person.id, "user_email": self.person.email,
        }).raise_for_status()
        return self

    def _auth(self) -> dict[str, str]:
        if self._token is None or self._token[1] < time.monotonic():
            resp = self.http.post("/oauth/v2/token", data={
                "grant_type": "refresh_token", "client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token})
            body = resp.json()
            self._token = (str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 3600)) - 60)
        return {"Authorization": f"Zoho-oauthtoken {self._token[0]}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.http.request(method, f"/crm/v8/{path}", headers=self._auth(), **kwargs)
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return dict(resp.json()) if resp.content else {}

    def create(self, module: str, data: dict[str, Any]) -> str:
        body = self._call("POST", module, json={"data": [data]})
        (result,) = body["data"]
        assert result["status"] == "success", result
        return str(result["details"]["id"])

    def update(self, module: str, record_id: str, data: dict[str, Any]) -> None:
        body = self._call("PUT", f"{module}/{record_id}", json={"data": [data]})
        assert body["data"][0]["status"] == "success", body

    def get(self, module: str, record_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"{module}/{record_id}")["data"][0])

    def attachments(self, module: str, record_id: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"/crm/v8/{module}/{record_id}/Attachments", headers=self._auth())
        return [] if resp.status_code == 204 else list(resp.json().get("data") or [])

    def convert_lead(self, lead_id: str) -> str:
        """Convert a lead (to an account); returns the account id."""
        body = self._call("POST", f"Leads/{lead_id}/actions/convert", json={"data": [{"overwrite": True}]})
        return str(body["data"][0]["details"]["Accounts"]["id"])
