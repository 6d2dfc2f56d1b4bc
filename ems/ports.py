"""What a home device can be asked to do, as a Protocol the integrations implement.

The dispatcher is the only caller. An integration registers one port per device it owns in
``hub.device_ports`` (device id -> port). A call that the device does not acknowledge in time,
refuses, or cannot take raises ``ems.errors.DeviceError`` with a message for the customer.
"""

from __future__ import annotations

from typing import Protocol

from ems.model import LoadControlEvent


class DevicePort(Protocol):
    async def switch(self, device_id: str, on: bool) -> None:
        """Turn a plug, relay or load controller on or off (On/Off cluster)."""

    async def set_setpoints(
        self, device_id: str, *, cooling_c: float | None, heating_c: float | None
    ) -> None:
        """Write a thermostat's occupied cooling and/or heating setpoint (None: leave it)."""

    async def relay_event(self, device_id: str, event: LoadControlEvent) -> None:
        """Hand a load-control event to the device's own DRLC client."""

    async def cancel_event(self, device_id: str, issuer_event_id: int) -> None:
        """Cancel an event relayed earlier."""
