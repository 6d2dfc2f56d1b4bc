"""The home network's ``DevicePort``: the dispatcher's commands, routed to the device they name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ems.errors import DeviceError
from ems.model import LoadControlEvent
from integrations.zigbee_home.device import HomeDevice
from integrations.zigbee_home.groups import FanOut


class HomePort:
    """One port for every device of the home network (``hub.device_ports[id]`` points here).

    ``switch_all`` is the dispatcher's fan-out (``ems.dr.ports.FanOutPort``): one command for
    many devices, by groupcast where a shed group fits (``groups.py``).
    """

    def __init__(self, lookup: Callable[[str], HomeDevice | None],
                 devices: Mapping[str, HomeDevice] | None = None, app: Callable[[], Any] | None = None) -> None:
        self._lookup = lookup
        self.fan_out = FanOut(devices if devices is not None else {}, app or (lambda: None), self._device)

    def _device(self, device_id: str) -> HomeDevice:
        device = self._lookup(device_id)
        if device is None or not device.described:
            raise DeviceError(f"device {device_id} is not (yet) set up on the home network")
        return device

    async def switch(self, device_id: str, on: bool) -> None:
        await self._device(device_id).switch(on)

    async def switch_all(self, device_ids: Iterable[str], on: bool) -> dict[str, DeviceError | None]:
        return await self.fan_out.switch_all(device_ids, on)

    async def set_setpoints(
        self, device_id: str, *, cooling_c: float | None, heating_c: float | None
    ) -> None:
        await self._device(device_id).set_setpoints(cooling_c, heating_c)

    async def relay_event(self, device_id: str, event: LoadControlEvent) -> None:
        await self._device(device_id).relay_event(event)

    async def cancel_event(self, device_id: str, issuer_event_id: int) -> None:
        await self._device(device_id).cancel_event(issuer_event_id)
