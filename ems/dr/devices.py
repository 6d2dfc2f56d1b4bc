"""The home's devices as the appliance knows them: what each is, what it last said, whether it answers.

Fed by the bus (``DeviceInfo``, ``DeviceReading``, ``DeviceAvailability`` from the integration
that owns the device). Devices and their readings go to the store (readings in small batches:
they are telemetry, not billing data), devices are restored at start so the pages show them
before the home network is up, and a periodic ``TelemetryReport`` per device goes to the outbox
when an upstream channel carries telemetry (C6 3.3 step 7).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.bus import Unsubscribe
from ems.dr.ports import DrHub
from ems.model import (
    DeviceAvailability,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    TelemetryReport,
)
from ems.store import tables
from ems.store.writer import insert
from ems.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

_READING_FIELDS = tuple(f.name for f in dataclasses.fields(DeviceReading) if f.name not in ("device_id", "at"))
FLUSH_S = 2.0


@dataclass(slots=True)
class DeviceState:
    """One device: its description, the latest value of each reading field, and availability."""

    info: DeviceInfo
    reading: DeviceReading | None = None
    available: bool = False
    available_since: datetime | None = None
    detail: str = ""
    last_seen: datetime | None = None


class DeviceRegistry:
    """Every home device, kept from the bus, stored, and reported upstream as telemetry."""

    def __init__(self, hub: DrHub, *, telemetry_interval_s: float = 300.0,
                 reading_retention: timedelta = timedelta(days=60)) -> None:
        self._hub = hub
        self.devices: dict[str, DeviceState] = {}
        self._telemetry_interval_s = telemetry_interval_s
        self._retention = reading_retention
        self._pending_readings: list[DeviceReading] = []
        self._heard = asyncio.Event()  # set when a reading is pending: the flush task's wake-up
        self._unsubscribe: list[Unsubscribe] = []
        self._tasks = TaskSet(_LOGGER, "devices")

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for info, last_seen in await self._hub.store.read("read devices", _devices):
            self.devices[info.device_id] = DeviceState(info, last_seen=last_seen)
        for reading in await self._hub.store.read("read latest device readings", _latest_readings,
                                                  self._hub.clock() - timedelta(days=1)):
            state = self.devices.get(reading.device_id)
            if state is not None:
                state.reading = reading
        self._unsubscribe = [
            self._hub.bus.listen(DeviceInfo, self._on_info),
            self._hub.bus.listen(DeviceReading, self._on_reading),
            self._hub.bus.listen(DeviceAvailability, self._on_availability),
        ]
        self._tasks.spawn(self._flush_forever(), "device-readings")
        self._tasks.spawn(self._telemetry_forever(), "device-telemetry")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self._tasks.cancel_all()
        await self.flush()

    # -- queries ---------------------------------------------------------------------------

    def get(self, device_id: str) -> DeviceState | None:
        return self.devices.get(device_id)

    def find(self, name_or_id: str) -> DeviceState | None:
        state = self.devices.get(name_or_id)
        if state is not None:
            return state
        wanted = name_or_id.casefold()
        return next((d for d in self.devices.values() if d.info.name.casefold() == wanted), None)

    def device_classes(self) -> int:
        """The DRLC device classes the home's devices cover (the EMS's DeviceClassValue)."""
        value = 0
        for state in self.devices.values():
            value |= int(state.info.device_class)
        return value

    async def history(self, device_id: str, start: datetime, end: datetime) -> list[DeviceReading]:
        await self.flush()
        return await self._hub.store.read("read device readings", _readings, device_id, start, end)

    # -- updates ---------------------------------------------------------------------------

    def _on_info(self, info: DeviceInfo) -> None:
        state = self.devices.get(info.device_id)
        if state is None:
            state = self.devices[info.device_id] = DeviceState(info)
            _LOGGER.info("Device %s (%s, %s) found", info.name, info.kind, info.device_id)
        else:
            state.info = info
        now = self._hub.clock()
        state.available, state.available_since, state.last_seen = True, state.available_since or now, now
        self._tasks.spawn(self._save_device(info, now), "save-device")

    def _on_reading(self, reading: DeviceReading) -> None:
        state = self.devices.get(reading.device_id)
        if state is None:
            return  # a report from a device not (yet) described: ignored
        old = state.reading
        if old is None:
            state.reading = reading
        else:
            merged = {name: getattr(reading, name) if getattr(reading, name) is not None else getattr(old, name)
                      for name in _READING_FIELDS}
            state.reading = DeviceReading(reading.device_id, reading.at, **merged)
        state.last_seen = reading.at
        if not state.available:
            state.available, state.available_since = True, reading.at
        self._pending_readings.append(reading)
        self._heard.set()

    def _on_availability(self, event: DeviceAvailability) -> None:
        state = self.devices.get(event.device_id)
        if state is None:
            return
        if state.available != event.available:
            log = _LOGGER.info if event.available else _LOGGER.warning
            log("Device %s is %s%s", state.info.name, "answering again" if event.available else "not answering",
                f": {event.detail}" if event.detail else "")
        state.available, state.available_since, state.detail = event.available, event.at, event.detail

    # -- storage ---------------------------------------------------------------------------

    async def _save_device(self, info: DeviceInfo, now: datetime) -> None:
        await self._hub.store.write("save device", lambda conn: _save_device(conn, info, now))

    async def flush(self) -> None:
        batch, self._pending_readings = self._pending_readings, []
        if batch:
            await self._hub.store.write("save device readings", lambda conn: _save_readings(conn, batch))

    async def _flush_forever(self) -> None:
        """Write the readings heard, at most ``FLUSH_S`` after the first of them (one transaction
        for those of a few devices); with nothing heard it waits for a reading, not a timer."""
        while True:
            await self._heard.wait()
            await asyncio.sleep(FLUSH_S)
            self._heard.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the store logs the cause; keep collecting
                _LOGGER.warning("Device readings could not be stored; they are dropped", exc_info=True)

    async def purge(self, now: datetime | None = None) -> int:
        horizon = (now or self._hub.clock()) - self._retention
        return int(await self._hub.store.write("purge device readings", lambda conn: _purge(conn, horizon)))

    # -- telemetry -------------------------------------------------------------------------

    def telemetry(self, now: datetime) -> list[TelemetryReport]:
        """One report per device that said something, for the upstream channels."""
        reports = []
        for state in self.devices.values():
            r = state.reading
            if r is None:
                continue
            reports.append(TelemetryReport(
                device_id=state.info.device_id, kind=state.info.kind, at=r.at, power_kw=r.power_kw,
                soc_pct=r.soc_pct, indoor_c=r.indoor_c, system_mode=r.system_mode))
        return reports

    async def _telemetry_forever(self) -> None:
        while True:
            await asyncio.sleep(self._telemetry_interval_s)
            if not self._hub.outbox.carries(TelemetryReport):
                continue  # no upstream channel carries telemetry: shown locally only
            for report in self.telemetry(self._hub.clock()):
                await self._hub.outbox.enqueue(report)


async def _devices(conn: AsyncConnection) -> list[tuple[DeviceInfo, datetime | None]]:
    t = tables.devices
    result = await conn.execute(select(t))
    found = []
    for row in result:
        try:
            info = DeviceInfo(
                device_id=row.device_id, name=row.name, kind=DeviceKind(row.kind),
                device_class=DeviceClass(row.device_class), enrollment_group=row.enrollment_group,
                nominal_kw=row.nominal_kw, min_setpoint_c=row.min_setpoint_c, max_setpoint_c=row.max_setpoint_c,
                capacity_kwh=row.capacity_kwh, model=row.model, discovered_at=row.discovered_at)
        except ValueError:
            _LOGGER.warning("Stored device %s has an unknown kind %r; skipped", row.device_id, row.kind)
            continue
        found.append((info, row.last_seen))
    return found


async def _latest_readings(conn: AsyncConnection, horizon: datetime) -> list[DeviceReading]:
    """Per device, the latest value of each field (since ``horizon``)."""
    t = tables.device_readings
    result = await conn.execute(select(t).where(t.c.at >= horizon).order_by(t.c.at))
    latest: dict[str, DeviceReading] = {}
    for row in result:
        values = {name: getattr(row, name) for name in _READING_FIELDS}
        old = latest.get(row.device_id)
        if old is not None:
            values = {k: v if v is not None else getattr(old, k) for k, v in values.items()}
        latest[row.device_id] = DeviceReading(row.device_id, row.at, **values)
    return list(latest.values())


async def _readings(conn: AsyncConnection, device_id: str, start: datetime, end: datetime) -> list[DeviceReading]:
    t = tables.device_readings
    result = await conn.execute(
        select(t).where(and_(t.c.device_id == device_id, t.c.at >= start, t.c.at < end)).order_by(t.c.at))
    return [DeviceReading(row.device_id, row.at, **{name: getattr(row, name) for name in _READING_FIELDS})
            for row in result]


async def _save_device(conn: AsyncConnection, info: DeviceInfo, now: datetime) -> None:
    t = tables.devices
    values = {"device_id": info.device_id, "name": info.name[:128], "kind": str(info.kind),
              "device_class": int(info.device_class), "enrollment_group": info.enrollment_group,
              "nominal_kw": info.nominal_kw, "min_setpoint_c": info.min_setpoint_c,
              "max_setpoint_c": info.max_setpoint_c, "capacity_kwh": info.capacity_kwh,
              "model": info.model[:128], "discovered_at": info.discovered_at, "last_seen": now}
    update = {k: v for k, v in values.items() if k not in ("device_id", "discovered_at")}
    await conn.execute(insert(conn, t).on_conflict_do_update(index_elements=["device_id"], set_=update), values)


async def _save_readings(conn: AsyncConnection, batch: list[DeviceReading]) -> None:
    rows = [{"device_id": r.device_id, "at": r.at, **{name: getattr(r, name) for name in _READING_FIELDS}}
            for r in batch]
    await conn.execute(tables.device_readings.insert(), rows)


async def _purge(conn: AsyncConnection, horizon: datetime) -> int:
    t = tables.device_readings
    result = await conn.execute(delete(t).where(t.c.at < horizon))
    return int(result.rowcount or 0)
