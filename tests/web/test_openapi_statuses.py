"""The statuses web.errors answers are the ones the OpenAPI description lists for each route."""

from __future__ import annotations

from typing import Any

from ems.accounts import Accounts, Role, Scope
from web.keys import ACCOUNTS
from web.openapi import DOCUMENT


async def test_without_demand_response_the_routes_that_need_it_answer_a_documented_503(client: Any) -> None:
    accounts: Accounts = client.app[ACCOUNTS]
    owner = await accounts.create_user("owner", "correct horse battery", Role.OWNER)
    headers = {"Authorization": f"Bearer {(await accounts.create_token(owner, 'test', list(Scope))).secret}"}
    asked = [
        ("get", "/api/v1/rules", "/api/v1/rules", {}),
        ("put", "/api/v1/rules", "/api/v1/rules", {"data": "rules: []", "headers": {"Content-Type": "text/yaml"}}),
        ("post", "/api/v1/rules/validate", "/api/v1/rules/validate",
         {"data": "rules: []", "headers": {"Content-Type": "text/yaml"}}),
        ("get", "/api/v1/devices/plug/readings", "/api/v1/devices/{device_id}/readings", {}),
        ("post", "/api/v1/events/main/7/devices/plug/opt-out",
         "/api/v1/events/{meter_id}/{issuer_event_id}/devices/{device_id}/opt-out", {}),
    ]
    for method, path, documented, extra in asked:
        extra_headers = extra.pop("headers", {})
        response = await getattr(client, method)(path, headers={**headers, **extra_headers}, **extra)
        body = await response.json()
        assert (response.status, body["status"]) == (503, 503), (path, body)
        assert "503" in DOCUMENT["paths"][documented][method]["responses"], (method, documented)
