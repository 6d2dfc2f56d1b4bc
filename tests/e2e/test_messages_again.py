"""Issue 11 finding 3 on the wire: the meter re-sending a message the customer confirmed and read
(its answer to GetLastMessage at every reconnect) neither clears the marks nor asks again."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.zigbee.se.clusters import Messaging
from tests.e2e.conftest import FAST_SCENARIO, Appliance, running_appliance

START = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path) as running:
        await running.online()
        yield running


async def _utility_message(appliance: Appliance) -> dict:
    messages = (await appliance.get("/api/v1/messages"))["messages"]
    (message,) = [m for m in messages if m["origin"] != "local"]  # the meter's (a public alert here)
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
                 if m.message.origin.value != "local"]
    assert stored.confirmed_at is not None and stored.read
    assert len(node.received("message_confirmation")) == 1  # and no second confirmation goes out


async def test_a_confirmation_sent_just_before_a_power_loss_goes_out_again_under_the_same_tsn(tmp_path: Path):
    """Issue 11 finding 3: the confirmation left, the power went before it was marked delivered, and
    after the restart it went out again under a new TSN (the soak's duplicate). Now the outbox has
    the first attempt's TSN on disk before the frame leaves, so the meter (which outlives the
    appliance's restart, as the second simulator is told) recognises the retry as one."""
    data = tmp_path / "data"
    quiet = {**FAST_SCENARIO, "events": []}
    async with running_appliance(tmp_path / "first", quiet, data_dir=data) as first:
        await first.online()
        await first.wait_until(lambda: first.hub.state.messages, what="the utility's message")
        message = await _utility_message(first)

        async def power_lost(*_args: object) -> None:  # never marked delivered: the power went first
            await asyncio.Event().wait()

        first.hub.store.outbox_delivered = power_lost  # type: ignore[method-assign]
        path = f"/api/v1/messages/{message['meter_id']}/{message['message_id']}/confirm"
        async with first.http.post(first.url + path) as response:
            assert response.status == 200, await response.text()
        await first.simulator.node.wait_for("message_confirmation", timeout_s=10)
        [sent] = [a for a in first.simulator.meter.answers if a.command == "message_confirmation"]
        control = first.simulator.meter.messages[-1].control
        arrived = next(iter(first.hub.state.messages.values())).message.received_at
    async with running_appliance(tmp_path / "again", quiet, data_dir=data) as again:
        checker = again.simulator.meter.checker
        checker.remember_confirmed(message["message_id"], control, arrived, sent.tsn)
        await again.online()
        await again.simulator.node.wait_for("message_confirmation", timeout_s=20)
        [retried] = [a for a in again.simulator.meter.answers if a.command == "message_confirmation"]
        assert (retried.tsn, retried.fields) == (sent.tsn, sent.fields)
        assert checker.retried_reports["message_confirmation"] == 1 and not checker.duplicate_reports
