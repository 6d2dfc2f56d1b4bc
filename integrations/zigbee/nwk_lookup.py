"""Finding a device by its NWK address in constant time, for every frame a network brings.

zigpy's ``ControllerApplication.get_device(nwk=...)`` walks every device (its own comment says so:
a NWK address can change at runtime, so it keeps no second mapping). zigpy asks it for every frame
received; with hundreds of devices reporting at once (a home's plugs all answer a DR groupcast and
report together a reporting interval later) the walks held the event loop for seconds
(bench/dr.py --probe, 500 plugs). This mixin remembers the device last found for each address and
checks it still holds that address and is still known before trusting it; anything else falls
back to zigpy's walk, so a rejoin under a new address or a device removed is never served stale.
"""

from __future__ import annotations

from typing import Any

import zigpy.device
import zigpy.types as t


class NwkLookupMixin:
    """ControllerApplication mixin (before the radio's class in the bases): ``get_device`` by NWK in O(1)."""

    devices: dict[t.EUI64, zigpy.device.BaseDevice]

    def get_device(self, ieee: t.EUI64 | None = None, nwk: t.NWK | int | None = None) -> Any:
        if ieee is not None or nwk is None:
            return super().get_device(ieee=ieee, nwk=nwk)  # type: ignore[misc]
        found: dict[int, zigpy.device.BaseDevice] = self.__dict__.setdefault("_by_nwk", {})
        device = found.get(nwk)
        if device is not None and device.nwk == nwk and self.devices.get(device.ieee) is device:
            return device
        device = super().get_device(nwk=nwk)  # type: ignore[misc]  # zigpy's walk; KeyError if none
        found[nwk] = device
        return device
