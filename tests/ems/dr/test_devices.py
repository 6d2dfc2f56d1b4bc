"""The home's devices as the appliance keeps them: readings stored, devices restored, telemetry sent upstream."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ems.dr.devices import DeviceRegistry
from ems.model import (
    DeviceAvailability,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    TelemetryReport,
    utcnow,
)

BATTERY = "00:00:00:00:00:00:00:05"


def _battery(hub) -> None:
    hub.bus.publish(DeviceInfo(BATTERY, "Home battery", DeviceKind.BATTERY, DeviceClass.GENERATION, capacity_kwh=13.5))


async def test_readings_are_merged_field_by_field_and_kept_in_the_store(hub):
    registry = DeviceRegistry(hub)
    await registry.start()
    try:
        _battery(hub)
        now = utcnow()
        hub.bus.publish(DeviceReading(BATTERY, now, soc_pct=60.0))
        hub.bus.publish(DeviceReading(BATTERY, now + timedelta(seconds=1), power_kw=-2.5))
        assert registry.get(BATTERY).reading.soc_pct == 60.0 and registry.get(BATTERY).reading.power_kw == -2.5
        history = await registry.history(BATTERY, now - timedelta(minutes=1), now + timedelta(minutes=1))
        assert [(r.soc_pct, r.power_kw) for r in history] == [(60.0, None), (None, -2.5)]
    finally:
        await registry.stop()


async def test_known_devices_and_their_last_readings_are_back_after_a_restart(hub):
    registry = DeviceRegistry(hub)
    await registry.start()
    _battery(hub)
    hub.bus.publish(DeviceReading(BATTERY, utcnow(), soc_pct=42.0))
    await asyncio.sleep(0)
    await registry.stop()
    await hub.store.flush()
    again = DeviceRegistry(hub)
    await again.start()
    try:
        state = again.get(BATTERY)
        assert state.info.name == "Home battery" and state.reading.soc_pct == 42.0
        assert state.available is False  # not heard from since the restart
    finally:
        await again.stop()


async def test_telemetry_goes_upstream_only_through_a_channel_that_carries_it(hub):
    carried: list[TelemetryReport] = []

    async def channel(report: TelemetryReport) -> None:
        carried.append(report)

    registry = DeviceRegistry(hub, telemetry_interval_s=0.05)
    await registry.start()
    try:
        _battery(hub)
        hub.bus.publish(DeviceReading(BATTERY, utcnow(), soc_pct=77.0, power_kw=1.2))
        await asyncio.sleep(0.2)
        assert await hub.outbox.pending() == []  # nobody carries telemetry: nothing piles up
        unregister = hub.outbox.register_sender(TelemetryReport, channel)
        try:
            for _ in range(100):
                if carried:
                    break
                await asyncio.sleep(0.05)
        finally:
            unregister()
        assert (carried[0].device_id, carried[0].kind, carried[0].soc_pct) == (BATTERY, DeviceKind.BATTERY, 77.0)
    finally:
        await registry.stop()


async def test_a_device_that_stops_answering_is_shown_so_and_back_when_it_answers(hub):
    registry = DeviceRegistry(hub)
    await registry.start()
    try:
        _battery(hub)
        hub.bus.publish(DeviceAvailability(BATTERY, False, utcnow(), "did not answer within 5 s"))
        assert registry.get(BATTERY).available is False
        assert registry.get(BATTERY).detail == "did not answer within 5 s"
        hub.bus.publish(DeviceReading(BATTERY, utcnow(), soc_pct=50.0))
        assert registry.get(BATTERY).available is True
    finally:
        await registry.stop()


async def test_readings_heard_are_written_soon_by_themselves(hub, monkeypatch):
    # Nobody flushes here: the registry writes what it heard FLUSH_S after the first reading
    # (and, hearing nothing, waits for a reading rather than waking on a timer).
    import ems.dr.devices

    monkeypatch.setattr(ems.dr.devices, "FLUSH_S", 0.05)
    registry = DeviceRegistry(hub)
    await registry.start()
    try:
        _battery(hub)
        hub.bus.publish(DeviceReading(BATTERY, utcnow(), soc_pct=37.0))
        stored = None
        for _ in range(100):  # a bound against a hang, not a duration asserted
            await asyncio.sleep(0.05)
            await hub.store.flush()
            probe = DeviceRegistry(hub)  # what a restart would read back
            await probe.start()
            await probe.stop()
            state = probe.get(BATTERY)
            stored = state.reading if state is not None else None
            if stored is not None:
                break
        assert stored is not None and stored.soc_pct == 37.0
    finally:
        await registry.stop()
