"""Hostile rules documents (issue 11, finding 7): an alias bomb and deep nesting are refused with a
400 naming the limit, and the parse runs off the event loop so the appliance keeps answering."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Accounts, Role, Scope
from ems.config import MAX_YAML_DEPTH, MAX_YAML_NODES
from ems.hub import Hub
from web.auth import ACCOUNTS

from .control import RULES, home_hub

PASSWORD = "correct horse battery"


def alias_bomb(levels: int = 9) -> str:
    """Nine aliases of nine aliases of ...: a few hundred bytes that expand to 9**levels values."""
    lines = ["a: &a [x,x,x,x,x,x,x,x,x]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join('*' + prev for _ in range(9))}]")
    return "\n".join(lines) + "\n"


DEEP = "rules: " + "[" * 900 + "]" * 900 + "\n" + "# padding\n" * 820  # a 10 kB deeply nested document
SELF_ALIAS = "rules: &r [*r]\n"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with home_hub(tmp_path) as hub:
        yield hub


async def _headers(client: Any) -> dict[str, str]:
    accounts: Accounts = client.app[ACCOUNTS]
    user = await accounts.create_user("owner", PASSWORD, Role.OWNER)
    token = await accounts.create_token(user, "test", list(Scope))
    return {"Authorization": f"Bearer {token.secret}", "Content-Type": "application/yaml"}


def test_the_documents_are_what_the_finding_describes() -> None:
    assert len(alias_bomb()) <= 320 and 9 ** 9 > 1000 * MAX_YAML_NODES
    assert 10_000 <= len(DEEP) <= 11_000


@pytest.mark.parametrize(("method", "path"), [("post", "/api/v1/rules/validate"), ("put", "/api/v1/rules")])
@pytest.mark.parametrize(("document", "says"), [
    (alias_bomb(), f"expands to more than {MAX_YAML_NODES} values"),
    (DEEP, f"nested more than {MAX_YAML_DEPTH} levels"),
    (SELF_ALIAS, f"nested more than {MAX_YAML_DEPTH} levels"),
])
async def test_a_hostile_document_is_a_400_naming_the_limit(
        client: Any, hub: Hub, method: str, path: str, document: str, says: str) -> None:
    response = await client.request(method, path, data=document, headers=await _headers(client))

    assert response.status == 400
    body = await response.json()
    assert any(p.startswith("rules.yaml:") and says in p for p in body["problems"]), body
    assert hub.control.rulebook.text == RULES  # nothing was put in force


async def test_an_oversize_body_is_a_413(client: Any) -> None:
    body = "rules: []\n" + "#" * (256 * 1024)
    response = await client.post("/api/v1/rules/validate", data=body, headers=await _headers(client))
    assert response.status == 413


class _Gate:
    """Wraps a parse so it waits, in whatever thread runs it, until the test has seen /health answered.

    If the parse ran on the event loop, /health could not be answered while it waits: the wait
    times out (a hang guard, not a measured duration) and ``answered_meanwhile`` stays False.
    """

    def __init__(self, parse: Callable[..., Any]) -> None:
        self._parse = parse
        self.entered = threading.Event()
        self.health_answered = threading.Event()
        self.answered_meanwhile: bool | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        if self.answered_meanwhile is None:
            self.answered_meanwhile = self.health_answered.wait(timeout=10)
        return self._parse(*args, **kwargs)


async def _health_while_parsing(client: Any, gate: _Gate, send: Any) -> None:
    task = asyncio.ensure_future(send)
    assert await asyncio.to_thread(gate.entered.wait, 10)  # a hang guard
    assert (await client.get("/api/v1/health")).status == 200
    gate.health_answered.set()
    response = await task
    assert response.status < 500
    assert gate.answered_meanwhile is True


@pytest.mark.parametrize(("method", "path"), [("post", "/api/v1/rules/validate"), ("put", "/api/v1/rules")])
async def test_the_api_parses_rules_off_the_event_loop(client: Any, hub: Hub, method: str, path: str) -> None:
    book = hub.control.rulebook
    gate = _Gate(book._parse)
    book._parse = gate  # type: ignore[method-assign]
    headers = await _headers(client)

    await _health_while_parsing(client, gate, client.request(method, path, data=RULES, headers=headers))


async def test_the_api_reads_the_yaml_off_the_event_loop(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.control_api as control_api

    gate = _Gate(control_api.parse_yaml)
    monkeypatch.setattr(control_api, "parse_yaml", gate)
    headers = await _headers(client)

    await _health_while_parsing(client, gate, client.post("/api/v1/rules/validate", data=RULES, headers=headers))


async def test_the_rules_page_checks_off_the_event_loop(client: Any, hub: Hub) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    login = await (await client.get("/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": PASSWORD})
    page = await (await client.get("/rules")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    book = hub.control.rulebook
    gate = _Gate(book._parse)
    book._parse = gate  # type: ignore[method-assign]

    form = {"csrf_token": csrf, "text": RULES, "action": "check"}
    await _health_while_parsing(client, gate, client.post("/rules", data=form))


async def test_markup_in_a_rules_text_is_shown_escaped(client: Any, hub: Hub) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    login = await (await client.get("/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": PASSWORD})
    page = await (await client.get("/rules")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    hostile = "rules:\n  - name: </textarea><script>alert(1)</script>\n    action: nonsense\n"

    response = await client.post("/rules", data={"csrf_token": csrf, "text": hostile, "action": "check"})

    html = await response.text()
    assert response.status == 422
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
