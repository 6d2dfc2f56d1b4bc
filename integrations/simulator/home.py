"""The simulated home: its own Zigbee network (a second virtual HAN) and the devices on it.

Built from the scenario's ``home`` section: a house with a thermal model, a thermostat, plugs
with nominal loads, a battery and SE load control devices, plus ``extra_plugs`` for
benchmarks. ``tick(now)`` moves every device to ``now`` (the thermal model and the battery by
``time_scale`` times the elapsed time); ``load_kw`` is their total, which the runner adds to
the meter's demand. The EMS is the coordinator of this network, as in a real home.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ems.clock import Clock, as_clock
from integrations.simulator.home_devices import (
    SimBattery,
    SimDevice,
    SimDoorSensor,
    SimLoadController,
    SimPlug,
    SimThermostat,
)
from integrations.simulator.household import Household
from integrations.simulator.loads import Schedule
from integrations.simulator.thermal import ThermalHouse
from integrations.zigbee.han import VirtualHan

_LOGGER = logging.getLogger(__name__)

FIRST_NWK = 0x2001
FIRST_EXTRA_NWK = 0x4001


def default_ieee(index: int, prefix: str = "48") -> str:
    """A locally administered address for the index-th simulated device ("PREM" + H/P)."""
    return f"02:50:52:45:4d:{prefix}:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"


class SimulatedHome:
    """The home's devices and the virtual HAN they live on."""

    def __init__(
        self,
        home: dict[str, Any],
        household: Household,
        clock: Clock | Callable[[], datetime] | None = None,
        *,
        port: int = 0,
        pcap_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.spec = home
        self.clock: Clock = as_clock(clock)
        self.household = household
        self.time_scale = float(home["time_scale"])
        house = home["house"]
        self.house = ThermalHouse(
            indoor_c=house["indoor_c"], ua_kw_per_c=house["ua_kw_per_c"],
            capacity_kwh_per_c=house["capacity_kwh_per_c"], internal_gain_kw=house["internal_gain_kw"])
        self.han = VirtualHan(port=port, pcap_path=pcap_path)
        self.devices: list[SimDevice] = []
        self.on_change: Callable[[], None] = lambda: None  # the runner refreshes the meter
        self._last_tick: datetime | None = None
        self._ticking = False
        self._burst: asyncio.Handle | None = None  # changes in the same loop iteration refresh once
        self._burst_dirty = False
        tz = household.timezone
        for index, spec in enumerate(home["devices"], start=1):
            ieee = spec.get("ieee") or default_ieee(index)
            nwk = spec.get("nwk") or FIRST_NWK + index - 1
            kind = spec["kind"]
            device: SimDevice
            if kind == "thermostat":
                device = SimThermostat(spec, ieee, nwk, self.house, household.outdoor_c, tz)
            elif kind == "plug":
                device = SimPlug(spec["name"], ieee, nwk, spec["nominal_kw"], tz, on=spec["on"],
                                 schedule=Schedule.of(spec, tz))
            elif kind == "battery":
                device = SimBattery(spec, ieee, nwk, tz)
            elif kind == "door_sensor":
                device = SimDoorSensor(spec, ieee, nwk, tz)
            else:
                device = SimLoadController(spec, ieee, nwk, tz, self.clock)
            self._add(device)
        extra = home["extra_plugs"]
        if extra["count"]:
            self.add_plugs(extra["count"], extra["nominal_kw"])

    def _add(self, device: SimDevice) -> None:
        device.on_change = self._changed
        self.devices.append(device)
        self.han.add_node(device.node)

    def add_plugs(self, count: int, nominal_kw: float = 1.0) -> list[SimPlug]:
        """Add ``count`` plain plugs named "Plug 1", "Plug 2", ... (benchmarks)."""
        start = sum(1 for d in self.devices if d.name.startswith("Plug ")) + 1
        plugs = []
        for number in range(start, start + count):
            plug = SimPlug(f"Plug {number}", default_ieee(number, "50"), FIRST_EXTRA_NWK + number - 1,
                           nominal_kw, self.household.timezone)
            self._add(plug)
            plugs.append(plug)
        return plugs

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.han.port

    async def start(self) -> None:
        if self._last_tick is None:
            self.tick(self.clock())
        await self.han.start()
        _LOGGER.info("Simulated home network with %d device(s) ready on port %d",
                     len(self.devices), self.port)

    async def stop(self) -> None:
        if self._burst is not None:
            self._burst.cancel()
            self._burst = None
        await self.han.stop()

    # -- simulation --------------------------------------------------------------------------

    @property
    def has_thermostat(self) -> bool:
        return any(isinstance(d, SimThermostat) for d in self.devices)

    @property
    def load_kw(self) -> float:
        """What the home's devices draw together now (a discharging battery counts negative)."""
        return sum(d.load_kw for d in self.devices)

    def device(self, name: str) -> Any:
        """The device with this name (KeyError if there is none)."""
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(f"no simulated home device is named {name!r}")

    def tick(self, now: datetime) -> None:
        """Move every device to ``now``; simulated time runs ``time_scale`` times as fast."""
        elapsed_h = 0.0
        if self._last_tick is not None:
            elapsed_h = max(0.0, (now - self._last_tick).total_seconds() / 3600)
        self._last_tick = now
        self._ticking = True
        try:
            for device in self.devices:
                device.tick(now, elapsed_h * self.time_scale)
        finally:
            self._ticking = False

    def _changed(self) -> None:
        if self._ticking:
            return
        if self._burst is not None:
            self._burst_dirty = True  # more of the same moment: one refresh at its end
            return
        self.on_change()  # a lone change shows at once
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._burst_dirty = False
        self._burst = loop.call_soon(self._end_burst)

    def _end_burst(self) -> None:
        """A groupcast switches every member in one delivery: the meter is refreshed once for them all
        (once per device made the burst quadratic in the number of devices)."""
        self._burst = None
        if self._burst_dirty:
            self._burst_dirty = False
            self.on_change()
