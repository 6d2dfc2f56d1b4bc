"""What users report from real 2030.5 meters, through the link: stalls, reboots, hours away, a move."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ems.model import IntervalReading, LinkState, MeterLinkChanged, MeterReading
from tests.integrations.ieee2030_5.conftest import rig


def states(r) -> list[LinkState]:
    return [e.state for e in r.of(MeterLinkChanged)]


async def test_a_stalled_meter_goes_stale_then_offline_and_comes_back(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    async with rig(tmp_path, section={"timeout_s": 0.3, "retries": 0}) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        r.meter.stall()
        await r.advance(35)  # past stale_after_s (30) without a value
        await r.until(lambda: LinkState.STALE in states(r) or LinkState.OFFLINE in states(r), "stale or offline")
        await r.until(lambda: r.link.state is LinkState.OFFLINE, "offline once the requests time out")
        count = len(r.of(MeterReading))
        r.meter.unstall()
        await r.advance(20, step_s=1)  # the backoff (capped at retry_max_s, 10 s) passes
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online again")
        await r.until(lambda: len(r.of(MeterReading)) > count, "readings again")
        outage = [rec for rec in caplog.records if "retrying with backoff" in rec.getMessage()]
        assert len(outage) == 1  # logged once for the outage


async def test_a_reboot_is_ridden_out_with_a_new_tls_session(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        handshakes = r.link.client.context.handshakes
        await r.meter.drop()
        await r.advance(5)
        await r.until(lambda: r.link.state is LinkState.OFFLINE, "offline while the meter reboots")
        await r.meter.resume()
        await r.advance(15, step_s=1)
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online after the reboot")
        assert r.link.client.context.handshakes > handshakes


async def test_hours_offline_are_read_back_from_the_meters_interval_block(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        await r.until(lambda: r.of(IntervalReading), "the first intervals")
        await r.meter.drop()
        await r.advance(5)
        await r.until(lambda: r.link.state is LinkState.OFFLINE, "offline")
        before = {i.start for i in r.of(IntervalReading)}
        r.clock.advance(hours=3)
        await r.meter.resume()
        await r.advance(15, step_s=1)
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online again")
        await r.until(lambda: len({i.start for i in r.of(IntervalReading)} - before) >= 180, "the 3 h caught up")
        caught = [i for i in r.of(IntervalReading) if i.start not in before]
        assert all(i.duration_s == 60 for i in caught)  # the meter's own minutes, no invented spike
        assert max(i.consumed_kwh + i.generated_kwh for i in caught) < 0.2


async def test_a_meter_without_interval_data_gets_the_gap_as_one_interval(tmp_path) -> None:
    async with rig(tmp_path, intervals=False, section={"interval_s": 60, "gap_s": 300}) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        await r.advance(130)
        await r.until(lambda: r.of(IntervalReading), "intervals from the summation")
        assert all(i.duration_s == 60 for i in r.of(IntervalReading))
        await r.meter.drop()
        delivered = r.meter.registers.delivered_kwh
        r.clock.advance(hours=2)
        await r.meter.resume()
        await r.advance(15, step_s=1)
        await r.until(lambda: any(i.duration_s > 3600 for i in r.of(IntervalReading)), "the gap's interval")
        (gap,) = [i for i in r.of(IntervalReading) if i.duration_s > 60]
        assert 2 * 3600 - 120 <= gap.duration_s <= 2 * 3600 + 120
        assert gap.consumed_kwh == pytest.approx(r.meter.registers.delivered_kwh - delivered, abs=0.2)


async def test_a_different_meter_is_refused_until_the_owner_confirms_it(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        old = r.meter.lfdi
        new = await r.meter.swap_certificate()  # the customer moved, or the utility swapped the meter
        await r.advance(10, step_s=1)
        await r.until(lambda: r.link.state is LinkState.OFFLINE, "refused")
        assert "different meter" in r.of(MeterLinkChanged)[-1].detail
        pin = await r.hub.meter_pins.get("main")
        assert (pin.hardware_id, pin.pending_hardware_id) == (old.lower(), new.lower())
        count = len(r.of(MeterReading))
        await r.advance(30, step_s=2)
        await asyncio.sleep(0.2)
        assert len(r.of(MeterReading)) == count  # nothing taken from the other meter
        await r.hub.meter_pins.confirm("main", new, by="owner")
        await r.advance(20, step_s=1)
        await r.until(lambda: r.link.state is LinkState.ONLINE, "the confirmed meter read")
        await r.until(lambda: len(r.of(MeterReading)) > count, "its readings")
        assert r.link.client.peer_lfdi == new


async def test_a_meter_pinned_in_the_settings_is_the_only_one_taken(tmp_path) -> None:
    async with rig(tmp_path, section={"meter_lfdi": "0" * 40}) as r:
        await r.until(lambda: r.link.state is LinkState.OFFLINE, "refused")
        assert "not the one in the settings" in r.of(MeterLinkChanged)[-1].detail
        assert not r.of(MeterReading)
        assert await r.hub.meter_pins.get("main") is None  # nothing pinned from a refused meter


async def test_a_failed_handshake_is_retried_within_the_request(tmp_path) -> None:
    async with rig(tmp_path, section={"retries": 2, "idle_s": 0.1}) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        count = len(r.of(MeterReading))
        await asyncio.sleep(0.3)  # the kept connection is let go: the next poll connects again
        r.meter.fail_handshakes(1)
        await r.advance(5)
        await r.until(lambda: len(r.of(MeterReading)) > count, "the next reading, after one retry")
        assert r.meter.connections.refused == 1
        assert r.link.state is LinkState.ONLINE  # never offline for it
        assert LinkState.OFFLINE not in states(r)


async def test_a_meter_that_answers_with_nothing_usable_is_stale(tmp_path) -> None:
    async with rig(tmp_path, intervals=False) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        r.meter.change_format("demand")
        r.meter.change_format("summation")  # every value now in a format the link refuses
        await r.advance(40)
        await r.until(lambda: r.link.state is LinkState.STALE, "stale: connected, but no value")
        assert LinkState.OFFLINE not in states(r)


async def test_the_meter_dropping_an_idle_connection_costs_no_reading(tmp_path) -> None:
    # The client would keep the connection 20 s; this meter drops it after 0.2 s idle (Itron: 30 s).
    async with rig(tmp_path, idle_s=0.2, section={"idle_s": 20}) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        for round_ in range(3):
            count = len(r.of(MeterReading))
            await asyncio.sleep(0.5)  # the meter closes the idle connection meanwhile
            await r.advance(5)
            await r.until(lambda count=count: len(r.of(MeterReading)) > count, f"reading {round_}")
        assert LinkState.OFFLINE not in states(r)
        assert r.link.client.context.resumed >= 2  # each new connection resumed the session


async def test_a_function_set_the_meter_links_but_does_not_serve_is_left_alone(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    async with rig(tmp_path) as r:
        r.meter.broken.add("/tp")  # linked from DeviceCapability, answered 404
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        await r.advance(30)
        await r.until(lambda: len(r.of(MeterReading)) >= 5, "readings go on")
        assert LinkState.OFFLINE not in states(r)
        skipped = [rec for rec in caplog.records if "does not serve it" in rec.getMessage()]
        assert len(skipped) == 1


async def test_a_meter_back_on_the_network_is_read_within_seconds_whatever_the_backoff(tmp_path) -> None:
    async with rig(tmp_path, section={"retry_max_s": 600}) as r:
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        await r.meter.drop()
        await r.advance(1200, step_s=10)  # the backoff has grown long (up to 10 minutes)
        assert r.link.state is LinkState.OFFLINE
        await r.meter.resume()
        await r.advance(6, step_s=1)  # its port is asked every 2 s of the clock
        await r.until(lambda: r.link.state is LinkState.ONLINE, "online within seconds of the meter's return")
