"""Issue 11 finding 3 on the wire: the meter re-sending a message the customer confirmed and read
(its answer to GetLastMessage at every reconnect) neither clears the marks nor asks again."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integrations.zigbee.se.clusters import Messaging
from tests.e2e.conftest import Appliance, running_appliance


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path) as running:
        await running.online()
        yield running


async def _utility_message(appliance: Appliance) -> dict:
    messages = (await appliance.get("/api/v1/messages"))["messages"]
    (message,) = [m for m in messages if m["origin"] == "utility"]
    return message


async def test_the_meter_sending_a_confirmed_message_again_keeps_the_confirmation(appliance):
    await appliance.wait_until(lambda: appliance.hub.state.messages, what="the utility's message")
    message = await _utility_message(appliance)
    path = f"/api/v1/messages/{message['meter_id']}/{message['message_id']}"
    async with appliance.http.post(appliance.url + path + "/confirm") as response:
        assert response.status == 200, await response.text()
    node, sim = appliance.simulator.node, appliance.simulator.meter
    await node.wait_for("message_confirmation", timeout_s=10)
    confirmed = await _utility_message(appliance)
    assert confirmed["confirmed_at"] is not None and confirmed["read"] is True

    # The meter sends the same DisplayMessage again (DDR = 0: its Default Response says it was handled).
    since = len(node.log)
    await sim.send_message(dataclasses.replace(sim.messages[-1], disable_default_response=False))
    await node.wait_for("Default_Response", cluster_id=Messaging.cluster_id, since=since, timeout_s=10)

    again = await _utility_message(appliance)
    assert again["confirmed_at"] == confirmed["confirmed_at"]
    assert again["read"] is True
    assert again["received_at"] == confirmed["received_at"]
    async with appliance.http.post(appliance.url + path + "/confirm") as second:
        assert second.status == 409  # nothing asks the customer again
    await appliance.hub.store.flush()
    (stored,) = [m for m in await appliance.hub.store.messages(since=appliance.hub.started_at)
                 if m.message.origin.value == "utility"]
    assert stored.confirmed_at is not None and stored.read
    assert len(node.received("message_confirmation")) == 1  # and no second confirmation goes out
