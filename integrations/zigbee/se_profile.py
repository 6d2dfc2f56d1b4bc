"""Make zigpy process ZCL frames sent with the Smart Energy profile (0x0109).

zigpy 2.4 parses ZCL only for the HA (0x0104) and ZLL profiles and hands any other profile
to `ZigbeeDevice.custom_profile_packet_received`, which drops it (`device.py`,
`_parse_packet_header`). An SE meter answers on profile 0x0109, so without this the
interview times out reading Basic and every report or command from the meter is lost.
"""

from __future__ import annotations

import zigpy.device
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.device import ResponseKey
from zigpy.zcl import foundation

SMART_ENERGY_PROFILE_ID = 0x0109


class SmartEnergyAwareDevice(zigpy.device.ZigbeeDevice):
    """A zigpy device that also parses ZCL frames of the Smart Energy profile."""

    def _parse_packet_header(
        self, packet: t.ZigbeePacket
    ) -> tuple[zdo_t.ZDOHeader | foundation.ZCLHeader, ResponseKey] | tuple[None, None]:
        if packet.profile_id != SMART_ENERGY_PROFILE_ID or packet.src_ep == 0:
            return super()._parse_packet_header(packet)
        try:
            hdr, _ = foundation.ZCLHeader.deserialize(packet.data.serialize())
        except ValueError:
            # A header cut short: nothing zigpy can match or dispatch. The SE adapter has
            # already seen the raw bytes (and counted the frame as malformed).
            return None, None
        return hdr, ResponseKey(
            endpoint_id=packet.src_ep,
            cluster_id=packet.cluster_id,
            direction=hdr.frame_control.direction,
            tsn=hdr.tsn,
        )


class SmartEnergyProfileMixin:
    """ControllerApplication mixin: devices that join are `SmartEnergyAwareDevice`s.

    Put it before the radio's class in the bases; it replaces `add_device`, which zigpy
    calls for every join, announcement and database load.
    """

    devices: dict[t.EUI64, zigpy.device.BaseDevice]

    def add_device(self, ieee: t.EUI64, nwk: t.NWK) -> zigpy.device.ZigbeeDevice:
        assert isinstance(ieee, t.EUI64)
        device = SmartEnergyAwareDevice(self, ieee, nwk)  # type: ignore[arg-type]
        self.devices[ieee] = device
        return device
