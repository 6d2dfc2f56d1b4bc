"""The home network's ``DevicePort``: the dispatcher's commands, routed to the device they name."""

from __future__ import annotations

from collections.abc import Callable

from ems.errors import DeviceError
from ems.model import LoadControlEvent
from integrations.zigbee_home.device import HomeDevice


class HomePort:
    """One port for every device of the home network (``hub.device_ports[id]`` points here)."""

    def __init__(self, lookup: Callable[[str], HomeDevice | None]) -> None:
        self._lookup = lookup

    def _device(self, device_id: str) -> HomeDevice:
        device = self._lookup(device_id)
        if device is None or not device.described:
            raise DeviceError(f"device {device_id} is not (yet) set up on the home network")
        return device

    async def switch(self, device_id: str, on: bool) -> None:
        await self._device(device_id).switch(on)

    async def set_setpoints(
        self, device_id: str, *, cooling_c: float | None, heating_c: float | None
    ) -> None:
        await self._device(device_id).set_setpoints(cooling_c, heating_c)

    async def relay_event(self, device_id: str, event: LoadControlEvent) -> None:
        await self._device(device_id).relay_event(event)

    async def cancel_event(self, device_id: str, issuer_event_id: int) -> None:
        await self._device(device_id).cancel_event(issuer_event_id)
