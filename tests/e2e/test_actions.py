"""The customer's actions reach the meter: a confirmed message, an opted-out event; from the API and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Accounts, Scope
from ems.model import EventStatus
from tests.e2e.conftest import FAST_SCENARIO, OWNER, Appliance, running_appliance
from tests.web.browser import chromium

# Event 4101 runs from the start here: an opt-out during an event reaches the meter at once
# (SE 2.12 item 9); one made before the start would wait for it (item 8, tests/ems/control).
ACTIVE_EVENT = {**FAST_SCENARIO, "events": [{**FAST_SCENARIO["events"][0], "starts_in": "0s"}]}


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path, ACTIVE_EVENT) as running:
        await running.online()
        yield running


async def _message(appliance: Any) -> dict[str, Any]:
    await appliance.wait_until(lambda: appliance.hub.state.messages, what="the utility's message")
    (message,) = [m for m in (await appliance.get("/api/v1/messages"))["messages"] if m["origin"] != "local"]  # the meter's (a public alert here)
    assert message["confirmation_required"] and message["confirmed_at"] is None
    return message


async def _event(appliance: Any) -> dict[str, Any]:
    await appliance.wait_until(lambda: appliance.hub.control.events(), what="event 4101")
    (event,) = (await appliance.get("/api/v1/events"))["events"]
    assert event["issuer_event_id"] == 4101 and event["participation"] == "opted_in"
    return event


async def _opt_out_frame(appliance: Any, timeout_s: float = 10) -> Any:
    """The ReportEventStatus that says the customer opted out of event 4101."""
    since = 0
    while True:
        frame = await appliance.simulator.node.wait_for("report_event_status", since=since, timeout_s=timeout_s)
        if frame.fields["event_status"] == EventStatus.OPTED_OUT:
            return frame
        since = appliance.simulator.node.log.index(frame) + 1


async def test_a_confirmed_message_reaches_the_meter(appliance):
    message = await _message(appliance)
    path = f"/api/v1/messages/{message['meter_id']}/{message['message_id']}/confirm"

    async with appliance.http.post(appliance.url + path) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["confirmed_at"] is not None
    frame = await appliance.simulator.node.wait_for("message_confirmation", timeout_s=10)

    assert frame.fields["message_id"] == message["message_id"]
    async with appliance.http.post(appliance.url + path) as again:
        assert again.status == 409


async def test_opting_out_reaches_the_meter_as_report_event_status_0x04(appliance):
    event = await _event(appliance)
    path = f"/api/v1/events/{event['meter_id']}/4101/opt-out"

    async with appliance.http.post(appliance.url + path) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["participation"] == "opted_out"
    frame = await _opt_out_frame(appliance)

    assert frame.fields["issuer_event_id"] == 4101
    assert frame.fields["event_status"] == 0x04
    async with appliance.http.post(appliance.url + "/api/v1/events/main/4102/opt-out") as unknown:
        assert unknown.status == 404


async def test_a_read_only_token_cannot_act(appliance):
    message, _ = await _message(appliance), await _event(appliance)
    accounts = Accounts(appliance.hub.store)
    token = await accounts.create_token(await accounts.user(OWNER), "read only", [Scope.READ])
    headers = {"Authorization": f"Bearer {token.secret}"}

    for path in (f"/api/v1/messages/main/{message['message_id']}/confirm", "/api/v1/events/main/4101/opt-out"):
        async with appliance.http.post(appliance.url + path, headers=headers) as response:
            assert response.status == 403, path
    assert not appliance.simulator.node.received("message_confirmation")


async def test_the_dashboard_confirms_and_opts_out_by_keyboard(appliance, output_dir):
    await _message(appliance)
    await _event(appliance)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await appliance.sign_in(page)

        await page.click("#messages button[data-action=confirm]")
        await page.wait_for_function("document.getElementById('messages').textContent.includes('· confirmed')")
        assert "Confirmed" in await page.text_content("#messages-status")
        await appliance.simulator.node.wait_for("message_confirmation", timeout_s=10)

        # Keyboard only: Tab to the event's Opt out button (the Now panel's, the page's first), then Enter.
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.dataset.action") == "opt-out":
                break
        else:
            raise AssertionError("Tab never reached the Opt out button")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # the focus is visible
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#events .tag-opted_out")
        assert "opted out of event 4101" in await page.text_content("#now-status")
        # The focus moves to the redrawn button (Opt back in) once the Now panel has the new state.
        await page.wait_for_function("document.activeElement.dataset.action === 'opt-in'", timeout=10_000)
        assert "You opted out of event 4101" in await page.text_content("#now-what")
        await page.screenshot(path=str(output_dir / "opted-out.png"), full_page=True)
    frame = await _opt_out_frame(appliance)
    assert frame.fields["issuer_event_id"] == 4101
